"""HTML, streamed through the stdlib parser 64 KiB at a time.

``TextExtractor`` turns markup into paragraphs (block elements become
paragraph breaks, script/style are dropped, ``<pre>`` keeps its lines) and
``pack_blocks`` groups paragraphs into small segments. The EPUB reader reuses
both for its XHTML chapters, so HTML and EPUB text look alike to the model.
html.parser never expands entity declarations and never fetches anything.
"""
from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Iterable, Iterator

from ..errors import DocumentError, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable
from .text import bom_encoding, utf16_without_bom

CHUNK_BYTES = 64 * 1024
TARGET_CHARS = 2_000
MAX_CHARS = 4_000
# Markup html.parser must hold unparsed (an open comment, tag or <script>)
# may grow to this many characters; past it the document is refused.
MAX_PENDING_CHARS = 32 * 1024 * 1024

BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl dt "
    "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html legend li "
    "main nav ol p pre section summary table tbody td tfoot th thead tr ul".split()
)
SKIP_TAGS = frozenset(("script", "style", "template"))
CHAPTER_TAGS = frozenset(("h1", "h2"))

_NON_SPACE = re.compile(r"\S")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)""")


@dataclass
class Block:
    """One paragraph of text. ``heading`` marks an h1/h2 (a new chapter)."""

    text: str
    line_start: int | None = None
    line_end: int | None = None
    chapter: str | None = None
    heading: bool = False
    progress: float = 0.0


def sniff_markup_encoding(head: bytes) -> str:
    """Codec of an HTML/XHTML file: BOM, XML declaration, <meta charset>, else UTF-8/cp1252."""
    bom = bom_encoding(head) or utf16_without_bom(head)
    if bom:
        return bom
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head[:4096])
    if m:
        try:
            return codecs.lookup(m.group(1).decode("ascii")).name
        except LookupError:
            pass
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


class TextExtractor(HTMLParser):
    """Collects paragraphs from fed markup into ``self.blocks``.

    The caller drains ``blocks`` after each ``feed`` so memory stays bounded
    by one chunk. ``title`` is the <title>, ``first_heading`` the first h1/h2,
    ``chapter`` the latest h1/h2.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title: str | None = None
        self.first_heading: str | None = None
        self.chapter: str | None = None
        self._parts: list[str] = []
        self._start: int | None = None
        self._end: int | None = None
        self._skip = 0
        self._pre = 0
        self._heading: list[str] | None = None
        self._title: list[str] | None = None

    # -- paragraph assembly -------------------------------------------------
    def _break(self, heading: bool = False) -> None:
        raw = "".join(self._parts)
        text = raw.strip("\n") if self._pre else " ".join(raw.split())
        if text.strip():
            self.blocks.append(Block(text, self._start, self._end, self.chapter, heading))
        self._parts, self._start, self._end = [], None, None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in SKIP_TAGS:
            self._skip += 1
            return
        if self._skip:
            return
        if tag == "title":
            self._title = []
        elif tag == "br":
            self._parts.append("\n" if self._pre else " ")
            return
        if tag in BLOCK_TAGS:
            self._break()
        if tag in CHAPTER_TAGS:
            self._heading = []
        elif tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "title" and self._title is not None:
            self.title = " ".join("".join(self._title).split()) or self.title
            self._title = None
            return
        if tag in CHAPTER_TAGS and self._heading is not None:
            text = " ".join("".join(self._heading).split())
            self._heading = None
            if text:
                self.chapter = text
                self.first_heading = self.first_heading or text
            self._break(heading=True)
            return
        if tag in BLOCK_TAGS:
            self._break()  # before leaving <pre>, so its lines are kept
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._title is not None:
            self._title.append(data)
            return
        if self._heading is not None:
            self._heading.append(data)
        line = self.getpos()[0]
        if data.strip():
            self._start = self._start or line
            self._end = line + data.count("\n")
        self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._break()


class Feeder:
    """Feeds markup to a ``TextExtractor`` without html.parser going quadratic.

    html.parser rescans everything it holds unparsed (an unclosed comment,
    tag or <script>) on every ``feed``; fed 64 KiB at a time, a 100 MB
    ``<!--`` would take hours. Here new text is buffered until it is at
    least as long as what the parser holds, so each rescan is paid for by as
    much new text: linear overall. Unparsed markup over ``MAX_PENDING_CHARS``
    is refused, and the parser's rare internal errors become a DocumentError.
    """

    def __init__(self, parser: HTMLParser, name: str) -> None:
        self.parser = parser
        self.name = name
        self._buf: list[str] = []
        self._size = 0

    def feed(self, text: str) -> None:
        if text:
            self._buf.append(text)
            self._size += len(text)
        if self._size >= max(CHUNK_BYTES, len(self.parser.rawdata)):
            self._flush()

    def close(self) -> None:
        self._flush()
        try:
            self.parser.close()
        except (AssertionError, ValueError):
            raise self._damaged() from None

    def _flush(self) -> None:
        text = "".join(self._buf)
        self._buf, self._size = [], 0
        try:
            self.parser.feed(text)
        except (AssertionError, ValueError):
            raise self._damaged() from None
        if len(self.parser.rawdata) > MAX_PENDING_CHARS:
            raise DocumentError(f"{self.name} has markup that never ends (a comment, tag or "
                                f"script longer than {MAX_PENDING_CHARS >> 20} MiB)")

    def _damaged(self) -> DocumentError:
        return DocumentError(f"{self.name} is damaged: its markup cannot be parsed")


