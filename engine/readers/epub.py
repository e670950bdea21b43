"""EPUB with the stdlib only: container.xml -> OPF -> spine, one item at a time.

An EPUB is a zip from a stranger, so this module trusts nothing in it:
hrefs must stay inside the archive; the number of members is checked before
the zip's directory is loaded; every member is streamed with a size cap (the
header's size is not believed), a cap on its expansion ratio, and a cap on
the running total; the package XML files (container, OPF, NCX) have a smaller
cap and an element count limit (ElementTree costs ~250 bytes per element), and
when they declare entities they are refused before any parser sees them.
Chapters are streamed through the HTML parser a chunk at a time, so not even
one whole chapter needs to be in memory; html.parser never expands a declared
entity, and a chapter's internal DTD subset is dropped unread.
"""
from __future__ import annotations

import codecs
import html.entities
import os
import posixpath
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from ..errors import DocumentError, EncryptedDocument, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable
from .html import (
    Block,
    Feeder,
    TextExtractor,
    markup_encoding,
    pack_blocks,
    without_internal_subset,
)
from .text import undecodable

MAX_MEMBER_BYTES = 64 * 1024 * 1024     # one chapter, inflated
MAX_TOTAL_BYTES = 1024 * 1024 * 1024    # everything read from one book, inflated
MAX_XML_BYTES = 8 * 1024 * 1024         # container.xml, the OPF, the toc, encryption.xml
MAX_XML_ELEMENTS = 300_000              # ... and their elements (a huge NCX has ~100k)
MAX_MEMBERS = 20_000                    # files in the zip (big illustrated books: ~5k)
MAX_RATIO = 200                         # inflated / compressed; text deflates ~3-10x
RATIO_FREE_BYTES = 1024 * 1024          # small members may compress better than that
READ_CHUNK = 1024 * 1024
SEGMENT_CHARS = 4_000
# Spine media types read as XHTML (compared without case or parameters):
# EPUB's own, HTML, generic XML, the OEB 1 type old books still carry, DTBook.
XHTML_TYPES = frozenset(("application/xhtml+xml", "text/html", "application/xml", "text/xml",
                         "text/x-oeb1-document", "application/x-dtbook+xml"))
SVG_TYPES = frozenset(("image/svg+xml",))
XHTML_TYPES_DEFAULT = "application/xhtml+xml"
_MARKUP_SUFFIXES = (".xhtml", ".html", ".htm", ".xml")
_XML_NAMED = frozenset(("amp", "lt", "gt", "quot", "apos"))
_LEGACY_NAME_CODECS = ("gb18030", "cp932", "big5hkscs", "cp949", "cp1252", "cp866")
_NAMED_REF = re.compile(r"&([A-Za-z][A-Za-z0-9]{0,31});")

