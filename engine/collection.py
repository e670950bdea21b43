"""Questions across a collection of books (issue #24 part 1).

    from bookpot.engine import Options, open_collection

    with open_collection(["a.pdf", "b.epub", "c.txt"], Options()) as shelf:
        shelf.prepare()                      # text pass of every book not indexed yet
        for piece in shelf.ask_stream("Who made the silver compass?"):
            print(piece, end="")
        answer = shelf.last_answer           # .book, .citations (each with "book"), .runners_up

How a question finds its book:

1. ``prepare``: every book gets the text pass of engine/textpass.py (reader
   and tokenizer only, no decode), one book at a time, each through
   ``open_book`` with the one loaded model, saved in that book's own cache
   (so ``bookpot ask BOOK`` is quick afterwards too). A book read whole
   before is searched through the index its reading wrote. Where each
   book's index is goes into a small shelf file (``library/shelf.sqlite`` in
   the cache root, keyed by the file's path, size, mtime and the settings
   that decide its cache), so a warm ask opens no Session to find it. A book
   that cannot be used (corrupt, encrypted, empty) is skipped with a
   one-line note (``skipped``); none usable: ``BookpotError``.
2. ``lookup``: the question's words (``evidence.raw_words``) against the
   indexes. Two ways, both with memory bounded whatever the number of books:

   - ``"merged"`` (the default): the books' unit texts are copied into one
     FTS5 index on disk (``library/merged-<key>.sqlite``, one per set of
     books, updated when a book changes; ``prune_merged`` removes one once a
     book it names has left the cache, and all but the ``MERGED_KEPT`` last
     used) and queried once, so BM25 weighs a word by how rare it is in the
     whole collection;
   - ``"each"``: each book's BM25 index (SQLite FTS5) is queried on its own,
     one book at a time, and only a small top list (``TopList``: the best
     ``HITS`` units and the best unit of each of the ``RUNNERS + 1`` best
     books) stays in memory; no copy of the text on disk.

   Why merged is the default (bench/RESULTS.md, "Asking a library"): on 50
   books of GNU-manual prose, 20 holding one invented fact each, both put
   the right book first 20/20 (margins: median 3.9 merged, 2.6 each). On
   real files written by others (a newcomer's folder: two PDFs, two
   licences, two Markdown READMEs, an EPUB), "each" cited the wrong book
   for 4 of 4 questions that named their subject ("Who named git?" was
   answered from a SAT-solver paper whose "name" matched "named") and
   "merged" for none: per-book BM25 rates a word by how rare it is in that
   one book, so a word all through the right book ("git" in git's README)
   counts for little there while a common word rare in a stranger counts
   for much. Merged BM25 weighs a word by the whole library, as a person
   would. Its cost: a copy of the units' text (~4 bytes a token) made on
   the first ask of a set of books, and 4.5 ms a lookup against 19 ms.
3. ``ask_stream``: the book holding the best unit answers, through the
   book's own answer path (``Book.ask_stream``: its own lookup, the units of
   unread chunks prefilled on demand, quotes cut from its pages); the book
   is not read whole first, so the first answer token comes after one
   book's on-demand prefill. Every citation carries ``book`` (the path as
   given) and ``book_name`` (its file name); ``runners_up`` lists the next
   best books with their best passage.

Only one Session exists at a time (each book's is closed before the next
opens): memory is the model plus one book's context, whatever the number
of books.
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import BookpotError, CacheError, ModelError, RamCapError
from .readers.base import printable

HITS = 8  # units kept in the top list across the collection
RUNNERS = 3  # books shown after the one that answers
LOOKUPS = ("merged", "each")
MERGED_KEPT = 8  # merged indexes kept (the last used): one per set of books asked together
NONE_SAID = "None of these books seems to say."


class _Stopped(BookpotError):
    def __init__(self) -> None:
        super().__init__("stopped before every book was indexed")


@dataclass(frozen=True, order=True)
class Hit:
    """One unit found for a question: its BM25 score (higher is better), book and unit id."""

    score: float
    book: int  # index into ``Collection.books``
    uid: int


class TopList:
    """The best ``k`` hits seen, and the best hit of each of the best ``books`` books.

    Fed one book's ranked units at a time (``add``); holds at most
    ``k + books`` hits whatever the number of books. Ties go to the book
    added first, then to the lower unit id.
    """

    def __init__(self, k: int = HITS, books: int = RUNNERS + 1) -> None:
        self.k, self.n_books = k, books
        self._hits: list[tuple] = []  # min-heap of (score, -book, -uid)
        self._books: list[tuple] = []  # min-heap of each book's best: (score, -book, -uid)

    def add(self, book: int, ranked: Iterable[tuple[int, float]]) -> None:
        """``ranked``: [(uid, score)] of one book (any order)."""
        best = None
        for uid, score in ranked:
            item = (float(score), -book, -int(uid))
            if best is None or item > best:
                best = item
            if len(self._hits) < self.k:
                heapq.heappush(self._hits, item)
            elif item > self._hits[0]:
                heapq.heapreplace(self._hits, item)
        if best is None:
            return
        for i, held in enumerate(self._books):  # a book fed twice (the merged index): keep its best
            if held[1] == -book:
                if best > held:
                    self._books[i] = best
                    heapq.heapify(self._books)
                return
        if len(self._books) < self.n_books:
            heapq.heappush(self._books, best)
        elif best > self._books[0]:
            heapq.heapreplace(self._books, best)

    @staticmethod
    def _hit(item: tuple) -> Hit:
        return Hit(item[0], -item[1], -item[2])

    def hits(self) -> list[Hit]:
        """The best hits, best first."""
        return [self._hit(i) for i in sorted(self._hits, reverse=True)]

    def books(self) -> list[Hit]:
        """Each of the best books' best hit, best first (the first is the answering book)."""
        return [self._hit(i) for i in sorted(self._books, reverse=True)]


