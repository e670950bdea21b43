"""KV a book's reading already saved, loaded by a summary instead of decoded again (issue #19).

Reading a book (``bookpot ingest``, the reader's background reading) saves
every chunk's KV as memory units, and a question about an unread book saves
the chunks it prefilled on demand as early units (units.py, textpass.py).
A summary reads the whole book again through its own pot; prefill is ~99%
of its time (~100-200 tokens/s here). ``SavedKV`` finds the book's units in
the cache and gives the summarizer the KV of a chunk when every token of it
was saved: the chunk is loaded from the unit files (a few ms per unit)
instead of decoded. The units' KV is placed as ``Session._adopt`` places an
early chunk: restored into the scratch sequence, shifted to the pot's next
positions (``llama_memory_seq_add``), copied into sequence 0
(``llama_memory_seq_cp``).

What that changes, and why it is allowed:

- a unit's KV was computed next to what reading's context held (the prompt
  prefix and reading's pot), not next to the summary's pot, which starts
  empty at each chapter; and unit files store K and V quantized (kvpack.py).
  So a summary made this way is not the same text as one decoded token by
  token. It was measured against that one (bench/summary_reuse.py,
  bench/RESULTS.md "Summaries from a read book": on real prose, 8.1x and
  6.7x faster at 16K and 64K tokens, and its parts more grounded in their
  chapters);
- a loaded token has no novelty score (NuC needs the logits of a decode),
  so a pot holding loaded tokens is distilled on the catalyst's attention
  alone (``Session._distill``; InfiniPot's CaP without NuC);
- the summary cache keeps the first summary made for a request, whether
  it loaded saved KV or not (its stats say: ``reused_tokens``,
  ``reused_from``). The key does not name the units loaded: in the reader
  the book goes on being read while a summary is stopped and resumed, and
  a key that changed with every checkpoint would lose both the finished
  chapters and the finished summary. ``--no-reuse`` has a key of its own
  (every token decoded: the summary depends only on the book and settings).

Only units the book's last checkpoint vouches for (the manifest's count) and
early units on record are offered; each file is checked against its
checksum, and each unit's tokens against the summary's tokens, when it is
loaded: a missing, damaged or different unit means those tokens are decoded
(``Session._load_saved``: a chunk's saved runs loaded, the rest decoded).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store
from .textpass import SINK_TOKENS, read_early
from .units import load_file, read_index, read_ok, unit_path


@dataclass(frozen=True)
class SavedUnit:
    """One saved unit: the book's tokens [g0, g0 + n) and its KV file."""

    g0: int  # the unit's first token in the book's token stream
    n: int
    path: Path
    digest: str
    nbytes: int
    tokens_at: tuple  # ("file", offset into tokens.i32) or ("list", tokens)


