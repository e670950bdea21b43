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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from ..errors import DocumentError, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable
from .text import bom_encoding, detect_encoding, undecodable, utf16_without_bom

CHUNK_BYTES = 64 * 1024
TARGET_CHARS = 2_000
MAX_CHARS = 4_000
# Markup html.parser must hold unparsed (an open comment, tag or <script>)
# may grow to this many characters; past it the document is refused.
MAX_PENDING_CHARS = 32 * 1024 * 1024

BLOCK_TAGS = frozenset((
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hr", "html", "legend", "li", "main", "nav", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
))
SKIP_TAGS = frozenset(("script", "style", "template"))
CHAPTER_TAGS = frozenset(("h1", "h2"))

_NON_SPACE = re.compile(r"\S")
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_DOCTYPE_NAME = re.compile(r"<!DOCTYPE\s+([A-Za-z][A-Za-z0-9:._-]*)", re.IGNORECASE)
_ELEMENT = re.compile(r"<[A-Za-z]")
MAX_PROLOG_CHARS = 1024 * 1024  # a DOCTYPE longer than this is passed on as it is
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']\s*([A-Za-z0-9._:-]+)""")
_CONTENT_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# WHATWG: these labels in an HTML file mean windows-1252.
_HTML_LATIN = frozenset(("ascii", "latin_1", "iso8859_1", "us_ascii"))
# Declared legacy codecs read as the superset browsers use for them (WHATWG
# Encoding Standard): files labelled gb2312 are full of GBK-only characters.
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949",
             "big5": "big5hkscs", "iso8859_9": "cp1254", "tis_620": "cp874", "iso8859_11": "cp874"}
_LABELS = {"x-gbk": "gbk", "windows-874": "cp874", "x-sjis": "shift_jis", "x-euc-jp": "euc_jp",
           "x-mac-roman": "mac_roman", "x-mac-cyrillic": "mac_cyrillic"}


@dataclass
class Block:
    """One paragraph of text. ``heading`` marks an h1/h2 (a new chapter)."""

    text: str
    line_start: int | None = None
    line_end: int | None = None
    chapter: str | None = None
    heading: bool = False
    progress: float = 0.0