@dataclass
class Shelved:
    """A usable book of the collection and where its word index is."""

    path: str  # as given
    lexicon: str  # its lexicon.sqlite
    table: str  # "tp_fts" (text pass: the whole book) or "units_fts" (the units read)
    below: int  # units the index vouches for
    tokens: int = 0  # the book's tokens (0: unknown)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class CollectionAnswer:
    """A collection's answer: the answering book's ``engine.answering.Answer`` and where it stands.

    ``book``: the answering book's path (None when no book matched any word
    of the question: then ``text`` is ``NONE_SAID``); ``runners_up``: the
    next best books, [{"book", "book_name", "score", "passage": {locator
    fields, "text"}}]; ``stats``: seconds spent (``index_s``, ``lookup_s``,
    ``open_s``) and counts (``books``, ``indexed_now``, ``skipped``).
    """

    answer: object | None  # engine.answering.Answer
    book: str | None
    runners_up: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def book_name(self) -> str | None:
        return os.path.basename(self.book) if self.book else None

    @property
    def text(self) -> str:
        return self.answer.text if self.answer is not None else NONE_SAID

    @property
    def answered(self) -> bool:
        return self.answer is not None and self.answer.answered

    @property
    def citations(self) -> list[dict]:
        """The answer's citations, each with ``book`` and ``book_name``."""
        if self.answer is None:
            return []
        return [dict(c, book=self.book, book_name=self.book_name) for c in self.answer.citations]


def shelf_settings(options, model_path: str) -> dict:
    """What, besides the file, decides where a book's index is (``build.cache_settings``' inputs)."""
    from .plan import default_cap, parse_size

    cap = parse_size(options.ram_cap) if options.ram_cap else default_cap()
    return {"model": os.path.abspath(model_path), "style": options.prompt_style, "mode": options.mode,
            "cap": cap, "pot": options.pot_tokens, "alpha": options.alpha, "nuc": options.nuc,
            "unit_tokens": options.unit_tokens}


