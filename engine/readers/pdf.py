"""PDF through pypdf, one page at a time.

Opening reads only the structure (xref, page tree, page labels, outline) so
a damaged or encrypted file fails at once; text is extracted page by page in
``segments()``, so the first page reaches the model before the last is read.
pypdf raises many kinds of exceptions on hostile input; every one of them
becomes a one-line ``DocumentError``, and pypdf's log chatter is silenced.
"""
from __future__ import annotations

import bisect
import logging
import os
import re
from typing import Iterator

from ..errors import DocumentError, EncryptedDocument, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment

logging.getLogger("pypdf").setLevel(logging.CRITICAL)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def _pypdf():
    try:
        import pypdf
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise DocumentError("reading PDFs needs the 'pypdf' package") from None
    return pypdf


def clean_page_text(text: str) -> str:
    """Drop control characters pypdf leaves for unmapped glyphs; trim spaces."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _TRAILING_SPACE.sub("\n", text).strip()


class PdfReader(Reader):
    """A PDF: one segment per page that has text, located by printed page label."""

    format = "pdf"

    def __init__(self, path, password: str | None = None) -> None:
        super().__init__(os.fspath(path), password)
        self.name = os.path.basename(self.path)
        self._fh = None
        self._reader = None
        self._reader = self._open_file()
        self._load(self._reader)

    def _open_file(self):
        """Open the file and a pypdf reader on it (kept: re-parsing costs as much as page 1)."""
        self.close()
        try:
            self.size = os.path.getsize(self.path)
            self._fh = open(self.path, "rb")
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None
        try:
            return self._open(self._fh)
        except DocumentError:
            self.close()
            raise

    def close(self) -> None:
        """Release the file handle; ``segments()`` reopens it if called again."""
        if self._fh is not None:
            self._fh.close()
        self._fh = self._reader = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def _damaged(self, err: Exception | None = None) -> DocumentError:
        """The one-line error for whatever pypdf raised while reading structure."""
        if type(err).__name__ == "DependencyError":  # pypdf needs 'cryptography' for AES
            return EncryptedDocument(f"{self.name} uses AES encryption, which needs the "
                                     f"'cryptography' Python package")
        return DocumentError(f"{self.name} is not a readable PDF (damaged or truncated)")

    def _open(self, fh):
        """A decrypted pypdf reader on ``fh``, or a one-line DocumentError."""
        pypdf = _pypdf()
        try:
            reader = pypdf.PdfReader(fh, strict=False)
            if not reader.is_encrypted:
                return reader
            # An empty user password is common (owner-only restrictions): try it.
            result = reader.decrypt(self.password or "")
        except Exception as e:  # noqa: BLE001 - pypdf's errors on bad input are many and varied
            raise self._damaged(e) from None
        if result == pypdf.PasswordType.NOT_DECRYPTED:
            if self.password is None:
                raise EncryptedDocument(f"{self.name} is encrypted; pass --password")
            raise EncryptedDocument(f"{self.name}: wrong password")
        return reader

    def _load(self, reader) -> None:
        try:
            self.page_count = len(reader.pages)
        except Exception:  # noqa: BLE001
            self.close()
            raise self._damaged() from None
        if self.page_count == 0:
            self.close()
            raise DocumentError(f"{self.name} has no pages")
        self.labels = self._read_labels(reader)
        self._outline = self._read_outline(reader)
        try:
            meta = reader.metadata
            self.title = str(meta.title).strip() or None if meta and meta.title else None
        except Exception:  # noqa: BLE001 - a broken /Info is no reason to refuse the book
            self.title = None

    def _read_labels(self, reader) -> list[str]:
        """Printed page labels (/PageLabels); physical numbers if absent or broken."""
        default = [str(i + 1) for i in range(self.page_count)]
        try:
            labels = list(reader.page_labels)
        except Exception:  # noqa: BLE001
            return default
        if len(labels) != self.page_count:
            return default
        return [str(label) if str(label) else default[i] for i, label in enumerate(labels)]

    def _read_outline(self, reader) -> list[tuple[int, str]]:
        """Top-level outline entries as sorted ``(first_page_index, title)``."""
        out: list[tuple[int, str]] = []
        try:
            for item in reader.outline:
                if isinstance(item, list):
                    continue  # children of the previous entry
                page = reader.get_destination_page_number(item)
                title = " ".join(str(item.title or "").split())
                if page is not None and page >= 0 and title:
                    out.append((page, title))
        except Exception:  # noqa: BLE001 - a broken outline only loses chapter names
            return []
        out.sort(key=lambda entry: entry[0])
        return out

    def chapter_of(self, page_index: int) -> str | None:
        """The top-level outline entry whose range contains ``page_index``."""
        starts = [p for p, _ in self._outline]
        i = bisect.bisect_right(starts, page_index) - 1
        return self._outline[i][1] if i >= 0 else None

    def info(self) -> DocumentInfo:
        chapters = []
        for _, title in self._outline:
            if title not in chapters:
                chapters.append(title)
        return DocumentInfo(path=self.path, format="pdf", title=self.title,
                            pages=self.page_count, chapters=chapters, size_bytes=self.size)

    def segments(self) -> Iterator[Segment]:
        reader = self._reader or self._open_file()
        any_text = False
        try:
            for i in range(self.page_count):
                label = self.labels[i]
                try:
                    text = reader.pages[i].extract_text()
                except Exception as e:  # noqa: BLE001
                    if type(e).__name__ == "DependencyError":
                        raise self._damaged(e) from None
                    raise DocumentError(
                        f"{self.name}: page {label} is damaged and cannot be read") from None
                text = clean_page_text(text or "")
                if not text:
                    continue  # blank or image-only page
                any_text = True
                yield Segment(text, Locator(page=label, page_index=i, chapter=self.chapter_of(i)),
                              progress=(i + 1) / self.page_count)
        finally:
            self.close()
        if not any_text:
            raise NoTextError(f"{self.name} has no text layer (a scanned PDF?); "
                              f"it needs OCR first")
