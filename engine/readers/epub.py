"""EPUB with the stdlib only: container.xml -> OPF -> spine, one item at a time.

An EPUB is a zip from a stranger, so this module trusts nothing in it:
hrefs must stay inside the archive; the number of members is checked before
the zip's directory is loaded; every member is streamed with a size cap (the
header's size is not believed), a cap on its expansion ratio, and a cap on
the running total; the package XML files have a smaller cap and an element
count limit (ElementTree costs ~250 bytes per element); XML with entity
declarations is refused before any parser sees it. Chapters are streamed
through the HTML parser a chunk at a time, so not even one whole chapter
needs to be in memory.
"""
from __future__ import annotations

import codecs
import os
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from ..errors import DocumentError, EncryptedDocument, NoTextError
from .base import DocumentInfo, Locator, Reader, Segment, printable
from .html import Block, Feeder, TextExtractor, pack_blocks, sniff_markup_encoding

MAX_MEMBER_BYTES = 64 * 1024 * 1024     # one chapter, inflated
MAX_TOTAL_BYTES = 1024 * 1024 * 1024    # everything read from one book, inflated
MAX_XML_BYTES = 8 * 1024 * 1024         # container.xml, the OPF, the toc, encryption.xml
MAX_XML_ELEMENTS = 300_000              # ... and their elements (a huge NCX has ~100k)
MAX_MEMBERS = 20_000                    # files in the zip (big illustrated books: ~5k)
MAX_RATIO = 200                         # inflated / compressed; text deflates ~3-10x
RATIO_FREE_BYTES = 1024 * 1024          # small members may compress better than that
READ_CHUNK = 1024 * 1024
SEGMENT_CHARS = 4_000
XHTML_TYPES = frozenset(("application/xhtml+xml", "text/html", "application/xml"))
XHTML_TYPES_DEFAULT = "application/xhtml+xml"

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
    path: str          # member name inside the zip
    title: str | None  # from the table of contents, if it lists this file


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
    return data.decode(sniff_markup_encoding(data[:4096]), errors="replace")


