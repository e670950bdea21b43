"""PDF through pypdf, one page at a time.

Opening reads only the structure (xref, page tree, page labels, outline) so
a damaged or encrypted file fails at once; text is extracted page by page in
``segments()``, so the first page reaches the model before the last is read.
pypdf raises many kinds of exceptions on hostile input; every one of them
becomes a one-line ``DocumentError``, and pypdf's log chatter is silenced.

Before a page's text is extracted, its content is measured (``page_cost``):
pypdf's extraction is pure Python and, for text, quadratic in the page's
output, so one crafted page could stall a run for hours. A page whose
content streams (with the forms it draws, times the number of times it
draws them) exceed ``MAX_PAGE_CONTENT_BYTES``, ``MAX_PAGE_TEXT_OPS`` or
``MAX_PAGE_TEXT_BYTES`` is refused with one line. Real book pages are far
below all three: a dense text page is 5-50 KB of content with a few
thousand text operators.
"""
from __future__ import annotations

import bisect
import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator

from ..errors import DocumentError, EncryptedDocument, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable, valid_text

logging.getLogger("pypdf").setLevel(logging.CRITICAL)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")

MAX_PAGE_CONTENT_BYTES = 16 * 1024 * 1024  # decoded content of one page (vector figures: a few MB)
MAX_PAGE_TEXT_OPS = 50_000                 # strings/text operators shown (a dense page: ~5,000)
MAX_PAGE_TEXT_BYTES = 1024 * 1024          # bytes of strings it could show (a dense page: ~20 KB)
_MAX_FORM_DEPTH = 8

# Content-stream tokens, approximately: good enough to count, never to parse.
_REGULAR = rb"[^\s\[\]()<>{}/%]"
_DO = re.compile(rb"/(" + _REGULAR + rb"+)(?:\s|%[^\r\n]*[\r\n])+Do(?!" + _REGULAR + rb")")
_TEXT_OP = re.compile(rb"(?<!" + _REGULAR + rb")(?:Tj|TJ|'|\")(?!" + _REGULAR + rb")")
_STRING = re.compile(rb"\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>", re.DOTALL)
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


class PageTooLarge(Exception):
    """Raised inside ``page_cost`` when a limit is passed; carries the reason."""


class PageCost:
    """What extracting one page's text would cost, summed over streams and forms."""

    __slots__ = ("content_bytes", "text_bytes", "text_ops")

    def __init__(self, content_bytes: int = 0, text_ops: int = 0, text_bytes: int = 0) -> None:
        self.content_bytes, self.text_ops, self.text_bytes = content_bytes, text_ops, text_bytes

    def add(self, other: PageCost, times: int = 1) -> None:
        self.content_bytes += other.content_bytes * times
        self.text_ops += other.text_ops * times
        self.text_bytes += other.text_bytes * times
        self.check()

    def check(self) -> None:
        if self.content_bytes > MAX_PAGE_CONTENT_BYTES:
            raise PageTooLarge(f"its content is over {MAX_PAGE_CONTENT_BYTES >> 20} MiB")
        if self.text_ops > MAX_PAGE_TEXT_OPS:
            raise PageTooLarge(f"it shows over {MAX_PAGE_TEXT_OPS:,} pieces of text")
        if self.text_bytes > MAX_PAGE_TEXT_BYTES:
            raise PageTooLarge(f"it holds over {MAX_PAGE_TEXT_BYTES >> 20} MiB of strings")


def _decoded(stream, limit: int) -> bytes:
    """A content stream's decoded bytes, never inflating more than ``limit`` + 1.

    Plain FlateDecode (nearly every content stream) is inflated here with a
    bound, so a flate bomb costs ``limit`` bytes at most; other filters go
    through pypdf (which has its own output caps in recent versions).
    """
    raw = getattr(stream, "_data", None)
    filters = stream.get("/Filter")
    filters = filters.get_object() if hasattr(filters, "get_object") else filters
    if isinstance(filters, list):
        filters = [str(f) for f in filters]
    elif filters is not None:
        filters = [str(filters)]
    if isinstance(raw, bytes) and not filters:
        data = raw
    elif (isinstance(raw, bytes) and filters in (["/FlateDecode"], ["/Fl"])
          and not stream.get("/DecodeParms")):
        try:
            data = zlib.decompressobj().decompress(raw, limit + 1)
        except zlib.error:  # damaged: let pypdf try to recover it
            data = _pypdf_data(stream)
    else:
        data = _pypdf_data(stream)
    if len(data) > limit:
        raise PageTooLarge(f"its content is over {MAX_PAGE_CONTENT_BYTES >> 20} MiB")
    return data