class _HeadScanner(HTMLParser):
    """The charset a document's head declares: ``<meta charset>`` or the
    ``http-equiv="Content-Type"`` form, wherever they are in the head.

    A real parser, so a charset named in a comment, a script or the text of
    the page is not a declaration. Scanning stops at ``<body>`` or ``</head>``
    (or the first element of a body without those tags).
    """

    _HEAD_TAGS = frozenset(("html", "head", "meta", "title", "link", "style", "script", "base",
                            "noscript", "template"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.charset: str | None = None
        self.done = False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag not in self._HEAD_TAGS:
            self.done = True
            return
        if tag != "meta":
            return
        a = {k: (v or "") for k, v in attrs}
        if a.get("charset"):
            self.charset = a["charset"].strip()
        elif a.get("http-equiv", "").strip().lower() == "content-type":
            m = _CONTENT_CHARSET.search(a.get("content", ""))
            if m:
                self.charset = m.group(1)
        if self.charset:
            self.done = True

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "head":
            self.done = True


def _declared_charset(head: bytes) -> tuple[str | None, str]:
    """``(charset, how)`` an XML declaration or the head's <meta> declares, else (None, "")."""
    m = _XML_ENCODING.match(head)
    if m:
        return m.group(1).decode("ascii"), "xml"
    scanner = _HeadScanner()
    try:
        # latin-1 keeps every byte: markup is ASCII in every codec a <meta> can name
        scanner.feed(head.decode("latin-1"))
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        pass
    return scanner.charset, "meta"


def markup_encoding(head: bytes, complete: bool = False) -> tuple[str, str | None]:
    """``(codec, warning)`` of an HTML/XHTML file from its first bytes.

    In order: a BOM (or BOM-less UTF-16); a real declaration (an XML
    declaration, ``<meta charset>``, the ``http-equiv`` form, anywhere in the
    head) naming a codec Python knows; else UTF-8 if the bytes decode, else a
    detector's guess (``detect_encoding``). ``warning`` is one line when the
    result is a guess the detector is unsure of, or a declaration had to be
    overruled (it names an unknown codec, or says UTF-8 of bytes that are
    not); else None. ``complete``: ``head`` is the whole file.
    """
    bom = bom_encoding(head) or utf16_without_bom(head)
    if bom:
        return bom, None
    declared, how = _declared_charset(head)
    note = None
    if declared:
        try:
            info = codecs.lookup(_LABELS.get(declared.strip().lower(), declared))
            # rot13, base64 and the like are codecs but not text encodings
            codec = info.name if getattr(info, "_is_text_encoding", True) else None
        except LookupError:
            codec = None
        if codec is None:
            note = f"declares an unknown charset '{printable(declared, 40)}'"
        if codec is not None:
            codec = codec.replace("-", "_")
            if how == "meta" and codec in _HTML_LATIN:
                return "cp1252", None
            if codec.startswith(("utf_16", "utf_32")):
                codec = "utf_8"  # a UTF-16 file would have had a BOM or NULs: WHATWG reads UTF-8
            if codec not in ("utf_8", "utf_8_sig"):
                return codecs.lookup(_SUPERSET.get(codec, codec)).name, None
            try:
                codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
                return "utf-8", None
            except UnicodeDecodeError:
                note = "declares UTF-8 but is not UTF-8"
    codec, guess = detect_encoding(head, complete)
    if note:
        return codec, f"{note}: read as {codec}" + ("" if guess is None else f" ({guess})")
    return codec, guess


def sniff_markup_encoding(head: bytes) -> str:
    """The codec ``markup_encoding`` picks, without its warning."""
    return markup_encoding(head)[0]


class TextExtractor(HTMLParser):
    """Collects paragraphs from fed markup into ``self.blocks``.

    The caller drains ``blocks`` after each ``feed`` so memory stays bounded
    by one chunk. ``title`` is the first <title>, ``first_heading`` the first
    h1/h2, ``chapter`` the current chapter: the latest h1/h2 (when
    ``heading_chapters``), or the title ``marks`` gives the id of an element
    met (the table of contents of an EPUB points into a file at ``#id``: the
    chapter switches at that element). ``chapter`` starts as given.
    ``svg``: the document is an SVG image, whose only text is in its
    ``<text>`` elements (one paragraph each; a ``<tspan>`` placed on its own
    is a new line) and ``<foreignObject>`` HTML.
    """

    def __init__(self, marks: dict[str, str] | None = None, chapter: str | None = None,
                 heading_chapters: bool = True, svg: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title: str | None = None
        self.first_heading: str | None = None
        self.chapter: str | None = chapter
        self.marks = marks or {}
        self.marks_seen: set[str] = set()
        self.heading_chapters = heading_chapters
        self.svg = svg
        self._svg_text = 0
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

    def _mark(self, tag: str, attrs) -> None:
        for name, value in attrs:
            if name == "id" or (name == "name" and tag == "a"):  # <a name>: HTML 4 anchors
                title = self.marks.get(value or "")
                if title is not None and value not in self.marks_seen:
                    self.marks_seen.add(value)
                    self._break()
                    self.chapter = title
                    return

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in SKIP_TAGS:
            self._skip += 1
            return
        if self._skip:
            return
        if self.marks:
            self._mark(tag, attrs)
        if tag == "title":
            self._title = []
        elif tag == "br":
            self._parts.append("\n" if self._pre else " ")
            return
        elif self.svg and tag in ("text", "foreignobject"):
            self._svg_text += 1  # foreignObject: HTML inside an SVG, read as such
        elif self.svg and tag == "tspan" and any(k in ("x", "y", "dx", "dy") for k, _ in attrs):
            self._parts.append(" ")  # a line placed on its own: not glued to the previous one
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
            self.title = self.title or " ".join("".join(self._title).split()) or None
            self._title = None
            return
        if self.svg and tag in ("text", "foreignobject"):
            self._svg_text = max(0, self._svg_text - 1)
            self._break()
            return
        if tag in CHAPTER_TAGS and self._heading is not None:
            text = " ".join("".join(self._heading).split())
            self._heading = None
            if text:
                if self.heading_chapters:
                    self.chapter = text
                self.first_heading = self.first_heading or text
            self._break(heading=self.heading_chapters)
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
        if self.svg and not self._svg_text:
            return  # an SVG's other elements (<desc>, <metadata>, styles) are not its text
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


def _skip_quoted(text: str, j: int) -> int:
    """Index after the quoted string starting at ``text[j]``, or -1 if it does not end."""
    q = text.find(text[j], j + 1)
    return -1 if q < 0 else q + 1


def _doctype_end(text: str, start: int) -> tuple[int, bool]:
    """``(end, has_subset)`` of the DOCTYPE at ``text[start]``; end -1 if not yet complete.

    Quoted strings, and inside the internal subset comments too, may hold
    ``>`` and ``]``: they are skipped.
    """
    j, n = start + 9, len(text)
    subset = False
    while j < n:
        c = text[j]
        if c in "\"'":
            j = _skip_quoted(text, j)
            if j < 0:
                return -1, subset
        elif c == "[" and not subset:
            subset = True
            j += 1
            while j < n and text[j] != "]":
                if text[j] in "\"'":
                    j = _skip_quoted(text, j)
                    if j < 0:
                        return -1, subset
                elif text.startswith("<!--", j):
                    k = text.find("-->", j + 4)
                    if k < 0:
                        return -1, subset
                    j = k + 3
                else:
                    j += 1
            if j >= n:
                return -1, subset
            j += 1
        elif c == ">":
            return j + 1, subset
        else:
            j += 1
    return -1, subset


def without_internal_subset(text: str, final: bool = True) -> str | None:
    """``text`` with the internal subset of its DOCTYPE removed (``<!DOCTYPE html [...]>``
    becomes ``<!DOCTYPE html>``, keeping its line breaks so line numbers hold).

    Older XHTML declares entities there (``<!ENTITY nbsp "&#160;">``);
    html.parser would end the DOCTYPE at the first ``>`` and read the rest of
    the subset as text. The declarations are dropped, never expanded: a
    named reference HTML knows (``&nbsp;``) still reads as its character, any
    other stays as written. Only a DOCTYPE before the first element counts.
    Returns None when ``text`` may end inside the DOCTYPE and more is coming
    (``final`` False); with ``final``, an unfinished DOCTYPE is left as it is.
    """
    m = _DOCTYPE.search(text)
    if m is None:
        first = _ELEMENT.search(text)
        return text if final or first is not None else None
    first = _ELEMENT.search(text, 0, m.start())
    if first is not None:
        return text  # a DOCTYPE after the first element is text, not a declaration
    end, subset = _doctype_end(text, m.start())
    if end < 0:
        return text if final else None
    if not subset:
        return text
    old = text[m.start():end]
    name = _DOCTYPE_NAME.match(old)
    new = f"<!DOCTYPE {name.group(1) if name else 'html'}>" + "\n" * old.count("\n")
    return text[: m.start()] + new + text[end:]


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
        self._prolog: list[str] | None = []  # held until its DOCTYPE is known whole

    def feed(self, text: str) -> None:
        if self._prolog is not None:
            self._prolog.append(text)
            held = "".join(self._prolog)
            out = without_internal_subset(held, final=len(held) > MAX_PROLOG_CHARS)
            if out is None:
                self._prolog = [held]
                return
            self._prolog, text = None, out
        if text:
            self._buf.append(text)
            self._size += len(text)
        if self._size >= max(CHUNK_BYTES, len(self.parser.rawdata)):
            self._flush()

    def close(self) -> None:
        if self._prolog is not None:
            held = "".join(self._prolog)
            self._prolog = None
            self.feed(without_internal_subset(held, final=True))
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

    A heading, or a block of another chapter, always starts a new group, so
    a group's ``chapter`` is right;
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
        if (block.heading or size + len(block.text) > limit
                or (group and block.chapter != group[0].chapter)):
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
    """An HTML file; chapter = latest h1/h2, line numbers from the source.

    The encoding is a BOM's, a real declaration's (``markup_encoding``), else
    UTF-8 or a detector's guess; a guess it is unsure of, or a declaration
    overruled, is recorded in ``warnings``.
    """

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
        self.encoding, note = markup_encoding(self._head, complete=len(self._head) >= self.size)
        if note:
            self.warn(note)

    def info(self) -> DocumentInfo:
        p = TextExtractor()
        try:
            head = self._head.decode(self.encoding, errors="replace")
            p.feed(without_internal_subset(head))
        except (AssertionError, ValueError):  # a title is not worth an error
            pass
        return DocumentInfo(path=self.path, format="html", title=p.title or p.first_heading,
                            size_bytes=self.size)

    def _blocks(self) -> Iterator[Block]:
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        parser = TextExtractor()
        feeder = Feeder(parser, self.name)
        done = bad = 0  # bytes read; characters the codec could not decode (now U+FFFD)
        try:
            with open(self.path, "rb") as f:
                while True:
                    chunk = f.read(CHUNK_BYTES)
                    text = decoder.decode(chunk, final=not chunk)
                    bad += text.count("\ufffd")
                    done += len(chunk)
                    feeder.feed(text)
                    if not chunk:
                        feeder.close()
                        if bad:
                            self.warn(undecodable(bad, self.encoding))
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
