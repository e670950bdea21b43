"""Recently opened books and each book's questions and answers.

Stored as JSON under ``platformdirs.user_data_dir("bookpot")/library``
(``BOOKPOT_DATA_DIR`` overrides the data folder): ``books.json`` lists the
books, ``history/<key>.json`` holds one book's Q&A. A book's key is a hash
of its absolute path, so reopening the same file finds its history. Every
write goes to a temporary file first and is renamed into place, so a crash
or a full disk never leaves a half-written library; a damaged file reads as
empty rather than stopping the app.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

from ..engine import store

STATES = ("new", "ingesting", "paused", "ready", "failed")
MAX_BOOKS = 50


def data_dir() -> Path:
    env = os.environ.get("BOOKPOT_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("bookpot"))


def library_dir() -> Path:
    return data_dir() / "library"


def book_key(path: str | os.PathLike) -> str:
    return hashlib.sha1(os.path.abspath(os.fspath(path)).encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass
class BookRecord:
    """One book as the library screen lists it."""

    path: str
    title: str = ""
    format: str = ""
    pages: int | None = None
    state: str = "new"          # one of STATES
    progress: float = 0.0       # 0..1 of the document ingested
    tokens: int = 0             # document tokens ingested so far
    model: str = ""
    error: str = ""
    opened_at: float = 0.0
    doc_hash: str = ""          # content hash (engine.store.document_hash), for clearing its cache
    cache_key: str = ""         # the book cache's state this reader uses (books/<key>/)
    read_s: float = 0.0         # seconds the reader spent reading it into the model (all runs)
    position: list[int] = field(default_factory=list)  # where the text pane was: [segment, char offset]

    @property
    def key(self) -> str:
        return book_key(self.path)

    @property
    def display_title(self) -> str:
        return self.title or os.path.basename(self.path)

    def state_text(self) -> str:
        if self.state == "ingesting":
            return f"ingesting {self.progress:.0%}"
        if self.state == "paused":
            return f"paused {self.progress:.0%}"
        if self.state == "failed":
            return "failed"
        return self.state

    @classmethod
    def from_dict(cls, d: dict) -> "BookRecord":
        known = {f.name for f in fields(cls)}
        rec = cls(**{k: v for k, v in d.items() if k in known})
        if rec.state not in STATES:
            rec.state = "new"
        return rec


@dataclass
class QA:
    """One question, its answer and citations, as saved in a book's history."""

    question: str
    answer: str
    citations: list[dict] = field(default_factory=list)
    partial: bool = False
    cancelled: bool = False
    model: str = ""
    asked_at: float = 0.0
    units: int = 0  # memory units brought back for this answer
    answered: bool = True  # False: the model said nothing usable; ``citations`` starts with the nearest passages
    from_unread: bool = False  # drew on parts of the book not read yet (issue #19; quotes' source "unread")
    read_fraction: float | None = None  # 0..1 of the book read when it was answered (None: not recorded)
    indexed: bool = False  # the whole book was searched (its text pass was done), read or not

    @classmethod
    def from_dict(cls, d: dict) -> "QA":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def write_json_atomic(path: Path, data) -> None:
    """``data`` as JSON into ``path`` (its folder made), atomically; ``OSError`` on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store.replace_file(path, store.json_bytes(data))


def _read_json(path: Path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class Library:
    """The recent-books list and per-book histories, on disk."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or library_dir()

    @property
    def books_path(self) -> Path:
        return self.root / "books.json"

    def history_path(self, key: str) -> Path:
        return self.root / "history" / f"{key}.json"

    # -- books ---------------------------------------------------------
    def books(self) -> list[BookRecord]:
        """Most recently opened first."""
        raw = _read_json(self.books_path, [])
        recs = []
        for d in raw if isinstance(raw, list) else []:
            try:
                recs.append(BookRecord.from_dict(d))
            except TypeError:
                continue
        recs.sort(key=lambda r: -r.opened_at)
        return recs

    def get(self, path: str) -> BookRecord | None:
        key = book_key(path)
        return next((r for r in self.books() if r.key == key), None)

    def upsert(self, rec: BookRecord) -> None:
        recs = [r for r in self.books() if r.key != rec.key]
        recs.insert(0, rec)
        recs.sort(key=lambda r: -r.opened_at)
        write_json_atomic(self.books_path, [asdict(r) for r in recs[:MAX_BOOKS]])

    def touch(self, path: str, **updates) -> BookRecord:
        """Record that ``path`` was opened now (keeping what was known)."""
        path = os.path.abspath(path)
        rec = self.get(path) or BookRecord(path=path)
        for k, v in updates.items():
            setattr(rec, k, v)
        rec.opened_at = time.time()
        self.upsert(rec)
        return rec

    def update(self, path: str, **updates) -> None:
        rec = self.get(path)
        if rec is None:
            return
        for k, v in updates.items():
            setattr(rec, k, v)
        self.upsert(rec)

    def remove(self, path: str) -> None:
        """Forget a book and its history (the book file itself is untouched)."""
        key = book_key(path)
        recs = [r for r in self.books() if r.key != key]
        write_json_atomic(self.books_path, [asdict(r) for r in recs])
        self.history_path(key).unlink(missing_ok=True)

    # -- history -------------------------------------------------------
    def history(self, path: str) -> list[QA]:
        raw = _read_json(self.history_path(book_key(path)), [])
        out = []
        for d in raw if isinstance(raw, list) else []:
            try:
                out.append(QA.from_dict(d))
            except TypeError:
                continue
        return out

    def add_qa(self, path: str, qa: QA) -> None:
        items = self.history(path)
        items.append(qa)
        write_json_atomic(self.history_path(book_key(path)), [asdict(q) for q in items])