def _pypdf_data(stream) -> bytes:
    try:
        return stream.get_data()
    except Exception as e:  # noqa: BLE001
        if type(e).__name__ == "LimitReachedError":  # pypdf's own output cap
            raise PageTooLarge(f"its content is over {MAX_PAGE_CONTENT_BYTES >> 20} MiB") from None
        return b""  # damaged: extraction will say so


def _name(raw: bytes) -> str:
    raw = _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    try:
        return "/" + raw.decode("utf-8")
    except UnicodeDecodeError:
        return "/" + raw.decode("latin-1")


def _resolve(obj):
    return obj.get_object() if hasattr(obj, "get_object") else obj


def page_cost(page) -> PageCost:
    """Measure ``page`` before extraction; raises ``PageTooLarge`` past a limit.

    Counts the decoded bytes of its content streams, the strings (or
    text-showing operators, if more) in them and the bytes of those strings, then adds each form
    XObject it draws, once per ``Do``, recursively (cycles skipped, as pypdf
    skips them). Damage is not this function's business: an unreadable
    stream counts as empty and extraction reports it.
    """
    return _content_cost(_resolve(page.get("/Contents")), _resolve(page.get("/Resources")),
                         PageCost(), depth=0, memo={}, active=set())


def _content_cost(contents, resources, total: PageCost, depth: int, memo: dict,
                  active: set) -> PageCost:
    streams = contents if isinstance(contents, list) else [contents]
    own = PageCost()
    for ref in streams:
        stream = _resolve(ref)
        if not hasattr(stream, "get_data"):
            continue
        data = _decoded(stream, MAX_PAGE_CONTENT_BYTES - total.content_bytes)
        # pypdf works per string (each element of a TJ array is one), so the
        # strings are counted too; a page with more operators than strings
        # is charged for its operators.
        part = PageCost(len(data))
        strings = 0
        for m in _STRING.finditer(data):
            strings += 1
            part.text_bytes += m.end() - m.start()
            if part.text_bytes > MAX_PAGE_TEXT_BYTES or strings > MAX_PAGE_TEXT_OPS:
                break
        part.text_ops = max(strings, len(_TEXT_OP.findall(data)))
        own.add(part)
        total.add(part)
        if depth >= _MAX_FORM_DEPTH or b"Do" not in data:
            continue
        xobjects = _resolve(resources.get("/XObject")) if hasattr(resources, "get") else None
        if not hasattr(xobjects, "get"):
            continue
        for raw_name, times in Counter(_DO.findall(data)).items():
            ref = xobjects.get(_name(raw_name))
            form = _resolve(ref)
            if not hasattr(form, "get_data") or form.get("/Subtype") != "/Form":
                continue  # an image, or nothing: extraction skips it
            key = (ref.idnum, ref.generation) if hasattr(ref, "idnum") else id(form)
            if key in active:
                continue
            if key not in memo:
                active.add(key)
                try:
                    memo[key] = _content_cost(form, _resolve(form.get("/Resources")) or resources,
                                              PageCost(total.content_bytes, total.text_ops,
                                                       total.text_bytes),
                                              depth + 1, memo, active)
                finally:
                    active.discard(key)
            own.add(memo[key], times)
            total.add(memo[key], times)
    return own


def _pypdf():
    try:
        import pypdf
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise DocumentError("reading PDFs needs the 'pypdf' package") from None
    return pypdf


# Compatibility ligatures (U+FB00-FB06) as the letters they join: a model
# reads "ﬁrst" as rare tokens and a search for "first" misses it.
LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
                           "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})


