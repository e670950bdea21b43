"""Real document files for tests, made from Python strings.

Other test modules reuse these, so each function writes one kind of file and
returns its path:

* ``make_pdf(path, pages, page_labels=None, outline=None, password=None)``:
  a real PDF whose page *i* shows ``pages[i]`` (Helvetica text, wrapped at
  ~90 characters; a long text gets a smaller font so it stays on its page;
  ``""`` makes a page with no text operators at all, like a scanned page).
* ``make_epub(path, chapters, with_nav=True, with_ncx=False)``: a valid
  EPUB 3 with one XHTML file per ``(title, text)`` chapter, in spine order.
* ``write_epub_files(path, files)``: any EPUB-shaped zip (mimetype first),
  for hand-made broken books.
* ``make_pdf_from_streams(path, contents, forms=None, flate=False)``: a PDF
  whose pages carry the given raw content streams (and may draw the given
  form XObjects), for pages no sane writer makes.
* broken files: ``write_truncated``, ``make_corrupt_pdf``,
  ``make_epub_without_spine``, ``make_epub_with_href``,
  ``make_epub_entity_bomb``, ``make_epub_zip_bomb``, ``make_epub_many_members``,
  ``make_binary_file``, ``make_big_text``.

The PDF bytes are written by hand (no PDF library needed to *make* the
basic file); pypdf's ``PdfWriter`` is used only for page labels, the outline
and encryption, which are fiddly to write by hand.
"""
from __future__ import annotations

import textwrap
import zipfile
import zlib
from pathlib import Path

__all__ = [
    "make_pdf", "make_pdf_from_streams", "make_epub", "write_epub_files", "write_truncated",
    "make_corrupt_pdf", "make_epub_without_spine", "make_epub_with_href",
    "make_epub_entity_bomb", "make_epub_zip_bomb", "make_epub_many_members",
    "make_binary_file", "make_big_text", "write_pdf_objects", "WRAP_CHARS",
]

WRAP_CHARS = 90
_PAGE_W, _PAGE_H, _MARGIN = 612, 792, 50

# page_labels styles -> pypdf's /S names
_LABEL_STYLES = {"decimal": "/D", "roman": "/r", "ROMAN": "/R", "alpha": "/a", "ALPHA": "/A"}