_ENTITY_DECL = re.compile(r"<!ENTITY|<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Errors the zip/zlib layers raise on damaged or hostile archives.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError, KeyError)


class _TooManyElements(Exception):
    pass


class _CountingBuilder:
    """An ElementTree builder that stops at ``MAX_XML_ELEMENTS`` elements."""

    def __init__(self) -> None:
        self._tree = ET.TreeBuilder()
        self.count = 0

    def start(self, tag, attrs):
        self.count += 1
        if self.count > MAX_XML_ELEMENTS:
            raise _TooManyElements
        return self._tree.start(tag, attrs)

    def end(self, tag):
        return self._tree.end(tag)

    def data(self, data):
        self._tree.data(data)

    def close(self):
        return self._tree.close()


@dataclass
class SpineItem:
    """One spine entry bookpot reads.

    ``path`` is the member's name in the zip; ``title`` the table-of-contents
    entry that names the whole file; ``marks`` maps element ids to the toc
    entries that point inside it (``file.xhtml#ch2``): the chapter switches
    there; ``first`` is the title of its first toc entry; ``svg`` marks an SVG page.
    """

    path: str
    title: str | None = None
    marks: dict[str, str] = field(default_factory=dict)
    first: str | None = None
    svg: bool = False


def media_type(item) -> str:
    """A manifest item's media type without case or parameters ("Text/HTML; charset=x" -> "text/html")."""
    return ((item.get("media-type") or XHTML_TYPES_DEFAULT).split(";", 1)[0].strip().lower()
            or XHTML_TYPES_DEFAULT)


def _named_ref(m: re.Match) -> str:
    name = m.group(1)
    if name in _XML_NAMED:
        return m.group(0)
    chars = html.entities.html5.get(name + ";")
    return "".join(f"&#{ord(c)};" for c in chars) if chars else m.group(0)


def html_entities_to_xml(text: str) -> str:
    """Named references HTML defines (``&nbsp;``, ``&eacute;``) as numeric ones XML
    reads; XML's own five and unknown names are left as they are."""
    return _NAMED_REF.sub(_named_ref, text) if "&" in text else text


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def zip_directory(path: str) -> tuple[int, int] | None:
    """``(member count, directory bytes)`` from the zip's end record, read first.

    ``zipfile.ZipFile`` builds one ZipInfo (~1 KB) per member up front, so a
    20 MB archive of 200,000 empty members costs 200 MB before any check
    could run. None if the end record cannot be found (ZipFile will say why).
    """
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:  # pragma: no cover - present in every CPython 3
        return None
    try:
        with open(path, "rb") as f:
            rec = end_record(f)
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    # _ECD_ENTRIES_TOTAL, _ECD_SIZE (zip64 values when the zip has them)
    return None if not rec else (int(rec[4]), int(rec[5]))


class _Archive:
    """A zip opened for reading, every member streamed under size and ratio caps."""

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        self.total = 0
        directory = zip_directory(path)
        if directory is not None:
            count, size = directory
            if count > MAX_MEMBERS:
                raise DocumentError(f"{name} is unsafe: its zip holds {count:,} files "
                                    f"(an EPUB has at most a few thousand)")
            if size > count * 2048 + 65536:  # a count that lies, or names of kilobytes
                raise DocumentError(f"{name} is unsafe: its zip directory is "
                                    f"{size:,} bytes for {count:,} files")
        try:
            self.zip = zipfile.ZipFile(path)
            self.members = set(self.zip.namelist())
        except _ZIP_ERRORS:
            raise DocumentError(f"{name} is not a readable EPUB (damaged zip archive)") from None
        if len(self.zip.infolist()) > MAX_MEMBERS:  # pragma: no cover - caught above
            self.zip.close()
            raise DocumentError(f"{name} is unsafe: its zip holds more than {MAX_MEMBERS:,} files")
        self._aliases: dict[str, str] = {}
        self._folded: dict[str, set[str]] = {}
        self._raw: dict[bytes, str] = {}  # the bytes of names stored without the UTF-8 flag
        for info in self.zip.infolist():
            real = info.filename
            names = {real}
            if not info.flag_bits & 0x800:
                # Without the "UTF-8 names" flag zipfile decodes names as cp437;
                # many EPUB tools write UTF-8 names without setting it.
                try:
                    raw = real.encode("cp437")
                    self._raw.setdefault(raw, real)
                    names.add(raw.decode("utf-8"))
                except UnicodeError:
                    pass
            names |= {_nfc(n) for n in names}  # macOS writes decomposed accents
            for n in names:
                self._aliases.setdefault(n, real)
                self._folded.setdefault(n.casefold(), set()).add(real)

    def find(self, name: str) -> str | None:
        """The member that ``name`` means, or None.

        Tried in turn: the exact name; the name a member has when read as
        UTF-8 (zips without the UTF-8 flag) or in composed Unicode form; the
        name without case, if only one member has it; the name's bytes in
        the legacy codecs zip tools of other locales write (GBK, Shift_JIS,
        Big5, cp949, cp1252, cp866) against members without the UTF-8 flag.
        """
        if name in self.members:
            return name
        real = self._aliases.get(name) or self._aliases.get(_nfc(name))
        if real is not None:
            return real
        folded = self._folded.get(_nfc(name).casefold())
        if folded and len(folded) == 1:
            return next(iter(folded))
        for codec in _LEGACY_NAME_CODECS if self._raw else ():
            try:
                real = self._raw.get(name.encode(codec))
            except UnicodeError:
                continue
            if real is not None:
                return real
        return None

    def close(self) -> None:
        self.zip.close()

    def stream(self, member: str, cap: int = MAX_MEMBER_BYTES) -> Iterator[bytes]:
        """Yield ``member`` inflated, ``READ_CHUNK`` bytes at a time, refusing a bomb.

        The caps count the bytes actually inflated, never the sizes the zip
        declares: per member (``cap``), per book (``MAX_TOTAL_BYTES``), and
        the ratio of inflated to compressed bytes once past ``RATIO_FREE_BYTES``.
        """
        if member not in self.members:
            raise DocumentError(f"{self.name} is damaged: {printable(member)} is missing")
        try:
            info = self.zip.getinfo(member)
            if info.file_size > cap:
                raise self._too_big(member, cap)
            packed = max(info.compress_size, 1)
            done = 0
            with self.zip.open(info) as f:
                while True:
                    chunk = f.read(READ_CHUNK)
                    if not chunk:
                        return
                    done += len(chunk)
                    self.total += len(chunk)
                    if done > cap:
                        raise self._too_big(member, cap)
                    if self.total > MAX_TOTAL_BYTES:
                        raise DocumentError(f"{self.name} unpacks to more than "
                                            f"{MAX_TOTAL_BYTES >> 20} MiB; refusing to read it")
                    if done > RATIO_FREE_BYTES and done > packed * MAX_RATIO:
                        raise DocumentError(
                            f"{self.name} is unsafe: {printable(member)} inflates more than {MAX_RATIO}:1 "
                            f"(a zip bomb?)")
                    yield chunk
        except DocumentError:
            raise
        except _ZIP_ERRORS:
            raise DocumentError(f"{self.name} is damaged: cannot unpack {printable(member)}") from None

    def read(self, member: str, cap: int = MAX_MEMBER_BYTES) -> bytes:
        return b"".join(self.stream(member, cap))

    def _too_big(self, member: str, cap: int) -> DocumentError:
        return DocumentError(f"{self.name} is unsafe: {printable(member)} unpacks to more than "
                             f"{cap >> 20} MiB")


def decode_markup(data: bytes) -> str:
    """Bytes of an XML/XHTML member as text, never failing on bad bytes."""
    return data.decode(markup_encoding(data[:65536], complete=len(data) <= 65536)[0],
                       errors="replace")


class EpubReader(Reader):
    """An EPUB 2 or 3 book: one segment per spine item (split if long).

    Larger than ~250 lines: EPUBs in the wild (shared/cases/readers) need
    the container, the package, two kinds of table of contents and the
    spine resolved together to give each segment its chapter; each of those
    is a method here, the zip access is ``_Archive``.

    A segment's chapter is its entry in the table of contents (EPUB 3 nav,
    else EPUB 2 NCX): the entry naming the file, or, when entries point
    inside one file (``book.xhtml#ch2``), the entry whose element the text
    follows. For an item the toc does not list: its first h1/h2, else the
    previous item's chapter (a chapter split over files), else its <title>.

    Spine items are read when their media type (without case or
    parameters) is XHTML/HTML/XML, or SVG (its ``<text>``); any other item
    (an image, audio) is skipped with a line in ``warnings`` naming it.
    Member names are matched as written, percent-decoded or raw, and as
    UTF-8 when the zip does not flag them so (``_Archive.find``).
    """

    format = "epub"

    def __init__(self, path, password: str | None = None) -> None:
        super().__init__(os.fspath(path), password)
        self.name = printable(os.path.basename(self.path))
        try:
            self.size = os.path.getsize(self.path)
        except OSError as e:
            raise DocumentError(f"cannot read {self.name}: {e.strerror or e}") from None
        archive = _Archive(self.path, self.name)
        try:
            self._load(archive)
        finally:
            archive.close()

    # -- structure ----------------------------------------------------------
    def _xml(self, archive: _Archive, member: str, required: bool = True) -> ET.Element | None:
        """Parse an XML member; a broken optional one (the NCX) gives None, not an error.

        Entity declarations are refused either way: that is an attack, not
        damage. So is a file over ``MAX_XML_BYTES`` or ``MAX_XML_ELEMENTS``
        when it is required; an optional one that large only loses its titles.
        Named references HTML defines (``&nbsp;``), which XML does not, are
        read as their characters.
        """
        if not required and member not in archive.members:
            return None
        try:
            text = decode_markup(archive.read(member, MAX_XML_BYTES))
        except DocumentError:
            if required:
                raise
            return None
        self._refuse_entities(text, member)
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # str input: drop the encoding decl
        text = html_entities_to_xml(text)
        counter = _CountingBuilder()
        parser = ET.XMLParser(target=counter)
        try:
            parser.feed(text)
            root = parser.close()
        except _TooManyElements:
            if not required:
                return None
            raise DocumentError(f"{self.name} is unsafe: {printable(member)} has more than "
                                f"{MAX_XML_ELEMENTS:,} XML elements") from None
        except ET.ParseError:
            if not required:
                return None
            raise DocumentError(f"{self.name} is damaged: {printable(member)} is not valid XML") from None
        return root

    def _refuse_entities(self, text: str, member: str) -> None:
        if _ENTITY_DECL.search(text):
            raise DocumentError(f"{self.name} is unsafe: {printable(member)} declares XML entities")

    def resolve(self, base_dir: str, href: str, decode: bool = True) -> str:
        """The zip member name an href spells (percent-decoded unless not ``decode``),
        refusing any that leave the archive."""
        target = href.split("#", 1)[0]
        target = (unquote(target) if decode else target).replace("\\", "/")
        if target.startswith("/") or _SCHEME.match(target):
            raise DocumentError(f"{self.name} is unsafe: '{printable(href)}' points outside the book")
        path = posixpath.normpath(posixpath.join(base_dir, target))
        if path == ".." or path.startswith("../"):
            raise DocumentError(f"{self.name} is unsafe: '{printable(href)}' points outside the book")
        return path

    def locate(self, archive: _Archive, base_dir: str, href: str) -> tuple[str, str | None]:
        """``(path, member)``: the path an href names (percent-decoded) and the zip
        member holding it, None if there is none. A raw name with ``%`` in it is
        tried when its decoded form is not in the zip."""
        path = self.resolve(base_dir, href)
        member = archive.find(path)
        if member is None and "%" in href:
            member = archive.find(self.resolve(base_dir, href, decode=False))
        return path, member

    def _load(self, archive: _Archive) -> None:
        container = self._xml(archive, archive.find("META-INF/container.xml")
                              or "META-INF/container.xml")
        rootfile = container.find(".//{*}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise DocumentError(f"{self.name} is damaged: container.xml names no package file")
        opf_path, opf_member = self.locate(archive, "", rootfile.get("full-path"))
        opf = self._xml(archive, opf_member or opf_path)
        base = posixpath.dirname(opf_path)

        title = opf.find(".//{*}metadata/{*}title")
        self.title = " ".join(title.text.split()) if title is not None and title.text else None

        manifest = {}
        for item in opf.iterfind(".//{*}manifest/{*}item"):
            if item.get("id") and item.get("href"):
                manifest[item.get("id")] = item
        spine = opf.find(".//{*}spine")
        refs = [] if spine is None else spine.findall("{*}itemref")
        if not refs:
            raise DocumentError(f"{self.name} is damaged: it has no spine (reading order)")

        links = self._toc(archive, base, manifest, spine)
        toc: dict[str, list[tuple[str, str]]] = {}  # member -> [(fragment, title)] in toc order
        for path, fragment, title in links:
            entries = toc.setdefault(archive.find(path) or path, [])
            if (fragment, title) not in entries:
                entries.append((fragment, title))
        items: list[SpineItem] = []
        skipped: list[str] = []
        for ref in refs:
            idref = ref.get("idref", "")
            item = manifest.get(idref)
            if item is None:
                self.warn(f"skipped spine entry '{printable(idref, 60)}': the manifest has no "
                          f"item with that id")
                continue
            kind = media_type(item)
            path, member = self.locate(archive, base, item.get("href"))
            shown = printable(path, 100, keep_end=True)
            if kind not in XHTML_TYPES and kind not in SVG_TYPES:
                if kind.startswith(("image/", "audio/", "video/", "font/")) \
                        or not path.lower().endswith(_MARKUP_SUFFIXES):
                    skipped.append(kind)
                    self.warn(f"skipped {shown} in the reading order: {printable(kind, 60)} "
                              f"is not text")
                    continue
                self.warn(f"read {shown} as XHTML although its media type is "
                          f"'{printable(kind, 60)}'")
            if member is None:
                raise DocumentError(f"{self.name} is damaged: {printable(path)} is missing")
            entries = toc.get(member, [])
            items.append(SpineItem(
                member, title=next((t for f, t in entries if not f), None),
                marks={f: t for f, t in reversed(entries) if f},
                first=entries[0][1] if entries else None, svg=kind in SVG_TYPES))
        if not items:
            if skipped:
                kinds = ", ".join(sorted(set(skipped))[:3])
                raise NoTextError(f"{self.name} has no text: its reading order holds only "
                                  f"{printable(kinds, 80)}")
            raise DocumentError(f"{self.name} is damaged: its spine lists no chapters")
        self._check_drm(archive, {i.path for i in items})
        self.items = items
        self.toc_titles = list(dict.fromkeys(title for _, _, title in links))

    def _toc(self, archive, base, manifest, spine) -> list[tuple[str, str, str]]:
        """``(path, fragment, title)`` of each table-of-contents entry, in its order,
        from the EPUB 3 nav, else the NCX; empty if neither names anything."""
        for item in manifest.values():
            if "nav" in (item.get("properties") or "").split():
                # A nav that points outside the book, is missing, oversized or
                # damaged only loses its titles: the NCX, if any, is tried instead.
                try:
                    path, member = self.locate(archive, base, item.get("href"))
                except DocumentError:
                    break
                if member is None:
                    break
                try:
                    text = decode_markup(archive.read(member, MAX_XML_BYTES))
                except DocumentError:
                    break
                parser = _NavParser()
                try:
                    parser.feed(without_internal_subset(text))
                    parser.close()
                except (AssertionError, ValueError):
                    parser.links = []
                if parser.links:
                    return self._toc_map(posixpath.dirname(path), parser.links)
                break  # a nav without links: likewise
        ncx = manifest.get(spine.get("toc", "")) if spine is not None else None
        if ncx is None:
            ncx = next((i for i in manifest.values()
                        if media_type(i) == "application/x-dtbncx+xml"), None)
        if ncx is None:
            return []
        try:
            path, member = self.locate(archive, base, ncx.get("href"))
        except DocumentError:
            return []
        root = self._xml(archive, member or path, required=False)
        if root is None:
            return []
        links = []
        for point in root.iter():
            if not point.tag.endswith("navPoint"):
                continue
            label = point.find("{*}navLabel/{*}text")
            content = point.find("{*}content")
            if label is not None and content is not None and content.get("src"):
                links.append((content.get("src"), " ".join((label.text or "").split())))
        return self._toc_map(posixpath.dirname(path), links)

    def _toc_map(self, base: str, links: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        out = []
        for href, title in links:
            if not title:
                continue
            try:
                path = self.resolve(base, href)
            except DocumentError:
                continue  # a toc link we never follow cannot hurt; ignore it
            out.append((path, unquote(href.split("#", 1)[1]) if "#" in href else "", title))
        return out

    def _check_drm(self, archive: _Archive, spine_paths: set[str]) -> None:
        """Refuse books whose chapters are encrypted (DRM); font obfuscation is fine."""
        member = archive.find("META-INF/encryption.xml")
        if member is None:
            return
        root = self._xml(archive, member)
        for ref in root.iter():
            if not (ref.tag.endswith("CipherReference") and ref.get("URI")):
                continue
            try:
                path, found = self.locate(archive, "", ref.get("URI"))
            except DocumentError:
                continue  # names no member we read
            if (found or path) in spine_paths:
                raise EncryptedDocument(f"{self.name} is DRM-protected; bookpot cannot read it")

    # -- reading ------------------------------------------------------------
    def info(self) -> DocumentInfo:
        return DocumentInfo(path=self.path, format="epub", title=self.title,
                            chapters=list(self.toc_titles), size_bytes=self.size)

    def segments(self) -> Iterator[Segment]:
        archive = _Archive(self.path, self.name)
        try:
            total = len(self.items)
            chapter = None
            any_text = False
            for i, item in enumerate(self.items):
                if item.marks:
                    pieces = self._marked_pieces(archive, item, i, total, chapter)
                    for piece in pieces:
                        any_text = True
                        chapter = piece.chapter
                        yield Segment(piece.text, Locator(chapter=piece.chapter),
                                      progress=piece.progress)
                    continue
                parser = TextExtractor(svg=item.svg)
                blocks = self._item_blocks(archive, item, parser, i, total)
                # The chapter of every segment of this item: known at once from
                # the toc, else wait for its first h1/h2 (or its end).
                head: list[Block] = []
                if not item.title:
                    held = 0
                    for block in blocks:
                        head.append(block)
                        held += len(block.text)
                        if parser.first_heading or held > 8 * SEGMENT_CHARS:
                            break
                chapter = item.title or parser.first_heading or chapter or parser.title
                for piece in pack_blocks(_same_chapter(_chain(head, blocks), chapter),
                                         SEGMENT_CHARS * 3 // 4, SEGMENT_CHARS):
                    any_text = True
                    yield Segment(piece.text, Locator(chapter=chapter), progress=piece.progress)
            if not any_text:
                raise NoTextError(f"{self.name} has no text")
        finally:
            archive.close()

    def _marked_pieces(self, archive: _Archive, item: SpineItem, index: int, total: int,
                       previous: str | None) -> Iterator[Block]:
        """Segments of an item the toc points inside: the chapter switches at each
        pointed-at element. Text before the first such element continues the
        item's own toc title, else the previous chapter; if no pointed-at
        element turns up in the first ``8 * SEGMENT_CHARS`` (a stale fragment),
        that text takes the item's first toc title instead.
        """
        start = item.title or previous or item.first
        parser = TextExtractor(marks=item.marks, chapter=start, heading_chapters=False,
                               svg=item.svg)
        blocks = self._item_blocks(archive, item, parser, index, total)
        head: list[Block] = []
        held = 0
        for block in blocks:
            head.append(block)
            held += len(block.text)
            if parser.marks_seen or held > 8 * SEGMENT_CHARS:
                break
        if not parser.marks_seen and not item.title and start != item.first:
            for block in head:
                block.chapter = item.first
            if parser.chapter == start:
                parser.chapter = item.first
        yield from pack_blocks(_chain(head, blocks), SEGMENT_CHARS * 3 // 4, SEGMENT_CHARS)

    def _item_blocks(self, archive: _Archive, item: SpineItem, parser: TextExtractor,
                     index: int, total: int) -> Iterator[Block]:
        """Paragraphs of one spine item, parsed as its bytes are inflated.

        An internal DTD subset in its DOCTYPE is dropped unread (see
        ``without_internal_subset``). Progress moves through the item by
        inflated bytes (against the size the zip declares, so it is only a
        guess until the item ends).
        """
        size = max(archive.zip.getinfo(item.path).file_size, 1)
        feeder = Feeder(parser, f"{self.name}: {printable(item.path)}")
        decoder = None
        done = 0
        held: Block | None = None  # the latest paragraph: it may be the item's last
        shown = printable(item.path, 100, keep_end=True)
        bad = 0
        for chunk in archive.stream(item.path):
            if decoder is None:
                encoding, note = markup_encoding(chunk[:65536], complete=len(chunk) >= size)
                if note:
                    self.warn(f"{shown}: {note}")
                decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            text = decoder.decode(chunk)
            bad += text.count("\ufffd")
            feeder.feed(text)
            done += len(chunk)
            progress = (index + min(done / size, 0.999)) / total
            for block in parser.blocks:
                block.progress = progress
                if held is not None:
                    yield held
                held = block
            parser.blocks.clear()
        if decoder is not None:
            text = decoder.decode(b"", final=True)
            bad += text.count("\ufffd")
            feeder.feed(text)
            if bad:
                self.warn(f"{shown}: {undecodable(bad, encoding)}")
        feeder.close()
        if held is not None:
            parser.blocks.insert(0, held)
        for block in parser.blocks:
            block.progress = (index + 1) / total
            yield block
        parser.blocks.clear()


def _same_chapter(blocks: Iterator[Block], chapter: str | None) -> Iterator[Block]:
    """``blocks`` labelled with one chapter (an item's headings do not split it)."""
    for block in blocks:
        block.chapter = chapter
        yield block


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


class _NavParser(HTMLParser):
    """Links (href, text) inside the EPUB 3 ``<nav epub:type="toc">`` (else any nav)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._other: list[tuple[str, str]] = []
        self._nav = 0
        self._is_toc = False
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "nav":
            self._nav += 1
            if self._nav == 1:
                self._is_toc = "toc" in (a.get("epub:type") or "").split()
        elif tag == "a" and self._nav and a.get("href"):
            self._href, self._text = a["href"], []

    def handle_endtag(self, tag):
        if tag == "nav":
            self._nav = max(0, self._nav - 1)
        elif tag == "a" and self._href is not None:
            link = (self._href, " ".join("".join(self._text).split()))
            (self.links if self._is_toc else self._other).append(link)
            self._href = None

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def close(self):
        super().close()
        if not self.links:
            self.links = self._other
