"""Streaming readers: PDF, EPUB, plain text / Markdown, HTML.

``open_document(path, password=None)`` picks the reader by content (magic
bytes) and extension, and returns a ``Reader`` whose ``segments()`` yields
``Segment(text, locator, progress)`` one page / chapter / block at a time.
"""
from __future__ import annotations

import os
import stat

from ..errors import DocumentError, UnsupportedFormat
from .base import DocumentInfo, Locator, Reader, Segment, printable

__all__ = ["READER_VERSION", "DocumentInfo", "Locator", "Reader", "Segment", "looks_binary",
           "open_document"]

# Part of every cached book state's key: bump it when a reader gives different
# text or locators for the same file, so no state read the old way is reused.
# 2: issue 20 (encodings, EPUB names/types/fragments, PDF fonts/forms/ligatures).
READER_VERSION = 2

SNIFF_BYTES = 8 * 1024
TEXT_EXTENSIONS = frozenset((".txt", ".text"))
MARKDOWN_EXTENSIONS = frozenset((".md", ".markdown"))
HTML_EXTENSIONS = frozenset((".html", ".htm", ".xhtml"))
SUPPORTED = "PDF, EPUB, .txt, .md, .html"

_EPUB_MIMETYPE = b"mimetypeapplication/epub+zip"
_CONTROL_OK = frozenset(b"\t\n\r\f\b\x1b")


def looks_binary(head: bytes) -> bool:
    """True if these first bytes are not text: a NUL, or >10% control characters.

    UTF-16 and UTF-32 text (with a BOM, or UTF-16 without one) is text even
    though it is full of NULs.
    """
    from .text import bom_encoding, utf16_without_bom

    if bom_encoding(head) in ("utf-16", "utf-32") or utf16_without_bom(head):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if (b < 32 and b not in _CONTROL_OK) or b == 127)
    return controls > len(head) * 0.10


def _looks_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:256].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<?xml")) and b"<html" in head.lower()


def open_document(path, password: str | None = None) -> Reader:
    """The right reader for ``path``, opened cheaply; DocumentError if it cannot be."""
    path = os.fspath(path)
    name = printable(os.path.basename(path) or path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DocumentError(f"{printable(path, 160, keep_end=True)}: no such file") from None
    except OSError as e:
        raise DocumentError(f"cannot read {name}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DocumentError(f"{name} is a directory, not a book")
    if not stat.S_ISREG(st.st_mode):
        raise UnsupportedFormat(f"{name} is not a regular file")
    if st.st_size == 0:
        raise DocumentError(f"{name} is empty")
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise DocumentError(f"cannot read {name}: {e.strerror or e}") from None

    ext = os.path.splitext(name)[1].lower()
    textual = ext in TEXT_EXTENSIONS | MARKDOWN_EXTENSIONS | HTML_EXTENSIONS
    # PDF allows junk before its header (within 1 KiB); a .txt that merely
    # mentions "%PDF-" near its start must stay text, so only trust that when
    # the header is at byte 0 or the name does not say "text".
    if head.startswith(b"%PDF-") or ext == ".pdf" or (b"%PDF-" in head[:1024] and not textual):
        from .pdf import PdfReader
        return PdfReader(path, password)
    if head.startswith(b"PK\x03\x04"):
        if head[30:58] == _EPUB_MIMETYPE or ext == ".epub":
            from .epub import EpubReader
            return EpubReader(path, password)
        raise UnsupportedFormat(f"{name} is a zip archive, not an EPUB; bookpot reads {SUPPORTED}")
    if ext == ".epub":
        raise DocumentError(f"{name} is not a readable EPUB (not a zip archive)")

    if looks_binary(head):
        raise UnsupportedFormat(f"{name} looks like a binary file; bookpot reads {SUPPORTED}")
    if ext in HTML_EXTENSIONS or (ext not in TEXT_EXTENSIONS | MARKDOWN_EXTENSIONS
                                  and _looks_html(head)):
        from .html import HtmlReader
        return HtmlReader(path, password)
    if ext in TEXT_EXTENSIONS | MARKDOWN_EXTENSIONS or ext == "":
        from .text import TextReader
        return TextReader(path, password, markdown=ext in MARKDOWN_EXTENSIONS)
    raise UnsupportedFormat(f"{name}: unknown file type {ext!r}; bookpot reads {SUPPORTED}")