def split_long(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` chars, at whitespace when possible.

    Walks an index instead of re-slicing the rest, so a 20 MB paragraph
    (an unclosed comment read as text) splits in linear time.
    """
    pieces = []
    start, end = 0, len(text)
    while end - start > limit:
        cut = text.rfind("\n", start + limit // 2, start + limit)
        if cut < 0:
            cut = text.rfind(" ", start + limit // 2, start + limit)
        if cut < 0:
            cut = start + limit
        pieces.append(text[start:cut].strip())
        m = _NON_SPACE.search(text, cut)
        start = m.start() if m else end
    rest = text[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _split_oversized(blocks: Iterable[Block], target: int, limit: int) -> Iterator[Block]:
    """Pass blocks through, cutting any longer than ``limit`` into ``target``-sized pieces."""
    for block in blocks:
        if len(block.text) <= limit:
            yield block
            continue
        for k, piece in enumerate(split_long(block.text, target)):
            yield Block(piece, block.line_start, block.line_end, block.chapter,
                        heading=block.heading and k == 0, progress=block.progress)


def pack_blocks(blocks: Iterable[Block], target: int = TARGET_CHARS,
                limit: int = MAX_CHARS) -> Iterator[Block]:
    """Group paragraphs into segments of about ``target`` chars (never over ``limit``).

    A heading always starts a new group, so a group's ``chapter`` is right;
    an oversized paragraph is split at whitespace. Each result is a ``Block``
    spanning the lines of its paragraphs, with the progress of its last one.
    """
    group: list[Block] = []
    size = 0

    def emit() -> Block | None:
        nonlocal group, size
        if not group:
            return None
        starts = [b.line_start for b in group if b.line_start is not None]
        ends = [b.line_end for b in group if b.line_end is not None]
        out = Block("\n\n".join(b.text for b in group), min(starts, default=None),
                    max(ends, default=None), group[0].chapter, progress=group[-1].progress)
        group, size = [], 0
        return out

    for block in _split_oversized(blocks, target, limit):
        if block.heading or size + len(block.text) > limit:
            out = emit()
            if out:
                yield out
        group.append(block)
        size += len(block.text) + 2
        if size >= target:
            yield emit()
    out = emit()
    if out:
        yield out


class HtmlReader(Reader):
    """An HTML file; chapter = latest h1/h2, line numbers from the source."""

    format = "html"

    def __init__(self, path, password: str | None = None) -> None:
        super().__init__(os.fspath(path), password)
        self.name = printable(os.path.basename(self.path))
        try:
            self.size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                self._head = f.read(CHUNK_BYTES)
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None
        self.encoding = sniff_markup_encoding(self._head)

    def info(self) -> DocumentInfo:
        p = TextExtractor()
        try:
            p.feed(self._head.decode(self.encoding, errors="replace"))
        except (AssertionError, ValueError):  # a title is not worth an error
            pass
        return DocumentInfo(path=self.path, format="html", title=p.title or p.first_heading,
                            size_bytes=self.size)

    def _blocks(self) -> Iterator[Block]:
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        parser = TextExtractor()
        feeder = Feeder(parser, self.name)
        done = 0
        try:
            with open(self.path, "rb") as f:
                while True:
                    chunk = f.read(CHUNK_BYTES)
                    done += len(chunk)
                    if chunk:
                        feeder.feed(decoder.decode(chunk))
                    else:
                        feeder.feed(decoder.decode(b"", final=True))
                        feeder.close()
                    progress = min(done / max(self.size, 1), 1.0) if chunk else 1.0
                    for block in parser.blocks:
                        block.progress = progress
                        yield block
                    parser.blocks.clear()
                    if not chunk:
                        return
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None

    def segments(self) -> Iterator[Segment]:
        any_text = False
        for b in pack_blocks(self._blocks()):
            any_text = True
            yield Segment(b.text, Locator(chapter=b.chapter, line_start=b.line_start,
                                          line_end=b.line_end), progress=b.progress)
        if not any_text:
            raise NoTextError(f"{self.name} has no text")
