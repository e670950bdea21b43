"""The book's words on disk: each page's text, and a BM25 index of memory units.

Two tables in one SQLite file (Python's own ``sqlite3``, FTS5):

    pages(loc, text)        the reader's text for each locator, verbatim:
                            quotes are cut from it, with character offsets
    units_fts(text)         rowid = memory unit id; the unit's text plus the
                            first ``OVERLAP`` tokens of the next unit, so a
                            sentence cut by a unit boundary still matches

Why a lexical index beside the attention keys: for a question typed
plainly, its rare words (a name, a place) find the passage that holds them
better than a 135M model's queries do (issue #18), and BM25 (FTS5's
``bm25()``) weighs a word by how rare it is in the whole book, not among a
few attention candidates. FTS5's Porter stemmer matches "climb" with
"climbed". The file lives in the book's cache next to the
units; SQLite pages it from disk, so RAM does not grow with the book.

Rows past a checkpoint's counts are removed when it is loaded (``cut``),
and rows a crash lost are filled in again from the units' tokens
(``fill``): the index never vouches for a unit the checkpoint does not.
"""
from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from typing import Callable, Iterable

def writes(method):
    """SQLite's write errors as the cache's: a full disk is one clear line (CacheError)."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kw):
        try:
            return method(self, *args, **kw)
        except sqlite3.OperationalError as e:
            from .store import CacheError

            if self.db.in_transaction:  # SQLite may have rolled back already
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            where = Path(self.path) if self.path else Path("(temporary index)")
            if "full" in str(e) or "disk" in str(e):
                raise CacheError(f"no space left on device while writing {where.name} in {where.parent}; "
                                 "the cache was left as it was (free some space or use --cache-dir)") from e
            raise CacheError(f"cannot write {where}: {e}") from e

    return wrapper


OVERLAP = 24  # tokens of the next unit indexed with a unit (a straddling sentence)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class Lexicon:
    """Pages' text and the units' FTS5 index of one book.

    ``path``: the SQLite file (created if absent); None keeps it in a private
    temporary file that SQLite deletes on ``close`` (uncached sessions).
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = str(path) if path is not None else ""
        self.damaged = False  # the file was not a readable index: it was started again
        self._open_or_reset()

    def _open_or_reset(self) -> None:
        """Connect; a file that is not a readable SQLite index is started again.

        "database is locked" is not damage: another process holding the
        book's lock is writing (a Session is built before it waits for that
        lock), so the error is raised, never answered by deleting the file.
        """
        try:
            self._open()
            self.damaged = False
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                from .store import CacheError

                raise CacheError(f"the book's word index is busy in another process ({e}); try again") from e
            self.damaged = True
            self.reset()
        except sqlite3.DatabaseError:
            self.damaged = True
            self.reset()

    def _open(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1  # a new connection: cached reads are stale
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL" if self.path else "PRAGMA journal_mode=MEMORY")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # Read first, create only what is missing: creating is a write, and
        # another process reading the book may hold the write lock for a while.
        have = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        if "pages" not in have:
            self.db.execute("CREATE TABLE IF NOT EXISTS pages(loc INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        if "units_fts" not in have:
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS units_fts USING fts5(text, "
                            "tokenize='porter unicode61 remove_diacritics 2')")

    def reopen(self) -> None:
        """Connect again to the file at ``path`` (another process may have replaced
        it before this one took the book's lock)."""
        if self.path:
            self.db.close()
            self._open_or_reset()

    def reset(self) -> None:
        """Start empty (the book's cache was discarded, this file with it)."""
        if getattr(self, "db", None) is not None:
            self.db.close()
        if self.path:
            for suffix in ("", "-wal", "-shm"):
                Path(self.path + suffix).unlink(missing_ok=True)
        self._open()

    @writes
    def reset_reading(self) -> None:
        """Forget what reading wrote (pages, units_fts), keep the text pass's
        tables (textpass.py): the book's saved reading state was discarded,
        its text and cut are still the book's."""
        self.commit()
        self.begin()
        self.db.execute("DELETE FROM pages")
        self.db.execute("DELETE FROM units_fts")
        self.commit()

    # ---------------------------------------------------------------- write
    def begin(self) -> None:
        """Open a write transaction unless one is open (``commit`` ends it)."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")

    @writes
    def add_page(self, loc: int, text: str) -> None:
        """Record locator ``loc``'s text (a second segment with the same locator is appended)."""
        self.begin()
        row = self.db.execute("SELECT text FROM pages WHERE loc=?", (loc,)).fetchone()
        if row is not None:
            text = row[0] + "\n" + text
        self.db.execute("INSERT OR REPLACE INTO pages(loc, text) VALUES (?, ?)", (loc, text))

    @writes
    def add_unit(self, uid: int, text: str) -> None:
        self.begin()
        self.db.execute("INSERT OR REPLACE INTO units_fts(rowid, text) VALUES (?, ?)", (uid, text))

    @writes
    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    @writes
    def cut(self, n_units: int, n_locs: int) -> None:
        """Forget units >= ``n_units`` and pages >= ``n_locs`` (written after a checkpoint)."""
        self.commit()
        self.db.execute("DELETE FROM units_fts WHERE rowid >= ?", (n_units,))
        self.db.execute("DELETE FROM pages WHERE loc >= ?", (n_locs,))

    def fill(self, n_units: int, text_of: Callable[[int], str]) -> int:
        """Index units below ``n_units`` that a crash left out; returns how many."""
        have = {r[0] for r in self.db.execute("SELECT rowid FROM units_fts WHERE rowid < ?", (n_units,))}
        missing = [u for u in range(n_units) if u not in have]
        for uid in missing:
            self.add_unit(uid, text_of(uid))
        self.commit()
        return len(missing)

    # ----------------------------------------------------------------- read
    def page(self, loc: int) -> str | None:
        row = self.db.execute("SELECT text FROM pages WHERE loc=?", (loc,)).fetchone()
        return row[0] if row else None

    def n_pages(self) -> int:
        return self.db.execute("SELECT count(*) FROM pages").fetchone()[0]

    @staticmethod
    def terms(words: Iterable[str]) -> list[str]:
        """The search terms ``search`` makes of ``words``: lower case, sorted, words only."""
        return sorted({w.lower() for w in words if _WORD.fullmatch(w)})

    def search(self, words: Iterable[str], limit: int = 64, below: int | None = None,
               table: str = "units_fts") -> list[tuple[int, float]]:
        """Units matching any of ``words``, best first: [(uid, score)], score = -bm25 (> 0).

        ``below``: only units with id < below (those a checkpoint or the
        running session vouches for). ``table``: ``units_fts`` (the units
        read) or ``tp_fts`` (every unit of the book, textpass.py).
        """
        if table not in ("units_fts", "tp_fts"):
            raise ValueError(table)
        terms = self.terms(words)
        if not terms:
            return []
        query = " OR ".join(f'"{t}"' for t in terms)
        sql = f"SELECT rowid, bm25({table}) FROM {table} WHERE {table} MATCH ?"
        args: list = [query]
        if below is not None:
            sql += " AND rowid < ?"
            args.append(below)
        sql += f" ORDER BY bm25({table}) LIMIT ?"
        args.append(limit)
        self.commit()
        return [(int(r), -float(s)) for r, s in self.db.execute(sql, args)]

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self.db.close()