# -- PDF ----------------------------------------------------------------------
def _pdf_string(line: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252); unmappable characters become '?'."""
    raw = line.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _wrap(text: str) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        lines.extend(textwrap.wrap(para, WRAP_CHARS) or [""])
    return lines


def _content_stream(text: str) -> bytes:
    """Text operators for one page; no text operators at all for an empty text."""
    if not text:
        # Something drawn but no text: what a scanned page looks like to a text extractor.
        return b"0.5 w 72 72 m 540 720 l S\n"
    lines = _wrap(text)
    usable = _PAGE_H - 2 * _MARGIN
    leading = min(12.0, usable / max(len(lines), 1))
    size = max(round(leading * 0.85, 3), 0.5)
    out = [b"BT", b"/F1 %s Tf" % str(size).encode(), b"%s TL" % str(round(leading, 3)).encode(),
           b"%d %d Td" % (_MARGIN + 22, _PAGE_H - _MARGIN)]
    for i, line in enumerate(lines):
        out.append((b"T* " if i else b"") + _pdf_string(line) + b" Tj")
    out.append(b"ET")
    return b"\n".join(out) + b"\n"


def _write_plain_pdf(path: Path, pages: list[str]) -> None:
    """Catalog, page tree, one Helvetica font, then (page, content) pairs; xref; trailer."""
    n = len(pages)
    objects: list[bytes] = [b""] * (3 + 2 * n)
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)
    objects[2] = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                  b"/Encoding /WinAnsiEncoding >>")
    for i, text in enumerate(pages):
        page_no, content_no = 4 + 2 * i, 5 + 2 * i
        objects[page_no - 1] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (_PAGE_W, _PAGE_H, content_no))
        stream = _content_stream(text)
        objects[content_no - 1] = (b"<< /Length %d >>\nstream\n" % len(stream)
                                   + stream + b"endstream")
    write_pdf_objects(path, objects)


def write_pdf_objects(path, objects: list[bytes], version: bytes = b"1.4") -> Path:
    """Objects 1..n as given (1 must be the catalog), a valid xref and trailer; returns the path."""
    body = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % num + obj + b"\nendobj\n"
    xref_at = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        body += b"%010d 00000 n \n" % off
    body += (b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
             % (len(objects) + 1, xref_at))
    Path(path).write_bytes(bytes(body))
    return Path(path)


def make_pdf(path, pages: list[str], page_labels: dict | None = None,
             outline: list[tuple[str, int]] | None = None,
             password: str | None = None, algorithm: str = "RC4-128",
             compress: bool = False) -> Path:
    """Write a PDF with ``pages[i]`` as the text of page *i* (0-based); return its path.

    ``page_labels`` maps the 0-based index of the first page of a range to a
    style -- ``"roman"`` (i, ii, ...), ``"ROMAN"``, ``"decimal"``, ``"alpha"``,
    ``"ALPHA"`` -- or to ``(style, start)``; each range runs to the next one.
    Example: ``{0: "roman", 3: "decimal"}`` labels pages i, ii, iii, 1, 2, ...
    ``outline`` is a list of top-level bookmarks ``(title, page_index)``.
    ``password`` encrypts the file with that user password, by default with
    RC4-128 (no extra packages needed); ``algorithm="AES-256"`` needs the
    ``cryptography`` package, to write and to read. ``compress`` deflates the
    page content streams (/FlateDecode), as most real PDFs do.
    """
    path = Path(path)
    if not pages:
        raise ValueError("a PDF needs at least one page")
    _write_plain_pdf(path, pages)
    if not (page_labels or outline or password or compress):
        return path
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(path))
    if compress:
        for page in writer.pages:
            page.compress_content_streams()
    if page_labels:
        starts = sorted(page_labels)
        for k, first in enumerate(starts):
            last = (starts[k + 1] - 1) if k + 1 < len(starts) else len(pages) - 1
            spec = page_labels[first]
            style, start = (spec, 1) if isinstance(spec, str) else spec
            writer.set_page_label(first, last, style=_LABEL_STYLES[style], start=start)
    for title, page_index in outline or []:
        writer.add_outline_item(title=title, page_number=page_index)
    if password is not None:
        writer.encrypt(user_password=password, owner_password=password + "-owner",
                       algorithm=algorithm)
    with open(path, "wb") as f:
        writer.write(f)
    return path


def make_pdf_from_streams(path, contents: list[bytes], forms: dict[str, bytes] | None = None,
                          flate: bool = False, to_unicode: dict[int, str] | None = None) -> Path:
    """A PDF whose page *i* has the raw content stream ``contents[i]``.

    Every page (and every form) has Helvetica as ``/F1`` and may draw any
    form of ``forms`` (name -> content stream) with ``/name Do``; forms can
    draw each other, cycles included. ``flate`` deflates every stream.
    ``to_unicode`` gives the font a ToUnicode map, byte -> UTF-16 code unit
    as 4 hex digits (``{0x41: "D800"}`` makes "A" a lone surrogate).
    """
    path = Path(path)
    forms = forms or {}
    n_pages, names = len(contents), list(forms)
    page0 = 4 + len(names)  # 1 catalog, 2 pages, 3 font, then the forms
    cmap_no = page0 + 2 * n_pages  # after the pages, if there is one
    xobjects = b" ".join(b"/%s %d 0 R" % (name.encode(), 4 + k) for k, name in enumerate(names))
    resources = b"<< /Font << /F1 3 0 R >> /XObject << %s >> >>" % xobjects

    def stream(head: bytes, data: bytes) -> bytes:
        if flate:
            data = zlib.compress(data, 9)
            head += b" /Filter /FlateDecode"
        return b"<< %s /Length %d >>\nstream\n" % (head, len(data)) + data + b"\nendstream"

    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>"
               % (b" ".join(b"%d 0 R" % (page0 + 2 * i) for i in range(n_pages)), n_pages),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding%s >>"
               % (b" /ToUnicode %d 0 R" % cmap_no if to_unicode else b"")]
    for name in names:
        objects.append(stream(b"/Type /XObject /Subtype /Form /BBox [0 0 %d %d] /Resources %s"
                              % (_PAGE_W, _PAGE_H, resources), forms[name]))
    for i, content in enumerate(contents):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s "
                       b"/Contents %d 0 R >>" % (_PAGE_W, _PAGE_H, resources, page0 + 2 * i + 1))
        objects.append(stream(b"", content))
    if to_unicode:
        chars = "".join(f"<{code:02X}> <{unit}> " for code, unit in to_unicode.items())
        objects.append(stream(b"", (
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /T def\n"
            "1 begincodespacerange <00> <FF> endcodespacerange\n"
            f"{len(to_unicode)} beginbfchar {chars}endbfchar\n"
            "endcmap CMapName currentdict /CMap defineresource pop end end\n").encode()))
    with open(path, "wb") as f:
        f.write(b"%PDF-1.4\n")
        offsets = []
        for num, obj in enumerate(objects, start=1):
            offsets.append(f.tell())
            f.write(b"%d 0 obj\n" % num + obj + b"\nendobj\n")
        xref_at = f.tell()
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
        f.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
        f.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                % (len(objects) + 1, xref_at))
    return path


def make_corrupt_pdf(path) -> Path:
    """A file with a PDF header followed by garbage (no objects, no xref)."""
    path = Path(path)
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\nthis is not a pdf\n")
    return path


def write_truncated(src, dst, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a cut-off download)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: max(1, int(len(data) * fraction))])
    return dst


# -- EPUB ---------------------------------------------------------------------
CONTAINER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def chapter_xhtml(title: str, text: str, heading: bool = True) -> str:
    """One XHTML chapter: ``<h1>title</h1>`` then one ``<p>`` per blank-line-separated paragraph."""
    paras = "\n".join(f"<p>{_esc(p.strip())}</p>" for p in text.split("\n\n") if p.strip())
    h1 = f"<h1>{_esc(title)}</h1>\n" if heading else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">\n'
            f"<head><title>{_esc(title)}</title>\n<style>p {{ margin: 0 }}</style></head>\n"
            f"<body>\n{h1}{paras}\n<script>var ignored = 1;</script>\n</body>\n</html>\n")


def _opf(title: str, manifest: list[str], spine: list[str], toc_attr: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">\n'
        '  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f'    <dc:identifier id="id">urn:uuid:bookpot-test</dc:identifier>\n'
        f"    <dc:title>{_esc(title)}</dc:title>\n    <dc:language>en</dc:language>\n"
        "  </metadata>\n  <manifest>\n" + "\n".join(manifest) + "\n  </manifest>\n"
        + (f"  <spine{toc_attr}>\n" + "\n".join(spine) + "\n  </spine>\n" if spine is not None else "")
        + "</package>\n")


def write_epub_files(path, files: dict[str, str | bytes]) -> Path:
    """Write an EPUB-shaped zip: the stored ``mimetype`` first, then ``files`` deflated."""
    path = Path(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip",
                   compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def epub_files(chapters: list[tuple[str, str]], with_nav: bool = True, with_ncx: bool = False,
               title: str = "A Test Book") -> dict[str, str]:
    """The members of a valid EPUB 3 (without mimetype), for tests that tweak one of them."""
    files = {"META-INF/container.xml": CONTAINER_XML}
    manifest, spine, nav_links, ncx_points = [], [], [], []
    for i, (ch_title, text) in enumerate(chapters, start=1):
        href = f"text/ch{i:03d}.xhtml"
        files[f"OEBPS/{href}"] = chapter_xhtml(ch_title, text)
        manifest.append(f'    <item id="ch{i}" href="{href}" media-type="application/xhtml+xml"/>')
        spine.append(f'    <itemref idref="ch{i}"/>')
        nav_links.append(f'      <li><a href="{href}">{_esc(ch_title)}</a></li>')
        ncx_points.append(f'  <navPoint id="n{i}" playOrder="{i}"><navLabel><text>{_esc(ch_title)}'
                          f'</text></navLabel><content src="{href}"/></navPoint>')
    if with_nav:
        manifest.append('    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                        'properties="nav"/>')
        files["OEBPS/nav.xhtml"] = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">\n'
            "<head><title>Contents</title></head>\n<body>\n"
            '  <nav epub:type="toc" id="toc"><h1>Contents</h1>\n    <ol>\n'
            + "\n".join(nav_links) + "\n    </ol>\n  </nav>\n</body>\n</html>\n")
    toc_attr = ""
    if with_ncx:
        manifest.append('    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        toc_attr = ' toc="ncx"'
        files["OEBPS/toc.ncx"] = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" '
            '"http://www.daisy.org/z3986/2005/ncx-2005-1.dtd">\n'
            '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">\n'
            f"<docTitle><text>{_esc(title)}</text></docTitle>\n<navMap>\n"
            + "\n".join(ncx_points) + "\n</navMap>\n</ncx>\n")
    files["OEBPS/content.opf"] = _opf(title, manifest, spine, toc_attr)
    return files


def make_epub(path, chapters: list[tuple[str, str]], with_nav: bool = True,
              with_ncx: bool = False, title: str = "A Test Book") -> Path:
    """Write a valid EPUB 3 with one XHTML file per ``(title, text)`` chapter, in order.

    Each chapter file has ``<h1>title</h1>`` and one ``<p>`` per paragraph of
    ``text`` (paragraphs are separated by blank lines), plus a <style> and a
    <script> that readers must drop. ``with_nav`` adds the EPUB 3 nav
    document (the table of contents); ``with_ncx`` adds an EPUB 2 toc.ncx.
    """
    return write_epub_files(path, epub_files(chapters, with_nav, with_ncx, title))


def make_epub_without_spine(path) -> Path:
    """An EPUB whose OPF has a manifest but no <spine>."""
    files = epub_files([("One", "Some text.")])
    files["OEBPS/content.opf"] = _opf(
        "No Spine", ['    <item id="ch1" href="text/ch001.xhtml" media-type="application/xhtml+xml"/>'],
        None)
    return write_epub_files(path, files)


def make_epub_with_href(path, href: str = "../../../etc/passwd") -> Path:
    """An EPUB whose only spine item's href is ``href`` (default: climbs out of the archive)."""
    files = epub_files([("One", "Some text.")])
    files["OEBPS/content.opf"] = _opf(
        "Climber", [f'    <item id="ch1" href="{_esc(href)}" media-type="application/xhtml+xml"/>'],
        ['    <itemref idref="ch1"/>'])
    return write_epub_files(path, files)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + "]>\n")


