"""The text pass: a whole book cut into the engine's chunks and units, with no decode.

Reading a book through the model (prefill) runs at ~100-200 tokens/s on a
small board; running its reader and tokenizer runs at tens of thousands.
So before (or without) reading, ``run`` streams the book's segments through
``tokens.token_chunks`` exactly as ``Session.ingest`` will (same chunk size,
``n_batch``; same separator; the first chunk's attention-sink tokens in no
unit; ``unit_tokens``-token units) and records, in the book's lexicon file
(lexicon.py's SQLite, the same transaction as the counts that vouch for
them):

    tp_chunks(chunk, tok0, first_uid, n_units, skip, loc, tokens)
                        every chunk's tokens (int32) and the id of its
                        first unit: the ids reading will give its units
    tp_fts(text)        FTS5, rowid = unit id: what BM25 searches over the
                        whole book, read or not (text as UnitStore indexes it)
    tp_pages(loc, text) each locator's text (quotes are cut from it)
    tp_locs(loc, json)  the locators, numbered as reading numbers them
    tp_meta(key, value) signature, counts, ``done``

Then a question about a book that is not (fully) read finds its passage
over the whole book, and only the chunks holding the chosen units are
prefilled — on demand, a few hundred tokens — and saved as "early" units
(``tp_early``; their KV files ``units/e<id>.kv`` beside the ordinary ones),
which reading later adopts instead of decoding those chunks again
(``Session``; the idea of LCLM's skim-then-expand and EdgeInfinite's
attention to time to first token, see ../shared/RESEARCH.md).

Resumable: the counts are committed with the rows every ``COMMIT_CHUNKS``
chunks, and a run killed in between carries on after the last commit (the
reader and tokenizer run again from the start; only the inserts are
skipped). Memory is bounded: one chunk in flight, the locator map (one
entry per page) in RAM.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .lexicon import Lexicon, writes

COMMIT_CHUNKS = 64
SINK_TOKENS = 4  # the book's first tokens, attention sinks: in no unit (the pot always keeps them)
VERSION = 1


@dataclass
class Chunk:
    """One chunk of the text pass: what ``Session.ingest`` will prefill as one batch."""

    index: int
    tok0: int  # the chunk's first token in the book
    first_uid: int  # its first memory unit's id
    n_units: int
    skip: int  # leading tokens in no unit (the book's attention sinks, first chunk only)
    loc: int  # locator id
    tokens: list[int]

    def unit_span(self, uid: int, unit_tokens: int) -> tuple[int, int]:
        """Unit ``uid``'s token range [a, b) within this chunk."""
        a = self.skip + (uid - self.first_uid) * unit_tokens
        return a, min(len(self.tokens), a + unit_tokens)


@dataclass
class Early:
    """A chunk prefilled on demand: its units' KV files, keys and novelty scores."""

    chunk: int
    units: list[tuple[int, str, int]]  # (uid, digest, bytes of its KV file)
    keys: np.ndarray  # (n_units, layers, repr_tokens, kv_dim) f16: representative keys
    nuc: np.ndarray  # (len(chunk tokens),) f32 novelty (NuC) when the pot scores it, else empty