def clean_page_text(text: str) -> str:
    """Drop control characters pypdf leaves for unmapped glyphs; trim spaces;
    fold compatibility ligatures (ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ) into their letters.

    A ToUnicode map can name a lone surrogate: it becomes U+FFFD, so the
    text always encodes as UTF-8 (for the tokenizer, JSON and the terminal).
    """
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return valid_text(_TRAILING_SPACE.sub("\n", text).strip().translate(LIGATURES))


# -- fonts whose encoding is the one built into their embedded program ---------
_SIMPLE_TYPE1 = ("/Type1", "/MMType1")
_MAX_FONT_PROGRAM = 4 * 1024 * 1024  # a Type 1 subset is ~10-50 KB; whole CJK fonts are not Type 1
_T1_DUP = re.compile(rb"dup\s+(\d{1,3})\s*/([^\s/\[\]{}()<>]{1,64})\s+put")


def _type1_builtin(data: bytes) -> dict[int, str] | None:
    """code -> glyph name from a Type 1 program's clear-text /Encoding, None if Standard."""
    clear = data.split(b"eexec", 1)[0]
    at = clear.find(b"/Encoding")
    if at < 0 or clear[at:at + 40].split()[1:2] == [b"StandardEncoding"]:
        return None
    out = {int(c): n.decode("latin-1") for c, n in _T1_DUP.findall(clear[at:]) if int(c) < 256}
    return out or None


def _cff_builtin(data: bytes) -> dict[int, str] | None:
    """code -> glyph name from a CFF (Type1C) program's encoding, via fontTools; None if Standard."""
    try:
        from fontTools.cffLib import CFFFontSet
    except ImportError:  # pragma: no cover - a dependency
        return None
    import io

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), None)
    encoding = cff.topDictIndex[0].Encoding
    if isinstance(encoding, str):  # "StandardEncoding" / "ExpertEncoding": pypdf knows
        return None
    return {code: name for code, name in enumerate(encoding[:256])
            if name and name != ".notdef"}


def builtin_encoding(font) -> dict[int, str] | None:
    """The encoding built into a simple Type 1 font's embedded program, or None.

    Only for fonts that rely on it: no /Encoding, or a /Differences without
    /BaseEncoding (PDF 32000 9.6.6: the base is then the program's own).
    """
    if font.get("/Subtype") not in _SIMPLE_TYPE1:
        return None
    enc = _resolve(font.get("/Encoding"))
    if enc is not None and not (hasattr(enc, "get") and enc.get("/BaseEncoding") is None):
        return None
    descriptor = _resolve(font.get("/FontDescriptor"))
    if not hasattr(descriptor, "get"):
        return None
    program = _resolve(descriptor.get("/FontFile"))
    cff = False
    if program is None:
        program = _resolve(descriptor.get("/FontFile3"))
        cff = program is not None and program.get("/Subtype") == "/Type1C"
        if not cff:
            return None
    if not hasattr(program, "get_data"):
        return None
    data = _decoded(program, _MAX_FONT_PROGRAM)
    return _cff_builtin(data) if cff else _type1_builtin(data)


def use_builtin_encoding(font) -> bool:
    """Write a simple Type 1 font's built-in encoding into its /Encoding, in memory.

    TeX PDFs (dvips + Ghostscript) embed Computer Modern as CFF fonts with
    no /Encoding and a *partial* ToUnicode map that lists only the glyphs
    Standard Encoding lacks (ﬀ, ﬃ). By the PDF rules every other code means
    what the font program's own encoding says (code 12 is "fi"), but pypdf
    reads such codes as Standard Encoding, where 12 is nothing: "CNF
    Satisability", "to nd". Spelling the built-in encoding out as
    /Differences (over any the font gives) makes pypdf read it. True if changed.
    """
    builtin = builtin_encoding(font)
    if not builtin:
        return False
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject

    names = dict(builtin)
    enc = _resolve(font.get("/Encoding"))
    if hasattr(enc, "get"):
        code = 0
        for entry in _resolve(enc.get("/Differences")) or []:
            entry = _resolve(entry)
            if isinstance(entry, int):
                code = int(entry)
            else:
                names[code] = str(entry).lstrip("/")
                code += 1
    differences = ArrayObject()
    for code in sorted(names):
        differences += [NumberObject(code), NameObject("/" + names[code])]
    font[NameObject("/Encoding")] = DictionaryObject({NameObject("/Type"): NameObject("/Encoding"),
                                                      NameObject("/Differences"): differences})
    return True