class Shelf:
    """``library/shelf.sqlite``: where each book's index is (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(root / "shelf.sqlite"), isolation_level=None, timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS shelf(key TEXT PRIMARY KEY, json TEXT NOT NULL)")

    @staticmethod
    def key(path: str, settings: dict) -> str:
        st = os.stat(path)
        raw = json.dumps([os.path.realpath(path), st.st_size, st.st_mtime_ns, settings], sort_keys=True)
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    def get(self, key: str, path: str) -> Shelved | None:
        row = self.db.execute("SELECT json FROM shelf WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        d = json.loads(row[0])
        got = Shelved(path, d["lexicon"], d["table"], d["below"], d.get("tokens", 0))
        return got if _still_indexed(got) else None

    def put(self, key: str, book: Shelved) -> None:
        self.db.execute("INSERT OR REPLACE INTO shelf(key, json) VALUES (?, ?)",
                        (key, json.dumps({"lexicon": book.lexicon, "table": book.table, "below": book.below,
                                          "tokens": book.tokens})))

    def close(self) -> None:
        self.db.close()


def _read_only(path: str) -> str:
    """An SQLite URI opening ``path`` read-only (any character of the path quoted)."""
    from urllib.parse import quote

    return "file:" + quote(os.path.abspath(path)) + "?mode=ro"


def _still_indexed(book: Shelved) -> bool:
    """Whether the index the shelf remembers is still there and vouches for as many units."""
    if not os.path.exists(book.lexicon):
        return False
    try:
        con = sqlite3.connect(_read_only(book.lexicon), uri=True, timeout=30)
        try:
            if book.table == "tp_fts":
                meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM tp_meta")}
                return bool(meta.get("done")) and int(meta.get("units", -1)) == book.below
            row = con.execute("SELECT max(rowid) FROM units_fts").fetchone()
            return row[0] is not None and row[0] + 1 >= book.below
        finally:
            con.close()
    except sqlite3.Error:
        return False


class Collection:
    """Books opened for questions together; see the module docstring.

    Built by ``open_collection``. Not thread-safe (one caller at a time:
    the CLI, or the TUI's worker thread). ``books``: the usable books after
    ``prepare``; ``skipped``: [(path, reason)]; ``copies``: the paths of
    ``skipped`` that hold the same text as a book used (one book, not a failure).
    """

    def __init__(self, paths: list[str], options, model, *, lookup: str = "merged",
                 on_note: Callable[[str], None] | None = None,
                 on_skip: Callable[[str, str], None] | None = None) -> None:
        from .store import cache_root

        if lookup not in LOOKUPS:
            raise ValueError(lookup)
        self.paths = list(paths)
        self.options = options
        self.model = model
        self.lookup_kind = lookup
        self.on_note = on_note
        self.on_skip = on_skip
        self.root = cache_root(options.cache_dir) / "library"
        self.books: list[Shelved] = []
        self.skipped: list[tuple[str, str]] = []
        self.copies: list[str] = []
        self.last_answer: CollectionAnswer | None = None
        self.stats: dict = {"books": len(self.paths), "indexed_now": 0, "index_s": 0.0}
        self._prepared = False

    # -------------------------------------------------------------- prepare
    def prepare(self, *, progress: Callable[[int, int, str, float], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> list[Shelved]:
        """Find or build every book's index; the usable books.

        ``progress(i, n, path, fraction)`` while book ``i`` (0-based) of
        ``n`` is text-passed (``fraction`` of it). A book that fails is added
        to ``skipped`` and told to ``on_skip`` (or ``on_note``) in one line.
        Raises ``BookpotError`` when no book is usable or ``cancel()`` said
        stop (an unfinished text pass resumes next time), and ``ModelError``,
        ``RamCapError`` or ``CacheError`` at once: those are no book's fault.
        """
        t0 = time.perf_counter()
        settings = shelf_settings(self.options, self.model.path)
        shelf = Shelf(self.root)
        self.books, self.skipped, self.copies = [], [], []
        first: dict[str, str] = {}  # index file -> the first path given with that text
        try:
            n = len(self.paths)
            for i, path in enumerate(self.paths):
                if cancel is not None and cancel():
                    raise BookpotError("stopped before every book was indexed")
                try:
                    if not os.path.isfile(path):
                        raise BookpotError("no such file" if not os.path.exists(path) else "not a file")
                    key = Shelf.key(path, settings)
                    got = shelf.get(key, path)
                    if got is None:
                        got = self._index(path, lambda frac, i=i, path=path: progress and progress(i, n, path, frac),
                                          cancel)
                        shelf.put(key, got)
                        self.stats["indexed_now"] += 1
                    if got.lexicon in first:  # a copy: the same text, so the same cache and index
                        self.copies.append(path)
                        raise BookpotError(f"the same text as {printable(first[got.lexicon], 160)}")
                    first[got.lexicon] = path
                    self.books.append(got)
                except (ModelError, RamCapError, CacheError, _Stopped):
                    raise  # not the book's fault: the same for every book
                except (BookpotError, OSError) as e:
                    self._skip(path, str(e))
                except Exception as e:  # a reader's bug on a strange file: the other books go on
                    self._skip(path, f"could not be read ({type(e).__name__}: {e})")
        finally:
            shelf.close()
        self.stats["index_s"] = round(time.perf_counter() - t0, 3)
        self.stats["skipped"] = len(self.skipped)
        self._prepared = True
        if not self.books:
            why = f" ({self.skipped[0][1]})" if len(self.skipped) == 1 else ""
            raise BookpotError(f"none of the {len(self.paths)} book(s) could be used{why}")
        return self.books

    def _skip(self, path: str, reason: str) -> None:
        reason = " ".join(reason.split())
        if reason.startswith(path):
            reason = reason[len(path):].lstrip(": ")
        self.skipped.append((path, reason))
        if self.on_skip is not None:
            self.on_skip(path, reason)
        elif self.on_note is not None:
            self.on_note(f"skipped {path}: {reason}")

    def _index(self, path: str, progress, cancel) -> Shelved:
        """One book's text pass through its own cache (``Book.index``)."""
        from .api import open_book

        with open_book(path, self.options, model=self.model, on_note=self.on_note) as book:
            book.index(progress=lambda tokens, frac: progress(frac), cancel=cancel)
            s = book.session
            if cancel is not None and cancel() and s.text is not None and not s.text.done:
                raise _Stopped()
            if s.text is None or s.units is None:
                raise BookpotError(f"memory units are off ({s.units_why or 'no units'}); a collection needs them")
            if s.text.done and s.text.n_units >= len(s.units.units):
                found = Shelved(path, s.lexicon.path, "tp_fts", s.text.n_units, s.text.n_tokens)
            else:  # read whole before the text pass existed: the units its reading indexed
                found = Shelved(path, s.lexicon.path, "units_fts", len(s.units.units), s.stats.doc_tokens)
            if not found.below:
                raise BookpotError(f"{path} has no text to read")
            return found

    # --------------------------------------------------------------- lookup
    def lookup(self, question: str) -> TopList:
        """The question's best units across the books (``self.lookup_kind``)."""
        from .evidence import raw_words

        if not self._prepared:
            self.prepare()
        words = raw_words(question)
        top = TopList()
        if self.lookup_kind == "merged":
            merged = Merged(self.root, self.books)
            try:
                for b, ranked in merged.search(words, HITS * 4):
                    top.add(b, ranked)
            finally:
                merged.close()
            return top
        from .lexicon import Lexicon

        for b, book in enumerate(self.books):
            try:
                lex = Lexicon(book.lexicon)
            except BookpotError as e:  # busy in another process: this question goes without it
                self._note(f"{book.path}: {e}")
                continue
            try:
                top.add(b, lex.search(words, HITS, below=book.below, table=book.table))
            finally:
                lex.close()
        return top

    def passage(self, hit: Hit) -> dict:
        """A hit's text (as indexed: the unit with the end of the one before) and, when known, its locator."""
        from .readers.base import Locator

        book = self.books[hit.book]
        con = sqlite3.connect(_read_only(book.lexicon), uri=True, timeout=30)
        try:
            row = con.execute(f"SELECT text FROM {book.table} WHERE rowid=?", (hit.uid,)).fetchone()
            out: dict = {}
            if book.table == "tp_fts":
                c = con.execute("SELECT loc FROM tp_chunks WHERE first_uid <= ? AND n_units > 0 "
                                "ORDER BY first_uid DESC LIMIT 1", (hit.uid,)).fetchone()
                loc = con.execute("SELECT json FROM tp_locs WHERE loc=?", (c[0],)).fetchone() if c else None
                if loc:
                    out.update(Locator(**json.loads(loc[0])).to_dict())
            out["text"] = row[0] if row else ""
            return out
        finally:
            con.close()

    def _note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)

    # --------------------------------------------------------------- answer
    def ask_stream(self, question: str, *, max_tokens: int = 200, temperature: float = 0.0,
                   read_first: bool = False, cancel: Callable[[], bool] | None = None) -> Iterator[str]:
        """Stream the answer of the book holding the question's best unit; then ``last_answer``.

        ``read_first``: read that book whole before answering (as ``bookpot
        ask --read first``). ``cancel()``: stops the chosen book's index,
        read or answer (the answer so far is kept, as ``Book.ask_stream``). No unit of any book matches a word of the
        question: nothing is streamed and ``last_answer.text`` is
        ``NONE_SAID``. Raises ``BookpotError`` when the question has no
        words, or the chosen book cannot be opened any more.
        """
        from .answering import check_question
        from .api import open_book

        check_question(question)
        t0 = time.perf_counter()
        top = self.lookup(question)
        t_lookup = time.perf_counter() - t0
        ranked = top.books()
        stats = dict(self.stats, lookup=self.lookup_kind, lookup_s=round(t_lookup, 3), usable=len(self.books))
        if not ranked:
            self.last_answer = CollectionAnswer(None, None, stats=stats)
            return
        runners = []
        for hit in ranked[1:]:
            book = self.books[hit.book]
            runners.append({"book": book.path, "book_name": book.name, "score": round(hit.score, 4),
                            "passage": self.passage(hit)})
        chosen = self.books[ranked[0].book]
        t1 = time.perf_counter()
        with open_book(chosen.path, self.options, question=question, model=self.model,
                       on_note=self.on_note) as book:
            if not book.index(cancel=cancel) and read_first:
                book.read(cancel=cancel)
            stats["open_s"] = round(time.perf_counter() - t1, 3)
            yield from book.ask_stream(question, max_tokens=max_tokens, temperature=temperature, cancel=cancel)
            self.last_answer = CollectionAnswer(book.last_answer, chosen.path, runners, stats)

    def ask(self, question: str, **kw) -> CollectionAnswer:
        for _ in self.ask_stream(question, **kw):
            pass
        return self.last_answer

    def close(self) -> None:
        """Nothing stays open between questions; the model belongs to its owner."""

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Merged:
    """One FTS5 index of a set of books' units on disk (``lookup="merged"``).

    ``library/merged-<key>.sqlite``, key = the books' index files; table
    ``books(lexicon, below)`` says which book's rows are in and up to which
    unit, so a book whose index changed is copied again and the others are
    not. Rows are copied with SQLite streaming them: memory stays bounded.
    """

    def __init__(self, root: Path, books: list[Shelved]) -> None:
        key = hashlib.blake2b("\n".join(sorted(b.lexicon for b in books)).encode(), digest_size=8).hexdigest()
        root.mkdir(parents=True, exist_ok=True)
        self.books = books
        self.db = sqlite3.connect(str(root / f"merged-{key}.sqlite"), isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS books(lexicon TEXT PRIMARY KEY, below INTEGER, tbl TEXT)")
        self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS units USING fts5(text, lexicon UNINDEXED, "
                        "uid UNINDEXED, tokenize='porter unicode61 remove_diacritics 2')")
        have = {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT lexicon, below, tbl FROM books")}
        for b in books:
            if have.get(b.lexicon) != (b.below, b.table):
                self._copy(b)
        mine = root / f"merged-{key}.sqlite"
        os.utime(mine)  # last used: prune_merged keeps the MERGED_KEPT last used
        prune_merged(root, keep=mine)

    def _copy(self, book: Shelved) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.execute("DELETE FROM units WHERE lexicon=?", (book.lexicon,))
            self.db.execute("ATTACH DATABASE ? AS src", (book.lexicon,))  # only read from, DETACHed after
        except sqlite3.Error:
            self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute(f"INSERT INTO units(text, lexicon, uid) SELECT text, ?, rowid FROM src.{book.table} "
                            "WHERE rowid < ?", (book.lexicon, book.below))
            self.db.execute("INSERT OR REPLACE INTO books(lexicon, below, tbl) VALUES (?, ?, ?)",
                            (book.lexicon, book.below, book.table))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.execute("DETACH DATABASE src")

    def search(self, words: Iterable[str], limit: int) -> Iterator[tuple[int, list[tuple[int, float]]]]:
        """(book index, [(uid, score)]) for the best ``limit`` units of the merged index."""
        from .lexicon import Lexicon

        terms = Lexicon.terms(words)
        if not terms:
            return
        index = {b.lexicon: i for i, b in enumerate(self.books)}
        query = " OR ".join(f'"{t}"' for t in terms)
        for lex, uid, score in self.db.execute("SELECT lexicon, uid, bm25(units) FROM units WHERE units MATCH ? "
                                               "ORDER BY bm25(units) LIMIT ?", (query, limit)):
            if lex in index:
                yield index[lex], [(int(uid), -float(score))]

    def close(self) -> None:
        self.db.close()


def prune_merged(root: Path, keep: Path | None = None, kept: int = MERGED_KEPT) -> int:
    """Remove the merged indexes (``library/merged-*.sqlite``) that name a
    book index no longer on disk (a book changed, so its cache key and
    index file changed with it, or its cache was cleared: copies of text
    nobody can query again), then all but the ``kept`` last used (by
    mtime; ``keep``, the one in use, always stays). Returns how many were
    removed; one that cannot be read is left alone.
    """
    removed = 0
    left = []
    for path in Path(root).glob("merged-*.sqlite"):
        if keep is not None and path == keep:
            continue
        try:
            with contextlib.closing(sqlite3.connect(str(path), timeout=1)) as db:
                lexicons = [r[0] for r in db.execute("SELECT lexicon FROM books")]
            used = path.stat().st_mtime
        except (sqlite3.Error, OSError):
            continue
        if all(os.path.exists(lex) for lex in lexicons):
            left.append((used, path))
            continue
        removed += _remove_merged(path)
    left.sort(reverse=True)
    for _, path in left[max(0, kept - (keep is not None)):]:
        removed += _remove_merged(path)
    return removed


def _remove_merged(path: Path) -> int:
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return 1


def open_collection(paths: Iterable[str | Path], options=None, *, model=None, lookup: str = "merged",
                    on_note: Callable[[str], None] | None = None,
                    on_skip: Callable[[str, str], None] | None = None,
                    fetch_progress: Callable[[str, float | None], None] | None = None) -> Collection:
    """Books ``paths`` opened for questions together (see the module docstring).

    ``model``: an ``engine.llm.Model`` already loaded from
    ``options.model``'s file (else it is loaded here, once for all books).
    ``lookup``: "each" or "merged". ``on_note(text)``: things to tell the
    user; ``on_skip(path, reason)``: a book left out (default: a note). Raises ``BookpotError`` when no path is
    given, or the options turn off what a collection needs (memory units,
    the cache), and ``ModelError`` as ``open_book`` does. Nothing is indexed
    until ``prepare`` (or the first question).
    """
    from .build import Options, resolve_model

    options = options or Options()
    paths = [str(p) for p in paths]
    if not paths:
        raise BookpotError("no books to ask")
    if not options.use_units or options.mode == "full":
        raise BookpotError("asking several books needs memory units (not --no-units or --mode full)")
    if options.catalyst == "question":
        raise BookpotError("asking several books keeps each book's index in the cache (not --catalyst question)")
    if not options.cache:
        raise BookpotError("asking several books keeps each book's index in the cache (not --no-cache)")
    model_path, _, _ = resolve_model(options.model, progress=fetch_progress)
    if model is None:
        from .llm import Model

        model = Model(model_path)
    return Collection(paths, options, model, lookup=lookup, on_note=on_note, on_skip=on_skip)