@dataclass
class PassStats:
    tokens: int = 0
    chunks: int = 0
    units: int = 0
    seconds: float = 0.0
    resumed_from_chunks: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class TextIndex:
    """The text pass's tables in a book's lexicon file (see the module docstring)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._meta: dict | None = None
        self._gen = lexicon.generation

    @property
    def db(self):  # the lexicon's connection: it may be reopened or reset under us
        return self.lexicon.db

    @property
    def path(self):  # for ``writes``' error messages
        return self.lexicon.path

    def _create(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS tp_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS tp_chunks(chunk INTEGER PRIMARY KEY, tok0 INTEGER, "
                   "first_uid INTEGER, n_units INTEGER, skip INTEGER, loc INTEGER, tokens BLOB)")
        db.execute("CREATE INDEX IF NOT EXISTS tp_chunks_uid ON tp_chunks(first_uid)")
        db.execute("CREATE TABLE IF NOT EXISTS tp_pages(loc INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS tp_locs(loc INTEGER PRIMARY KEY, json TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS tp_early(chunk INTEGER PRIMARY KEY, units TEXT NOT NULL, "
                   "keys BLOB NOT NULL, nuc BLOB NOT NULL)")
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS tp_fts USING fts5(text, "
                   "tokenize='porter unicode61 remove_diacritics 2')")

    # ----------------------------------------------------------------- meta
    def meta(self) -> dict:
        """The committed counts: {"signature", "chunks", "units", "tokens", "locs", "done"} ({} if none)."""
        if self._gen != self.lexicon.generation:  # reopened or reset under us
            self._meta, self._gen = None, self.lexicon.generation
        if self._meta is None:
            try:
                rows = self.db.execute("SELECT key, value FROM tp_meta").fetchall()
            except Exception:  # no table yet (a lexicon made before the text pass existed)
                rows = []
            self._meta = {k: json.loads(v) for k, v in rows}
        return self._meta

    @property
    def done(self) -> bool:
        return bool(self.meta().get("done"))

    @property
    def n_units(self) -> int:
        return int(self.meta().get("units", 0))

    @property
    def n_tokens(self) -> int:
        return int(self.meta().get("tokens", 0))

    @writes
    def begin(self, signature: dict) -> dict:
        """Prepare for a pass made with ``signature``; the counts to resume from.

        Rows made with another signature (another chunk size, unit size or
        prompt) are dropped, early units with them.
        """
        self._create()
        self._meta = None
        meta = self.meta()
        if meta and meta.get("signature") != signature:
            self.lexicon.commit()
            self.db.execute("BEGIN")
            for table in ("tp_meta", "tp_chunks", "tp_pages", "tp_locs", "tp_early", "tp_fts"):
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("COMMIT")
            self._meta = None
            meta = {}
        if not meta:
            meta = {"signature": signature, "chunks": 0, "units": 0, "tokens": 0, "locs": 0, "done": False,
                    "version": VERSION}
            self._put_meta(meta)
            self.lexicon.commit()
        return meta

    def _put_meta(self, meta: dict) -> None:
        self.lexicon.begin()
        self.db.executemany("INSERT OR REPLACE INTO tp_meta(key, value) VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in meta.items()])
        self._meta = dict(meta)

    # ----------------------------------------------------------------- read
    def chunk(self, index: int) -> Chunk | None:
        if index >= int(self.meta().get("chunks", 0)):
            return None
        row = self.db.execute("SELECT chunk, tok0, first_uid, n_units, skip, loc, tokens FROM tp_chunks "
                              "WHERE chunk=?", (index,)).fetchone()
        return _chunk(row) if row else None

    def chunk_of(self, uid: int) -> Chunk | None:
        """The chunk holding unit ``uid`` (None past the pass)."""
        if not 0 <= uid < self.n_units:
            return None
        row = self.db.execute("SELECT chunk, tok0, first_uid, n_units, skip, loc, tokens FROM tp_chunks "
                              "WHERE first_uid <= ? AND n_units > 0 ORDER BY first_uid DESC LIMIT 1", (uid,)).fetchone()
        return _chunk(row) if row else None

    def page(self, loc: int) -> str | None:
        try:
            row = self.db.execute("SELECT text FROM tp_pages WHERE loc=?", (loc,)).fetchone()
        except Exception:  # no table
            return None
        return row[0] if row else None

    def locator(self, loc: int) -> dict | None:
        row = self.db.execute("SELECT json FROM tp_locs WHERE loc=?", (loc,)).fetchone()
        return json.loads(row[0]) if row else None

    def locators(self) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT json FROM tp_locs ORDER BY loc")]

    def search(self, words: Iterable[str], limit: int = 64) -> list[tuple[int, float]]:
        """Units of the whole book matching any of ``words``, best first (BM25, as ``Lexicon.search``)."""
        return self.lexicon.search(words, limit, table="tp_fts", below=self.n_units)

    # ---------------------------------------------------------------- early
    def early(self, chunk: int) -> Early | None:
        try:
            row = self.db.execute("SELECT chunk, units, keys, nuc FROM tp_early WHERE chunk=?", (chunk,)).fetchone()
        except Exception:
            return None
        if row is None:
            return None
        units = [tuple(u) for u in json.loads(row[1])]
        return Early(row[0], units, np.frombuffer(row[2], dtype=np.float16), np.frombuffer(row[3], dtype=np.float32))

    @writes
    def add_early(self, early: Early) -> None:
        """Record a chunk's early units (their files already durable), committed at once."""
        self.lexicon.begin()
        self.db.execute("INSERT OR REPLACE INTO tp_early(chunk, units, keys, nuc) VALUES (?, ?, ?, ?)",
                        (early.chunk, json.dumps([list(u) for u in early.units]),
                         np.ascontiguousarray(early.keys, np.float16).tobytes(),
                         np.ascontiguousarray(early.nuc, np.float32).tobytes()))
        self.lexicon.commit()

    def early_bytes(self) -> int:
        """Disk bytes of the early units' KV files on record."""
        try:
            rows = self.db.execute("SELECT units FROM tp_early").fetchall()
        except Exception:
            return 0
        return sum(int(u[2]) for (js,) in rows for u in json.loads(js))

    @writes
    def retire_early(self, below: int) -> list[tuple[int, str, int]]:
        """Forget the early units of chunks ``< below`` (read since: their units
        are ordinary ones now), committed at once; their ``(uid, digest, bytes)``
        for the caller to delete the files."""
        try:
            rows = self.db.execute("SELECT units FROM tp_early WHERE chunk < ?", (below,)).fetchall()
        except sqlite3.OperationalError:  # no text pass in this file: no early units either
            return []
        if not rows:
            return []
        self.lexicon.begin()
        self.db.execute("DELETE FROM tp_early WHERE chunk < ?", (below,))
        self.lexicon.commit()
        return [tuple(u) for (js,) in rows for u in json.loads(js)]

    def early_uids(self) -> set[int]:
        try:
            rows = self.db.execute("SELECT units FROM tp_early").fetchall()
        except Exception:
            return set()
        return {int(u[0]) for (js,) in rows for u in json.loads(js)}

    # ---------------------------------------------------------------- write
    @writes
    def _add(self, c: Chunk, unit_texts: list[str], page: tuple[int, str] | None, new_locs: list[tuple[int, dict]]) -> None:
        self.lexicon.begin()
        self.db.execute("INSERT OR REPLACE INTO tp_chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (c.index, c.tok0, c.first_uid, c.n_units, c.skip, c.loc,
                         np.asarray(c.tokens, np.int32).tobytes()))
        self.db.executemany("INSERT OR REPLACE INTO tp_fts(rowid, text) VALUES (?, ?)",
                            [(c.first_uid + j, t) for j, t in enumerate(unit_texts)])
        self.db.executemany("INSERT OR REPLACE INTO tp_locs(loc, json) VALUES (?, ?)",
                            [(i, json.dumps(d)) for i, d in new_locs])
        if page is not None:
            loc, text = page
            row = self.db.execute("SELECT text FROM tp_pages WHERE loc=?", (loc,)).fetchone()
            if row is not None:  # a locator met again later in the book: appended, as Lexicon.add_page does
                text = row[0] + "\n" + text
            self.db.execute("INSERT OR REPLACE INTO tp_pages(loc, text) VALUES (?, ?)", (loc, text))

    def _checkpoint(self, meta: dict) -> None:
        self._put_meta(meta)
        self.lexicon.commit()