def make_epub_entity_bomb(path, member: str = "OEBPS/content.opf") -> Path:
    """An EPUB whose ``member`` (the OPF, or a chapter) starts with a billion-laughs DTD."""
    files = epub_files([("One", "Some text.")])
    body = files[member].split("?>", 1)[1]
    files[member] = BILLION_LAUGHS + body.replace("Some text.", "&lol9;")
    return write_epub_files(path, files)


def make_epub_zip_bomb(path, member_bytes: int = 65 * 1024 * 1024) -> Path:
    """An EPUB whose first chapter inflates to ``member_bytes`` (spaces; ~1/1000 on disk)."""
    path = Path(path)
    files = epub_files([("One", "Some text."), ("Two", "More text.")])
    bomb_name = "OEBPS/text/ch001.xhtml"
    head = files.pop(bomb_name).encode()
    write_epub_files(path, files)
    with zipfile.ZipFile(path, "a") as z:
        info = zipfile.ZipInfo(bomb_name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as out:
            out.write(head)
            block = b" " * (1 << 20)
            left = member_bytes - len(head)
            while left > 0:
                out.write(block[: min(left, len(block))])
                left -= len(block)
    return path


def make_epub_many_members(path, count: int) -> Path:
    """A valid small EPUB plus ``count`` empty files: a zip whose directory alone is costly."""
    path = Path(path)
    files = epub_files([("One", "Some text.")])
    write_epub_files(path, files)
    with zipfile.ZipFile(path, "a") as z:
        for i in range(count):
            z.writestr(zipfile.ZipInfo(f"OEBPS/x/{i}"), b"")
    return path


def make_big_text(path, size: int, sparse_after: int | None = None) -> Path:
    """A text file of ``size`` bytes: paragraphs repeated, written 1 MiB at a time.

    ``sparse_after``: write only that many bytes of text and extend the file
    to ``size`` with a hole (no disk used; the hole reads as NUL bytes), for
    a multi-GB file whose tail a test never reaches.
    """
    path = Path(path)
    para = ("It was the best of times, it was the worst of times. " * 10 + "\n") * 4 + "\n"
    block = para.encode() * (1024 * 1024 // len(para))
    real = size if sparse_after is None else min(size, sparse_after)
    with open(path, "wb") as f:
        left = real
        while left > 0:
            f.write(block[:left])
            left -= len(block)
        f.truncate(size)
    return path


def make_binary_file(path, size: int = 4096) -> Path:
    """Bytes that are not text (NULs and control characters), e.g. under a .txt name."""
    path = Path(path)
    path.write_bytes(bytes((i * 37) % 256 for i in range(size)))
    return path