def scope_note(partial: bool, from_unread: bool = False, read_fraction: float | None = None,
               indexed: bool = False) -> str:
    """What part of the book an answer came from, for a person ("" for a read book).

    ``from_unread``: passages not read yet were prefilled for it (issue #19);
    ``indexed``: the whole book was searched though it was not read whole;
    ``read_fraction``: 0..1 of the book read then (left out when None).
    """
    read = f" ({read_fraction:.0%} of the book read)" if read_fraction is not None else ""
    if from_unread:
        return f"answered from pages not read yet{read}"
    if partial and indexed:
        return f"answered from pages already read; the whole book was searched{read}"
    if partial:
        return "answered from the part of the book read so far" + read
    return ""


def notes_markdown(title: str, path: str, items: list[QA]) -> str:
    """A book's Q&A as a Markdown document."""
    lines = [f"# Notes on {title}", "", f"Source: `{path}`", ""]
    if not items:
        lines += ["_No questions asked yet._", ""]
    for qa in items:
        lines += [f"## {qa.question.strip()}", "", qa.answer.strip() or "_(no answer)_", ""]
        if qa.from_unread or qa.partial:
            note = scope_note(qa.partial, qa.from_unread, qa.read_fraction, qa.indexed)
            lines += [f"> {note[0].upper()}{note[1:]}." if qa.from_unread or qa.indexed
                      else "> Answered before the whole book was read.", ""]
        if qa.cancelled:
            lines += ["> Answer stopped early.", ""]
        quotes = [c for c in qa.citations if c.get("quote")]
        if quotes:
            if not qa.answered:
                lines += ["The passages nearest your question:", ""]
            lines += [f"> \"{' '.join(c['quote'].split())}\" — {c.get('locator', '?')}  " for c in quotes] + [""]
        others = [c for c in qa.citations if not c.get("quote")]
        if others:
            cites = ", ".join(c.get("locator", "?") for c in others)
            lines += [f"Sources: {cites}", ""]
    return "\n".join(lines)


def default_notes_path(book_path: str) -> Path:
    stem = Path(book_path).stem or "book"
    return data_dir() / "notes" / f"{stem}-notes.md"


def export_notes(book_path: str, title: str, items: list[QA], dest: str | os.PathLike | None = None) -> Path:
    """Write the notes file (atomically) and return where it went."""
    out = Path(dest).expanduser() if dest else default_notes_path(book_path)
    if out.is_dir():
        out = out / default_notes_path(book_path).name
    out.parent.mkdir(parents=True, exist_ok=True)
    store.replace_file(out, notes_markdown(title, book_path, items).encode("utf-8"))
    return out