class EpubReader(Reader):
    """An EPUB 2 or 3 book: one segment per spine item (split if long).

    A segment's chapter is the item's title in the table of contents (EPUB 3
    nav, else EPUB 2 NCX); for an item the toc does not list, its first
    h1/h2, else the previous item's chapter (a chapter split over files),
    else its <title>.
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

    def resolve(self, base_dir: str, href: str) -> str:
        """The zip member an href names, refusing any that leave the archive."""
        target = unquote(href.split("#", 1)[0]).replace("\\", "/")
        if target.startswith("/") or _SCHEME.match(target):
            raise DocumentError(f"{self.name} is unsafe: '{printable(href)}' points outside the book")
        path = posixpath.normpath(posixpath.join(base_dir, target))
        if path == ".." or path.startswith("../"):
            raise DocumentError(f"{self.name} is unsafe: '{printable(href)}' points outside the book")
        return path

    def _load(self, archive: _Archive) -> None:
        container = self._xml(archive, "META-INF/container.xml")
        rootfile = container.find(".//{*}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise DocumentError(f"{self.name} is damaged: container.xml names no package file")
        opf_path = self.resolve("", rootfile.get("full-path"))
        opf = self._xml(archive, opf_path)
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

        toc = self._toc(archive, base, manifest, spine)
        items = []
        for ref in refs:
            item = manifest.get(ref.get("idref", ""))
            if item is None or (item.get("media-type") or XHTML_TYPES_DEFAULT) not in XHTML_TYPES:
                continue  # images or fonts in the spine carry no text
            path = self.resolve(base, item.get("href"))
            if path not in archive.members:
                raise DocumentError(f"{self.name} is damaged: {printable(path)} is missing")
            items.append(SpineItem(path, toc.get(path)))
        if not items:
            raise DocumentError(f"{self.name} is damaged: its spine lists no chapters")
        self._check_drm(archive, {i.path for i in items})
        self.items = items
        seen: list[str] = []
        for t in toc.values():
            if t not in seen:
                seen.append(t)
        self.toc_titles = seen

    def _toc(self, archive, base, manifest, spine) -> dict[str, str]:
        """Map member path -> title from the EPUB 3 nav, else the EPUB 2 NCX."""
        for item in manifest.values():
            if "nav" in (item.get("properties") or "").split():
                path = self.resolve(base, item.get("href"))
                if path not in archive.members:
                    return {}  # a missing toc only loses chapter titles
                try:
                    text = decode_markup(archive.read(path, MAX_XML_BYTES))
                except DocumentError:
                    return {}  # an oversized or damaged toc only loses chapter titles
                self._refuse_entities(text, path)
                parser = _NavParser()
                try:
                    parser.feed(text)
                    parser.close()
                except (AssertionError, ValueError):
                    return {}
                return self._toc_map(posixpath.dirname(path), parser.links)
        ncx = manifest.get(spine.get("toc", "")) if spine is not None else None
        if ncx is None:
            ncx = next((i for i in manifest.values()
                        if i.get("media-type") == "application/x-dtbncx+xml"), None)
        if ncx is None:
            return {}
        path = self.resolve(base, ncx.get("href"))
        root = self._xml(archive, path, required=False)
        if root is None:
            return {}
        links = []
        for point in root.iter():
            if not point.tag.endswith("navPoint"):
                continue
            label = point.find("{*}navLabel/{*}text")
            content = point.find("{*}content")
            if label is not None and content is not None and content.get("src"):
                links.append((content.get("src"), " ".join((label.text or "").split())))
        return self._toc_map(posixpath.dirname(path), links)

    def _toc_map(self, base: str, links: list[tuple[str, str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for href, title in links:
            if not title:
                continue
            try:
                path = self.resolve(base, href)
            except DocumentError:
                continue  # a toc link we never follow cannot hurt; ignore it
            out.setdefault(path, title)
        return out

    def _check_drm(self, archive: _Archive, spine_paths: set[str]) -> None:
        """Refuse books whose chapters are encrypted (DRM); font obfuscation is fine."""
        if "META-INF/encryption.xml" not in archive.members:
            return
        root = self._xml(archive, "META-INF/encryption.xml")
        for ref in root.iter():
            if not (ref.tag.endswith("CipherReference") and ref.get("URI")):
                continue
            try:
                path = self.resolve("", ref.get("URI"))
            except DocumentError:
                continue  # names no member we read
            if path in spine_paths:
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
                parser = TextExtractor()
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
                for piece in pack_blocks(_chain(head, blocks), SEGMENT_CHARS * 3 // 4,
                                         SEGMENT_CHARS):
                    any_text = True
                    yield Segment(piece.text, Locator(chapter=chapter), progress=piece.progress)
            if not any_text:
                raise NoTextError(f"{self.name} has no text")
        finally:
            archive.close()

    def _item_blocks(self, archive: _Archive, item: SpineItem, parser: TextExtractor,
                     index: int, total: int) -> Iterator[Block]:
        """Paragraphs of one spine item, parsed as its bytes are inflated.

        Progress moves through the item by inflated bytes (against the size
        the zip declares, so it is only a guess until the item ends).
        """
        size = max(archive.zip.getinfo(item.path).file_size, 1)
        feeder = Feeder(parser, f"{self.name}: {printable(item.path)}")
        decoder = None
        tail = ""  # the end of the previous chunk: an <!ENTITY may straddle two
        done = 0
        held: Block | None = None  # the latest paragraph: it may be the item's last
        for chunk in archive.stream(item.path):
            if decoder is None:
                encoding = sniff_markup_encoding(chunk[:4096])
                decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            text = decoder.decode(chunk)
            self._refuse_entities(tail + text, item.path)
            tail = text[-16:]
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
            feeder.feed(decoder.decode(b"", final=True))
        feeder.close()
        if held is not None:
            parser.blocks.insert(0, held)
        for block in parser.blocks:
            block.progress = (index + 1) / total
            yield block
        parser.blocks.clear()


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
