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
from typing import Iterator

from ..errors import DocumentError, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable

TARGET_CHARS = 2_000   # a segment may end at the first paragraph break past this
MAX_CHARS = 4_000      # ... and ends here even in the middle of a paragraph
SNIFF_BYTES = 64 * 1024

_HEADING = re.compile(r"^ {0,3}(#{1,2})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


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


def sniff_encoding(head: bytes) -> str:
    """Pick the codec for a text file from its first bytes.

    A BOM wins (UTF-8, UTF-16, UTF-32); then BOM-less UTF-16 (NULs in every
    other byte); then UTF-8 if the head decodes as UTF-8 (a character cut at
    the end of the head is fine), else cp1252, the usual encoding of old
    Western "plain text" files (latin-1 text reads right as cp1252). Never
    raises: decoding uses errors="replace".
    """
    bom = bom_encoding(head)
    if bom:
        return bom
    wide = utf16_without_bom(head)
    if wide:
        return wide
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def markdown_heading(line: str) -> str | None:
    """The title of an ATX level-1/2 heading (``# T`` / ``## T``), else None."""
    m = _HEADING.match(line)
    return m.group(2).strip() if m else None


class TextReader(Reader):
    """Plain text (``format="text"``) or Markdown (``format="markdown"``).

    Segments are blocks of lines of about ``TARGET_CHARS`` that end at a blank
    line where possible. For Markdown, a level-1/2 heading starts a new segment
    and becomes the chapter of the segments that follow it.
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
        self.encoding = sniff_encoding(head)
        self._head = head

    def info(self) -> DocumentInfo:
        title = None
        if self.format == "markdown":
            text = self._head.decode(self.encoding, errors="replace")
            for line in text.splitlines():
                title = markdown_heading(line)
                if title:
                    break
        return DocumentInfo(path=self.path, format=self.format, title=title,
                            size_bytes=self.size)

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
        in_fence = False
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

        for lineno, piece, at_start, pos in self._pieces():
            progress = pos / size
            if markdown and at_start:
                if _FENCE.match(piece):
                    in_fence = not in_fence
                elif not in_fence:
                    heading = markdown_heading(piece.rstrip("\n"))
                    if heading:
                        seg = flush()
                        if seg:
                            any_text = True
                            yield seg
                        chapter = heading
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
        if not any_text:
            raise NoTextError(f"{self.name} has no text")
