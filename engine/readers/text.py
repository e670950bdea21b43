"""Plain text and Markdown, streamed line by line.

A book-sized .txt can be tens of megabytes and a reader must start the model
on its first paragraph, so the file is never read whole: lines come from a
file handle, at most ``MAX_CHARS`` characters at a time (a file with no
newlines at all still streams). Bad bytes never stop reading: undecodable
bytes become U+FFFD. A NUL character is not text: a file that turns binary
after a textual start (which is all ``open_document`` sniffs) is refused
when the NUL is reached.
"""
from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Iterator

from ..errors import DocumentError, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable

TARGET_CHARS = 2_000   # a segment may end at the first paragraph break past this
MAX_CHARS = 4_000      # ... and ends here even in the middle of a paragraph
SNIFF_BYTES = 64 * 1024

_NON_ASCII_TAIL = re.compile(rb"[\x80-\xff]+\Z")
MD_WINDOW_CHARS = 256 * 1024      # Markdown is parsed for headings this much at a time
MD_MAX_BLOCK_CHARS = 8 * 1024 * 1024  # ... and one block may grow to this before it is cut
MD_LINE_CHARS = 64 * 1024         # the part of a long line the heading parser sees


def utf16_without_bom(head: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" if ``head`` looks like BOM-less UTF-16 text, else None.

    Mostly-Latin UTF-16 has a NUL in every other byte; binary data does not
    keep to one parity. Needs a few dozen bytes to say anything.
    """
    if len(head) < 32:
        return None
    head = head[: len(head) - len(head) % 2]
    even, odd = head[0::2], head[1::2]
    half = len(head) // 2
    for zeros, chars, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= half * 0.9 and chars.count(0) == 0:
            return codec
    return None


def bom_encoding(head: bytes) -> str | None:
    """The codec a byte-order mark names (UTF-32 checked before UTF-16: it starts alike)."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


# Codecs that read Western text the same way in the letters that matter:
# when the detector ranks one of these as good as its best, the text is
# read as Windows-1252 (the usual encoding of old Western "plain text").
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_CLOSE_CHAOS = 0.1  # candidates this close to the best one's chaos are as likely


def codec_label(codec: str) -> str:
    """A codec's name as people write it: "utf-8", "gb18030", "cp1252"."""
    try:
        return codecs.lookup(codec).name
    except LookupError:
        return codec


def whole_lines(head: bytes, complete: bool) -> bytes:
    """``head`` without a tail that a read limit may have cut mid-character.

    Cut after its last line break, else (text without breaks near the end:
    CJK prose) after its last ASCII byte in the final 4 KiB: in UTF-8 and the
    East Asian multibyte codecs an ASCII-range byte always ends a character.
    """
    if complete:
        return head
    cut = head.rfind(b"\n")
    if cut >= len(head) // 2:
        return head[: cut + 1]
    tail = _NON_ASCII_TAIL.search(head, max(0, len(head) - 4096))
    if tail and tail.start() > 0 and head[tail.start() - 1] < 0x80:
        return head[: tail.start()]
    return head


def detect_encoding(head: bytes, complete: bool = False) -> tuple[str, str | None]:
    """``(codec, warning)`` for undeclared text: UTF-8 if it decodes, else a guess.

    ``head`` is the start of the file (``complete``: the whole file). A head
    that decodes as UTF-8 is UTF-8 (a character cut at its end is fine).
    Otherwise charset-normalizer, a maintained detector, ranks the codecs by
    how much mess they make of the bytes. When several codecs make readable
    but *different* text, the guess is uncertain: the best is used (a
    Western codec if it ranks as well as the best, as old Western text is
    the commonest such file) and ``warning`` says so in one line, naming the
    alternatives. ``warning`` is None when the result is certain. Never
    raises; empty input is UTF-8.
    """
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8", None
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a dependency
        return "cp1252", ("not UTF-8 and the 'charset-normalizer' package is missing: "
                          "read as cp1252, some characters may be wrong")
    sample = whole_lines(head, complete)
    matches = list(from_bytes(sample))
    if not complete and sample[-1:] >= b"\x80":
        # No safe place to cut: one of these two ends on a whole double-byte character.
        shorter = list(from_bytes(sample[:-1]))
        if shorter and (not matches or min(m.chaos for m in shorter) < min(m.chaos for m in matches)):
            sample, matches = sample[:-1], shorter
    if not matches:
        return "cp1252", ("the encoding could not be recognised (not UTF-8 nor any known "
                          "codec): read as cp1252, some characters may be wrong")
    best = min(matches, key=lambda m: m.chaos)
    close = [m for m in matches if m.chaos <= best.chaos + _CLOSE_CHAOS]
    western = next((m for m in close if codec_label(m.encoding) in
                    tuple(codec_label(w) for w in _WESTERN)), None)
    choice = western or best
    codec = codec_label(choice.encoding)
    text = sample.decode(codec, errors="replace")
    others = []
    for m in close:
        name = codec_label(m.encoding)
        if name == codec or name in others:
            continue
        if sample.decode(name, errors="replace") != text:
            others.append(name)
    if not others:
        return codec, None
    also = ", ".join(others[:3]) + (" …" if len(others) > 3 else "")
    return codec, (f"encoding not declared and not UTF-8: guessed {codec} "
                   f"(could also be {also}); some characters may be wrong")


def undecodable(count: int, codec: str, where: str | None = None) -> str:
    """The warning for ``count`` characters ``codec`` could not decode (read as U+FFFD);
    ``where``: the first one's place ("line 12")."""
    what = "character" if count == 1 else "characters"
    at = f" (the first at {where})" if where else ""
    return f"{count:,} {what} could not be decoded as {codec_label(codec)}{at} and read as \ufffd"


def sniff_encoding(head: bytes, complete: bool = False) -> tuple[str, str | None]:
    """``(codec, warning)`` for a text file from its first bytes.

    A BOM wins (UTF-8, UTF-16, UTF-32); then BOM-less UTF-16 (NULs in every
    other byte); then ``detect_encoding`` (UTF-8, else a detector's guess,
    with a one-line ``warning`` when it is unsure). Never raises: decoding
    uses errors="replace".
    """
    bom = bom_encoding(head)
    if bom:
        return bom, None
    wide = utf16_without_bom(head)
    if wide:
        return wide, None
    return detect_encoding(head, complete)


def _heading_text(md, content: str) -> str:
    """The plain text of a heading's inline Markdown (emphasis, code, links unwrapped)."""
    out: list[str] = []

    def walk(tokens) -> None:
        for t in tokens or ():
            if t.type in ("text", "code_inline"):
                out.append(t.content)
            elif t.type in ("softbreak", "hardbreak"):
                out.append(" ")
            elif t.children:
                walk(t.children)

    try:
        walk(md.parseInline(content))
    except Exception:  # noqa: BLE001 - a title is never worth an error
        return " ".join(content.split())
    return " ".join("".join(out).split())


def _markdown_parsers():
    """CommonMark parsers (markdown-it-py): blocks only; the same knowing YAML front
    matter (for a document's start); and a full one for titles."""
    from markdown_it import MarkdownIt

    blocks = MarkdownIt("commonmark")
    blocks.disable(["inline", "text_join"], ignoreInvalid=True)
    start = MarkdownIt("commonmark")
    start.disable(["inline", "text_join"], ignoreInvalid=True)
    try:  # a "---" block of YAML at the top is metadata, not a setext heading
        from mdit_py_plugins.front_matter import front_matter_plugin

        start.use(front_matter_plugin)
    except ImportError:  # pragma: no cover - installed with markdown-it-py's plugins
        pass
    return blocks, start, MarkdownIt("commonmark")


def markdown_headings(lines: Iterator[str], levels: int = 2) -> Iterator[tuple[int, int, str]]:
    """``(first_line, last_line, title)`` of each top-level heading of level <= ``levels``.

    ``lines`` are the document's lines (each with its "\n"); line numbers are
    1-based. Headings are found as CommonMark defines them, by markdown-it-py:
    ATX (``# T``) and setext (``T`` underlined with ``===`` or ``---``), never
    inside code (a fence closes only on its own character, at least as long),
    HTML blocks, block quotes, lists or a YAML front matter block.

    The document is parsed in windows of about ``MD_WINDOW_CHARS``: a window
    is parsed at a blank line, everything before its last top-level block is
    final, and that last block (which may go on: a fence, a list, a paragraph
    underlined later) is parsed again with the next window. A block longer
    than ``MD_MAX_BLOCK_CHARS`` (an unclosed fence) is taken as it stands.
    Memory is bounded by that, not by the document.
    """
    md, start, inline = _markdown_parsers()
    window: list[str] = []
    size = 0
    base = 0  # 0-based number of window[0]
    parse_at = MD_WINDOW_CHARS

    def parse(final: bool) -> Iterator[tuple[int, int, str]]:
        nonlocal window, size, base, parse_at
        tokens = (start if base == 0 else md).parse("".join(window))
        starts = [t.map[0] for t in tokens if t.level == 0 and t.nesting >= 0 and t.map]
        keep = starts[-1] if starts and not final else len(window)
        if keep == 0:  # one block fills the window: wait for more, unless it is too big
            if size < MD_MAX_BLOCK_CHARS:
                parse_at = size * 2
                return
            keep = len(window)
        for i, t in enumerate(tokens):
            if (t.type == "heading_open" and t.level == 0 and t.map and t.map[0] < keep
                    and int(t.tag[1:]) <= levels and i + 1 < len(tokens)):
                title = _heading_text(inline, tokens[i + 1].content)
                if title:
                    yield base + t.map[0] + 1, base + t.map[1], title
        base += keep
        window = window[keep:]
        size = sum(len(x) for x in window)
        parse_at = max(MD_WINDOW_CHARS, size * 2)

    for line in lines:
        window.append(line)
        size += len(line)
        if size >= parse_at and not line.strip():
            yield from parse(final=False)
    if window:
        yield from parse(final=True)


class TextReader(Reader):
    """Plain text (``format="text"``) or Markdown (``format="markdown"``).

    Segments are blocks of lines of about ``TARGET_CHARS`` that end at a blank
    line where possible. For Markdown, a level-1/2 heading (ATX or setext, as
    CommonMark defines them: see ``markdown_headings``) starts a new segment
    and becomes the chapter of the segments that follow it.

    The encoding is a BOM's, else UTF-8, else a detector's guess; an unsure
    guess is recorded in ``warnings``.
    """

    def __init__(self, path, password: str | None = None, markdown: bool = False) -> None:
        super().__init__(os.fspath(path), password)
        self.format = "markdown" if markdown else "text"
        self.name = printable(os.path.basename(self.path))
        try:
            self.size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None
        self.encoding, note = sniff_encoding(head, complete=len(head) >= self.size)
        if note:
            self.warn(note)
        self._head = head

    def info(self) -> DocumentInfo:
        title = None
        if self.format == "markdown":
            text = whole_lines(self._head, len(self._head) >= self.size).decode(
                self.encoding, errors="replace")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            lines = text.splitlines(keepends=True)
            title = next((t for _, _, t in markdown_headings(iter(lines))), None)
        return DocumentInfo(path=self.path, format=self.format, title=title,
                            size_bytes=self.size)

    def _lines(self) -> Iterator[str]:
        """The document's lines for the heading parser (a long line keeps its first
        ``MD_LINE_CHARS`` characters: enough for any block structure)."""
        line: list[str] = []
        kept = 0
        for _, piece, _, _ in self._pieces():
            if kept < MD_LINE_CHARS:
                line.append(piece[: MD_LINE_CHARS - kept])
                kept += len(line[-1])
            if piece.endswith("\n"):
                text = "".join(line)
                yield text if text.endswith("\n") else text + "\n"
                line, kept = [], 0
        if line:
            yield "".join(line)

    def _pieces(self) -> Iterator[tuple[int, str, bool, int]]:
        """Yield ``(line_number, text, at_line_start, bytes_read)``.

        ``text`` is a whole line (with its "\\n") or, for an overlong line, a
        piece of at most ``MAX_CHARS`` characters.
        """
        try:
            with open(self.path, "rb") as raw:
                f = io.TextIOWrapper(raw, encoding=self.encoding, errors="replace", newline=None)
                lineno, at_start = 1, True
                carry = ""  # the cut-off word of an overlong line
                while True:
                    piece = f.readline(MAX_CHARS)
                    if not piece:
                        if carry:
                            yield lineno, carry, at_start, raw.tell()
                        return
                    piece, carry = carry + piece, ""
                    if "\x00" in piece:
                        raise DocumentError(f"{self.name} is not text: it has binary data "
                                            f"(a NUL byte) at line {lineno:,}")
                    if not piece.endswith("\n") and len(piece) >= MAX_CHARS:
                        # Cut after a space, never inside a word: segments
                        # joined back must give the document's exact text.
                        cut = max(piece.rfind(" "), piece.rfind("\t"))
                        if cut >= MAX_CHARS // 2:
                            piece, carry = piece[: cut + 1], piece[cut + 1 :]
                    yield lineno, piece, at_start, raw.tell()
                    at_start = piece.endswith("\n")
                    if at_start:
                        lineno += 1
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None

    def segments(self) -> Iterator[Segment]:
        markdown = self.format == "markdown"
        size = max(self.size, 1)
        buf: list[str] = []
        nchars = 0
        first = last = None
        chapter: str | None = None
        headings = markdown_headings(self._lines()) if markdown else iter(())
        heading = next(headings, None)
        any_text = False
        progress = 0.0

        def flush() -> Segment | None:
            nonlocal buf, nchars, first, last
            # Verbatim (not stripped): the tokenizer joins segments back
            # into the document's exact text.
            text = "".join(buf)
            seg = None
            if text.strip():
                seg = Segment(text, Locator(chapter=chapter, line_start=first, line_end=last),
                              progress=min(progress, 1.0))
            buf, nchars, first, last = [], 0, None, None
            return seg

        bad, first_bad = 0, 0  # characters the codec could not decode (now U+FFFD)
        for lineno, piece, at_start, pos in self._pieces():
            progress = pos / size
            if "\ufffd" in piece:
                bad += piece.count("\ufffd")
                first_bad = first_bad or lineno
            while heading is not None and heading[0] < lineno:
                heading = next(headings, None)  # pragma: no cover - lines are never skipped
            if at_start and heading is not None and heading[0] == lineno:
                seg = flush()
                if seg:
                    any_text = True
                    yield seg
                chapter = heading[2]
                heading = next(headings, None)
            blank = not piece.strip()
            buf.append(piece)
            nchars += len(piece)
            if not blank:
                first = first or lineno
                last = lineno
            if nchars >= MAX_CHARS or (blank and nchars >= TARGET_CHARS):
                seg = flush()
                if seg:
                    any_text = True
                    yield seg
        progress = 1.0
        seg = flush()
        if seg:
            any_text = True
            yield seg
        if bad:
            self.warn(undecodable(bad, self.encoding, f"line {first_bad:,}"))
        if not any_text:
            raise NoTextError(f"{self.name} has no text")
