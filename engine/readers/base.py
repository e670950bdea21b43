"""What every reader yields: text segments that know where they came from.

Readers stream: a segment is produced as soon as its page (or chapter, or
block of lines) is read, so a 1,000-page book starts flowing into the model
after its first page. Nothing here holds a whole large file in memory.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(s: str, limit: int = 80, keep_end: bool = False) -> str:
    """``s`` made safe inside a one-line message.

    File names, zip member names and hrefs come from strangers: a newline in
    one would split the promised single ``bookpot: ...`` line, a lone
    surrogate would crash a strict UTF-8 stderr. Control characters and
    surrogates are shown escaped (``\\n``, ``\\udc80``); past ``limit``
    characters the text is cut with "…" (at the start for paths, whose end
    names the file).
    """
    s = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], s)
    if len(s) > limit:
        s = "…" + s[-(limit - 1):] if keep_end else s[: limit - 1] + "…"
    return s


def valid_text(s: str) -> str:
    """Text that encodes as UTF-8: lone surrogates (pypdf makes them) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", s)


@dataclass(frozen=True)
class Locator:
    """Where a segment sits in the document, in the words a reader uses.

    ``page`` is the *printed* page label when the PDF defines one ("iv",
    "12"), else the 1-based physical page number as text. ``page_index`` is
    the 0-based physical page and ``page_count`` the document's number of
    pages. ``label_repeats`` is True when another page carries the same
    label (numbering that restarts, a label that is only a prefix such as
    "Annex"): the citation then names the physical page too, "p. 1 (page 3
    of 40)", so that it points at one page. ``chapter`` is the chapter or
    section title (EPUB table-of-contents entry, PDF outline entry, Markdown
    heading, HTML <h1>/<h2>). Line numbers are 1-based and inclusive (text,
    Markdown, HTML).
    """

    page: str | None = None
    page_index: int | None = None
    chapter: str | None = None
    line_start: int | None = None
    line_end: int | None = None
    page_count: int | None = None
    label_repeats: bool | None = None

    def page_citation(self) -> str | None:
        """"p. 4", or "p. 1 (page 3 of 40)" when the label alone names several pages."""
        if self.page is None:
            return None
        if self.label_repeats and self.page_index is not None:
            of = f" of {self.page_count}" if self.page_count else ""
            return f"p. {self.page} (page {self.page_index + 1}{of})"
        return f"p. {self.page}"

    def __str__(self) -> str:
        parts = []
        if self.chapter:
            parts.append(f"“{self.chapter}”")
        if self.page is not None:
            parts.append(self.page_citation())
        if self.line_start is not None:
            if self.line_end is not None and self.line_end != self.line_start:
                parts.append(f"lines {self.line_start}–{self.line_end}")
            else:
                parts.append(f"line {self.line_start}")
        return ", ".join(parts) or "document"

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if v is not None}
        d["locator"] = str(self)
        return d


@dataclass(frozen=True)
class Segment:
    """A piece of document text with its locator.

    ``progress`` is the fraction (0..1] of the document read once this
    segment has been produced: pages for PDF, spine items for EPUB, bytes for
    text and HTML. Progress bars and ETAs use it before the token total is
    known.
    """

    text: str
    locator: Locator
    progress: float = 0.0


@dataclass
class DocumentInfo:
    """Cheap facts about a document, gathered without reading all its text."""

    path: str
    format: str  # "pdf" | "epub" | "text" | "markdown" | "html"
    title: str | None = None
    pages: int | None = None
    chapters: list[str] = field(default_factory=list)
    size_bytes: int = 0


class Reader:
    """Base class: open cheaply in ``__init__``, stream in ``segments()``.

    ``__init__`` must validate enough to fail early with a clear
    ``DocumentError`` (wrong type, corrupt, encrypted) without reading the
    whole document. ``segments()`` may still raise ``DocumentError`` for
    damage found later (a bad page), and raises ``NoTextError`` at the end
    if the whole document yielded no text.
    """

    format: str = ""

    def __init__(self, path: str, password: str | None = None) -> None:
        self.path = path
        self.password = password
        # One line each, for the person: what was skipped or guessed while
        # opening or reading (a spine item that is not text, an encoding that
        # had to be guessed, pages without text). Readers only append;
        # callers (``bookpot info``, ``bookpot text``) read it after reading.
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Record one warning line (control characters escaped, duplicates dropped)."""
        line = printable(message, 240)
        if line not in self.warnings:
            self.warnings.append(line)

    def info(self) -> DocumentInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def segments(self) -> Iterator[Segment]:  # pragma: no cover - abstract
        raise NotImplementedError