def fix_page_fonts(page, seen: set) -> None:
    """``use_builtin_encoding`` on every font of ``page`` and of the forms it draws
    (each font once per document: ``seen`` holds their ids). Damage is ignored:
    extraction then reads the font as before."""
    stack = [(_resolve(page.get("/Resources")), 0)]
    while stack:
        resources, depth = stack.pop()
        if not hasattr(resources, "get") or id(resources) in seen:
            continue
        seen.add(id(resources))
        fonts = _resolve(resources.get("/Font"))
        for ref in (fonts.values() if hasattr(fonts, "values") else ()):
            font = _resolve(ref)
            key = (ref.idnum, ref.generation) if hasattr(ref, "idnum") else id(font)
            if key in seen or not hasattr(font, "get"):
                continue
            seen.add(key)
            try:
                use_builtin_encoding(font)
            except Exception:  # noqa: BLE001, S112 - a font program we cannot read stays as it was
                continue
        xobjects = _resolve(resources.get("/XObject"))
        if depth < _MAX_FORM_DEPTH and hasattr(xobjects, "values"):
            for ref in xobjects.values():
                form = _resolve(ref)
                if hasattr(form, "get") and form.get("/Subtype") == "/Form":
                    stack.append((_resolve(form.get("/Resources")), depth + 1))


# -- form fields ----------------------------------------------------------------
MAX_FIELDS_PER_PAGE = 2_000
MAX_FIELD_CHARS = 10_000
_HIDDEN = 2  # annotation flag: not shown


def _field_value(value) -> str:
    value = _resolve(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_field_value(v) for v in value if _field_value(v))
    text = str(value)
    if type(value).__name__ == "NameObject":
        text = "" if text == "/Off" else text.lstrip("/")
    return text[:MAX_FIELD_CHARS]


def form_fields(page) -> list[tuple[str, str]]:
    """``(name, value)`` of the filled-in form fields shown on ``page``, in reading
    order (top to bottom, then left to right).

    A field's value (/V) and type may sit on a parent field; its name is the
    user-facing one (/TU) if given, else the full dotted name (/T parts).
    Hidden widgets, empty values and unticked boxes are left out; a field
    with several widgets (radio buttons) is listed once.
    """
    annots = _resolve(page.get("/Annots"))
    if not isinstance(annots, list):
        return []
    found = []
    fields_seen: set = set()
    for ref in annots[:MAX_FIELDS_PER_PAGE]:
        widget = _resolve(ref)
        if not hasattr(widget, "get") or widget.get("/Subtype") != "/Widget":
            continue
        if int(_resolve(widget.get("/F")) or 0) & _HIDDEN:
            continue
        node, parts, label, value, owner = widget, [], None, None, None
        for _ in range(32):  # up the field tree; a cycle stops here
            if node.get("/T") is not None:
                parts.append(str(_resolve(node.get("/T"))))
                if label is None and node.get("/TU") is not None:
                    label = str(_resolve(node.get("/TU")))
            if value is None and node.get("/V") is not None:
                value, owner = node.get("/V"), node
            parent = _resolve(node.get("/Parent"))
            if not hasattr(parent, "get"):
                break
            node = parent
        text = _field_value(value)
        if not text.strip() or id(owner) in fields_seen:
            continue
        fields_seen.add(id(owner))
        name = label or ".".join(reversed(parts)) or "field"
        rect = _resolve(widget.get("/Rect"))
        try:
            top, left = -max(float(rect[1]), float(rect[3])), min(float(rect[0]), float(rect[2]))
        except (TypeError, ValueError, IndexError):
            top = left = 0.0
        found.append((top, left, clean_label(name, 120), text))
    found.sort(key=lambda f: (f[0], f[1]))
    return [(name, text) for _, _, name, text in found]