def _chunk(row) -> Chunk:
    return Chunk(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]),
                 np.frombuffer(row[6], dtype=np.int32).tolist())


def read_early(path) -> list[tuple[Chunk, list[tuple[int, str, int]]]]:
    """The early units on record in the lexicon file at ``path``, opened read-only (a summary
    reads another process's book: nothing is created, reset or locked for writing):
    [(the chunk, its early units (uid, digest, bytes))]. None on record, no text pass, a
    busy or damaged file: []."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT c.chunk, c.tok0, c.first_uid, c.n_units, c.skip, c.loc, c.tokens, e.units "
                              "FROM tp_early e JOIN tp_chunks c ON c.chunk = e.chunk").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [(_chunk(r), [tuple(u) for u in json.loads(r[7])]) for r in rows]


def signature(model, *, n_batch: int, unit_tokens: int, separator: str, sink: int, prefix: list[int]) -> dict:
    """What decides the pass's cut: the same values give the same chunks and unit ids as reading."""
    return {"n_batch": n_batch, "unit_tokens": unit_tokens, "separator": separator, "sink": sink,
            "n_prefix": len(prefix), "vocab": model.n_vocab, "version": VERSION}


def run(index: TextIndex, model, segments: Iterable, *, sig: dict, text_of: Callable[[list[int], list[int]], str],
        progress: Callable[[int, float], None] | None = None, cancel: Callable[[], bool] | None = None) -> PassStats:
    """Cut ``segments`` into chunks and units and index them (see the module docstring).

    ``text_of(prev_tokens, own_tokens)``: a unit's indexed text (UnitStore's
    rule: the previous unit's last ``lexicon.OVERLAP`` tokens and its own).
    ``progress(tokens, fraction)`` after each chunk; ``cancel()`` stops
    between chunks (the rows so far are committed, the pass resumes
    there). Returns this run's ``PassStats``; ``index.done`` tells whether
    the book was cut to its end. Raises ``store.CacheError`` when the disk
    is full (the index stays at its last commit).
    """
    from .lexicon import OVERLAP
    from .readers.base import Locator
    from .tokens import token_chunks

    t0 = time.perf_counter()
    meta = index.begin(sig)
    st = PassStats(resumed_from_chunks=int(meta["chunks"]))
    if meta["done"]:
        return st
    unit_tokens, sink = sig["unit_tokens"], sig["sink"]
    loc_ids = {Locator(**d): i for i, d in enumerate(index.locators())}
    done_chunks = int(meta["chunks"])
    n_chunk = tok0 = uid = 0
    prev_unit: list[int] = []
    since_commit = 0
    for tc in token_chunks(model, segments, separator=sig["separator"], max_tokens=sig["n_batch"]):
        if cancel is not None and cancel():
            break
        new_locs = []
        loc = loc_ids.get(tc.locator)
        if loc is None:  # numbered in order of first appearance, as Session._loc_id does
            loc = loc_ids[tc.locator] = len(loc_ids)
            new_locs.append((loc, dict(tc.locator.__dict__)))
        skip = min(sink, len(tc.tokens)) if n_chunk == 0 else 0
        spans = [(a, min(len(tc.tokens), a + unit_tokens)) for a in range(skip, len(tc.tokens), unit_tokens)]
        c = Chunk(n_chunk, tok0, uid, len(spans), skip, loc, list(tc.tokens))
        if n_chunk >= done_chunks:
            texts = []
            for a, b in spans:
                own = tc.tokens[a:b]
                texts.append(text_of(prev_unit[-OVERLAP:], own))
                prev_unit = own
            index._add(c, texts, (loc, tc.text) if tc.text is not None else None, new_locs)
            st.tokens += len(tc.tokens)
            st.chunks += 1
            st.units += len(spans)
            since_commit += 1
        elif spans:
            prev_unit = tc.tokens[spans[-1][0]:spans[-1][1]]
        n_chunk += 1
        tok0 += len(tc.tokens)
        uid += len(spans)
        if since_commit >= COMMIT_CHUNKS:
            index._checkpoint(dict(meta, chunks=n_chunk, units=uid, tokens=tok0, locs=len(loc_ids)))
            since_commit = 0
        if progress is not None:
            progress(tok0, tc.progress)
    else:
        index._checkpoint(dict(meta, chunks=n_chunk, units=uid, tokens=tok0, locs=len(loc_ids), done=True))
        st.seconds = time.perf_counter() - t0
        return st
    index._checkpoint(dict(meta, chunks=n_chunk, units=uid, tokens=tok0, locs=len(loc_ids)))
    st.seconds = time.perf_counter() - t0
    return st