class SavedKV:
    """The saved units of one book's cache directory, found by book token offset.

    ``cover(g0, tokens)`` says which units hold the chunk ``tokens`` that
    starts at book token ``g0``; ``load`` puts them into a context.
    """

    def __init__(self, book_dir: Path, units: list[SavedUnit]) -> None:
        self.dir = Path(book_dir)
        self.units = sorted(units, key=lambda u: u.g0)
        self._starts = [u.g0 for u in self.units]
        self.tokens = sum(u.n for u in self.units)

    # ------------------------------------------------------------------ find
    @classmethod
    def find(cls, cache_root: Path, *, doc_hash: str, model: str, style: str) -> "SavedKV | None":
        """The cached reading of this document with this model and prompt style that saved the
        most units, or None. ``model``: ``bookcache.model_id``; ``style``: the prompt style
        (the units' KV was computed after that style's prompt prefix)."""
        best = None
        for manifest in sorted((Path(cache_root) / "books").glob("*/manifest.json")):
            m = store.read_json(manifest)
            s = (m.get("settings") or {}) if isinstance(m, dict) else {}
            if not s or (m.get("document") or {}).get("hash") != doc_hash or m.get("model") != model \
                    or s.get("style") != style or not s.get("units"):
                continue
            found = cls.read(manifest.parent, n_units=int(m.get("units") or 0),
                             unit_tokens=int(s.get("unit_tokens") or 0))
            if found.units and (best is None or found.tokens > best.tokens):
                best = found
        return best

    @classmethod
    def read(cls, book_dir: Path, *, n_units: int, unit_tokens: int) -> "SavedKV":
        """The units of one book directory: the first ``n_units`` read ones (what its last
        checkpoint vouches for) and the early ones on record in its text pass."""
        root = Path(book_dir) / "units"
        units = [SavedUnit(SINK_TOKENS + u.tok0, u.n, unit_path(root, u.uid), u.digest, u.nbytes, ("file", u.tok0))
                 for u in read_index(root, n_units)[0] if u.kv]  # beyond the disk cap: no KV file
        read_end = max((u.g0 + u.n for u in units), default=0)
        if unit_tokens > 0:
            for chunk, early in read_early(root / "lexicon.sqlite"):
                for uid, digest, nbytes in early:
                    a, b = chunk.unit_span(uid, unit_tokens)
                    if 0 <= a < b and chunk.tok0 + a >= read_end:
                        units.append(SavedUnit(chunk.tok0 + a, b - a, unit_path(root, uid, early=True), digest,
                                               nbytes, ("list", tuple(chunk.tokens[a:b]))))
        return cls(book_dir, units)

    # ----------------------------------------------------------------- cover
    def runs(self, g0: int, tokens: list[int]) -> list[tuple[int, int, list | None]]:
        """The chunk ``tokens`` (book tokens from ``g0`` on) as consecutive runs [a, b) of the
        chunk: ``(a, b, pieces)`` where saved units hold those tokens (``pieces``: (unit, ua, ub),
        the part [ua, ub) of each unit, in order), ``(a, b, None)`` where none does (or holds
        other tokens: the document changed, or was cut another way)."""
        out: list[tuple[int, int, list | None]] = []
        n, i = len(tokens), 0

        def put(a: int, b: int, piece) -> None:
            if out and (out[-1][2] is None) == (piece is None) and out[-1][1] == a:
                pa, _, ps = out[-1]
                out[-1] = (pa, b, None if piece is None else ps + [piece])
            else:
                out.append((a, b, None if piece is None else [piece]))

        while i < n:
            g = g0 + i
            k = bisect.bisect_right(self._starts, g) - 1
            u = self.units[k] if k >= 0 else None
            if u is None or g >= u.g0 + u.n:  # no unit here: up to the next one
                nxt = self._starts[k + 1] - g0 if k + 1 < len(self._starts) else n
                j = min(n, max(i + 1, nxt))
                put(i, j, None)
                i = j
                continue
            ua, ub = g - u.g0, min(u.n, g0 + n - u.g0)
            j = i + ub - ua
            same = self._tokens(u)[ua:ub] == tokens[i:j]
            put(i, j, (u, ua, ub) if same else None)
            i = j
        return out

    def cover(self, g0: int, tokens: list[int]) -> list[tuple[SavedUnit, int, int]] | None:
        """The pieces (unit, ua, ub) holding every token of the chunk, or None (``runs``)."""
        r = self.runs(g0, tokens) if tokens else []
        return r[0][2] if len(r) == 1 and r[0][2] is not None else None

    def _tokens(self, u: SavedUnit) -> list[int]:
        kind, where = u.tokens_at
        if kind == "list":
            return list(where)
        try:
            arr = np.fromfile(self.dir / "units" / "tokens.i32", dtype=np.int32, count=u.n, offset=4 * where)
        except OSError:  # the book's cache was cleared meanwhile: no tokens, so decoded
            return []
        return arr.tolist() if arr.size == u.n else []

    # ------------------------------------------------------------------ load
    def load(self, ctx, pieces: list[tuple[SavedUnit, int, int]], pos: int) -> bool:
        """Put ``pieces`` (from ``cover``) into sequence 0 at pos.. in order; False, with
        sequence 0 as before, when a file is missing, damaged or would not load.
        ``ctx`` needs a second sequence (the scratch one) and room for one unit's cells."""
        p = pos
        for u, a, b in pieces:
            data = read_ok(u.path, u.nbytes, u.digest)
            if data is None or not load_file(ctx, u.path, u.n, p, data, part=(a, b)):
                ctx.seq_rm(0, pos, -1)
                return False
            p += b - a
        return True