def clean_label(text: str, limit: int = 200) -> str:
    """A title, outline entry or page label on one line: no control characters,
    no lone surrogates, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join(valid_text(_CONTROL.sub(" ", text)).split())
    return text[: limit - 1] + "…" if len(text) > limit else text


class PdfReader(Reader):
    """A PDF: one segment per page that has text, located by printed page label."""

    format = "pdf"

    def __init__(self, path, password: str | None = None) -> None:
        super().__init__(os.fspath(path), password)
        self.name = printable(os.path.basename(self.path))
        self._fh = None
        self._reader = None
        self._reader = self._open_file()
        self._load(self._reader)

    def _open_file(self):
        """Open the file and a pypdf reader on it (kept: re-parsing costs as much as page 1)."""
        self.close()
        try:
            self.size = os.path.getsize(self.path)
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open until close()
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
        except Exception:  # noqa: BLE001, S110 - never raise from a finalizer
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
        self._label_counts = Counter(self.labels)
        self._outline = self._read_outline(reader)
        try:
            meta = reader.metadata
            self.title = clean_label(str(meta.title)) or None if meta and meta.title else None
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
        return [clean_label(str(label), 40) or default[i] for i, label in enumerate(labels)]

    def _read_outline(self, reader) -> list[tuple[int, str]]:
        """Top-level outline entries as sorted ``(first_page_index, title)``."""
        out: list[tuple[int, str]] = []
        try:
            for item in reader.outline:
                if isinstance(item, list):
                    continue  # children of the previous entry
                page = reader.get_destination_page_number(item)
                title = clean_label(str(item.title or ""))
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

    def _check_size(self, page, label: str) -> None:
        """Refuse a page too large to extract in reasonable time, before extracting it."""
        try:
            page_cost(page)
        except PageTooLarge as e:
            raise DocumentError(f"{self.name}: page {label} is too large to extract ({e}); "
                                f"refusing to read it") from None
        except RecursionError:
            raise DocumentError(f"{self.name}: page {label} is damaged and cannot be read") from None
        except Exception:  # noqa: BLE001, S110 - damage: extraction reports it in its own words
            pass

    def info(self) -> DocumentInfo:
        chapters = []
        for _, title in self._outline:
            if title not in chapters:
                chapters.append(title)
        return DocumentInfo(path=self.path, format="pdf", title=self.title,
                            pages=self.page_count, chapters=chapters, size_bytes=self.size)

    def locator(self, i: int) -> Locator:
        """Where physical page ``i`` (0-based) is: its label, and the physical page
        too when another page has the same label."""
        label = self.labels[i]
        return Locator(page=label, page_index=i, chapter=self.chapter_of(i),
                       page_count=self.page_count,
                       label_repeats=True if self._label_counts[label] > 1 else None)

    def segments(self) -> Iterator[Segment]:
        """One segment per page with text: its text, then its filled-in form
        fields ("name: value" lines). Pages without either are skipped and
        listed in ``warnings`` once the document has been read."""
        reader = self._reader or self._open_file()
        any_text = False
        blank: list[str] = []
        fonts_seen: set = set()
        try:
            for i in range(self.page_count):
                label = self.labels[i]
                try:
                    page = reader.pages[i]
                    self._check_size(page, label)
                    try:
                        fix_page_fonts(page, fonts_seen)
                    except Exception:  # noqa: BLE001, S110 - only a better reading is lost
                        pass
                    text = page.extract_text()
                    fields = form_fields(page)
                except DocumentError:
                    raise
                except Exception as e:  # noqa: BLE001
                    if type(e).__name__ == "DependencyError":
                        raise self._damaged(e) from None
                    raise DocumentError(
                        f"{self.name}: page {label} is damaged and cannot be read") from None
                text = clean_page_text(text or "")
                if fields:
                    form = clean_page_text("\n".join(f"{name}: {value}" for name, value in fields))
                    text = f"{text}\n\n{form}" if text else form
                if not text:
                    blank.append(self.locator(i).page_citation())
                    continue  # blank or image-only page
                any_text = True
                yield Segment(text, self.locator(i), progress=(i + 1) / self.page_count)
        finally:
            self.close()
        if not any_text:
            raise NoTextError(f"{self.name} has no text layer (a scanned PDF?); "
                              f"it needs OCR first")
        if blank:
            shown = ", ".join(blank[:8]) + (" …" if len(blank) > 8 else "")
            self.warn(f"{len(blank)} of {self.page_count} pages have no text (blank, or images "
                      f"only: scanned?): {shown}")
