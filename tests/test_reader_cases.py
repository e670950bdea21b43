"""Files that broke readers, one test per case (tests/fixtures/readers/README.md
lists them), each checking the text *and* where it is said to be; then more
files of the same kinds, built here, because a fix must hold for the kind and
not only for the one file.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import docgen
import pytest
from bookpot.engine.errors import DocumentError, NoTextError
from bookpot.engine.readers import Locator, open_document
from bookpot.engine.readers.epub import EpubReader
from bookpot.engine.readers.text import TextReader

CASES = Path(__file__).parent / "fixtures" / "readers"
DEBIAN_PDF = Path("/usr/share/doc/glpk-doc/cnfsat.pdf")


def read(path, password=None):
    reader = open_document(path, password)
    return reader, list(reader.segments())


def chapters(segs) -> list[str | None]:
    return [s.locator.chapter for s in segs]


# -- EPUB: member names -----------------------------------------------------------
def test_case_epub_utf8_names_without_the_zip_flag():
    with zipfile.ZipFile(CASES / "epub-utf8-names-no-zip-flag.epub") as z:  # the case is real
        assert not any(i.flag_bits & 0x800 for i in z.infolist())
    reader, segs = read(CASES / "epub-utf8-names-no-zip-flag.epub")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("“Uno”", "Uno\n\nThe lighthouse on the cape was painted red and white."),
        ("“Dos”", "Dos\n\nThe second keeper kept a logbook of passing ships.")]
    assert reader.info().chapters == ["Uno", "Dos"] and reader.warnings == []


class _RawNameInfo(zipfile.ZipInfo):
    """A zip entry whose name is written as UTF-8 bytes *without* the UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


def write_epub(path, files: dict[str, str | bytes], raw_names: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, data in files.items():
            info = _RawNameInfo(name) if raw_names else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


def one_file_epub(hrefs: list[str], members: list[str], texts: list[str],
                  media_type: str = "application/xhtml+xml") -> dict[str, str]:
    """An EPUB whose OPF/nav name chapters by ``hrefs`` while the zip holds ``members``."""
    files = {"META-INF/container.xml": docgen.CONTAINER_XML}
    manifest, spine, nav = [], [], []
    for i, (href, member, text) in enumerate(zip(hrefs, members, texts), start=1):
        files[f"OEBPS/{member}"] = docgen.chapter_xhtml(f"C{i}", text)
        manifest.append(f'<item id="c{i}" href="{href}" media-type="{media_type}"/>')
        spine.append(f'<itemref idref="c{i}"/>')
        nav.append(f'<li><a href="{href}">C{i}</a></li>')
    manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                    'properties="nav"/>')
    files["OEBPS/nav.xhtml"] = ('<html xmlns="http://www.w3.org/1999/xhtml"><body>'
                                '<nav epub:type="toc"><ol>' + "".join(nav) + "</ol></nav></body></html>")
    files["OEBPS/content.opf"] = docgen._opf("Names", manifest, spine)
    return files


@pytest.mark.parametrize("href, member, raw", [
    ("Text/Cap%C3%ADtulo.xhtml", "Text/Capítulo.xhtml", True),     # percent-encoded href
    ("Text/Capítulo.xhtml", "Text/Capi\u0301tulo.xhtml", False),     # decomposed (macOS) name
    ("Text/100%25.xhtml", "Text/100%.xhtml", False),                 # a % in the name
    ("Text/a%20b.xhtml", "Text/a%20b.xhtml", False),                 # the raw name exists
    ("text/CHAPTER.xhtml", "Text/chapter.xhtml", False),             # case differs, one match
    ("Text/第二章.xhtml", "Text/第二章.xhtml", True),
])
def test_epub_member_names_of_every_spelling_are_found(tmp_path, href, member, raw):
    files = one_file_epub([href, "plain.xhtml"], [member, "plain.xhtml"],
                          ["Found the accented one.", "And the plain one."])
    _reader, segs = read(write_epub(tmp_path / "n.epub", files, raw_names=raw))
    assert [(s.locator.chapter, s.text) for s in segs] == [
        ("C1", "C1\n\nFound the accented one."), ("C2", "C2\n\nAnd the plain one.")]


class _LegacyNameInfo(zipfile.ZipInfo):
    """A zip entry whose name is written in a legacy codec, without the UTF-8 flag."""

    codec = "gbk"

    def _encodeFilenameFlags(self):
        return self.filename.encode(self.codec), self.flag_bits & ~0x800


@pytest.mark.parametrize("codec, name", [("gbk", "第二章.xhtml"), ("cp932", "第二章.xhtml"),
                                         ("cp1252", "Capítulo.xhtml")])
def test_epub_names_in_a_legacy_codec_are_found(tmp_path, codec, name):
    files = one_file_epub([name], [name], ["Found by its GBK, Shift_JIS or cp1252 bytes."])
    path = tmp_path / "legacy.epub"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for member, data in files.items():
            info = type("I", (_LegacyNameInfo,), {"codec": codec})(member)
            z.writestr(info, data)
    _, segs = read(path)
    assert [(s.locator.chapter, s.text) for s in segs] == [
        ("C1", "C1\n\nFound by its GBK, Shift_JIS or cp1252 bytes.")]


def test_epub_name_that_matches_two_members_without_case_is_missing(tmp_path):
    files = one_file_epub(["ch.xhtml"], ["CH.xhtml"], ["x"])
    files["OEBPS/Ch.xhtml"] = docgen.chapter_xhtml("other", "y")
    with pytest.raises(DocumentError, match="ch.xhtml is missing"):
        open_document(write_epub(tmp_path / "two.epub", files))


# -- EPUB: media types -----------------------------------------------------------
PARTS = [("Part 1", "The mill wheel turned all day by the river."),
         ("Part 2", "The miller counted sacks of flour every evening."),
         ("Part 3", "At night the owls hunted in the empty granary.")]


@pytest.mark.parametrize("name", ["epub-media-type-variants.epub", "epub-media-type-variants-all.epub"])
def test_case_epub_media_types_with_case_and_parameters(name):
    reader, segs = read(CASES / name)
    assert [(str(s.locator), s.text) for s in segs] == [
        (f"“{t}”", f"{t}\n\n{body}") for t, body in PARTS]
    assert reader.info().chapters == [t for t, _ in PARTS]
    assert reader.warnings == []


@pytest.mark.parametrize("media_type", ["APPLICATION/XHTML+XML", "application/xhtml+xml ; charset=UTF-8",
                                        "Text/HTML", "text/x-oeb1-document", "application/xml"])
def test_epub_every_spelling_of_a_text_media_type_is_read(tmp_path, media_type):
    files = docgen.epub_files(PARTS)
    files["OEBPS/content.opf"] = files["OEBPS/content.opf"].replace(
        'media-type="application/xhtml+xml"/>\n    <item id="ch2"',
        f'media-type="{media_type}"/>\n    <item id="ch2"')
    assert f'"{media_type}"' in files["OEBPS/content.opf"]
    reader, segs = read(docgen.write_epub_files(tmp_path / "m.epub", files))
    assert chapters(segs) == ["Part 1", "Part 2", "Part 3"]
    assert reader.warnings == []


def test_epub_spine_items_that_are_not_text_are_skipped_by_name(tmp_path):
    files = docgen.epub_files(PARTS)
    opf = files["OEBPS/content.opf"]
    opf = opf.replace("<manifest>", '<manifest>\n    <item id="cover" href="images/cover.jpg" '
                      'media-type="Image/JPEG"/>')
    opf = opf.replace("<spine>", '<spine>\n    <itemref idref="cover"/>\n    <itemref idref="gone"/>')
    files["OEBPS/content.opf"] = opf
    files["OEBPS/images/cover.jpg"] = b"\xff\xd8\xff\xe0 not really a jpeg"
    reader, segs = read(docgen.write_epub_files(tmp_path / "cover.epub", files))
    assert chapters(segs) == ["Part 1", "Part 2", "Part 3"]
    assert reader.warnings == [
        "skipped OEBPS/images/cover.jpg in the reading order: image/jpeg is not text",
        "skipped spine entry 'gone': the manifest has no item with that id"]


def test_epub_of_images_only_has_no_text_and_is_not_called_damaged(tmp_path):
    files = docgen.epub_files(PARTS[:1])
    files["OEBPS/content.opf"] = docgen._opf(
        "Photos", ['<item id="p1" href="p1.png" media-type="image/png"/>',
                   '<item id="p2" href="p2.png" media-type="image/png"/>'],
        ['<itemref idref="p1"/>', '<itemref idref="p2"/>'])
    files["OEBPS/p1.png"] = files["OEBPS/p2.png"] = b"\x89PNG\r\n\x1a\n"
    with pytest.raises(NoTextError) as err:
        open_document(docgen.write_epub_files(tmp_path / "photos.epub", files))
    assert "no text" in str(err.value) and "damaged" not in str(err.value)
    assert "image/png" in str(err.value)


# -- EPUB: several chapters in one file --------------------------------------------
THREE = [("I. The Harbour", "The harbour froze in the first week of winter."),
         ("II. The Storm", "A storm broke the northern pier into pieces."),
         ("III. The Thaw", "In spring the thaw brought the fishing boats back.")]


def test_case_epub_three_chapters_in_one_file():
    reader, segs = read(CASES / "epub-three-chapters-one-file.epub")
    assert [(s.locator.chapter, s.text) for s in segs] == [(t, f"{t}\n\n{b}") for t, b in THREE]
    assert reader.info().chapters == [t for t, _ in THREE]
    assert [s.progress for s in segs] == [1.0, 1.0, 1.0]


def _one_file_book(body: str, toc: list[tuple[str, str]], ncx: bool = False,
                   before: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """An EPUB whose text is ``body`` in one file; ``toc`` = [(fragment, title)]; the
    optional ``before`` chapters are separate files first."""
    files = docgen.epub_files(before or [("Opening", "An opening file.")], with_nav=not ncx,
                              with_ncx=ncx)
    files["OEBPS/text/book.xhtml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        f"<head><title>Book</title></head><body>{body}</body></html>")
    opf = files["OEBPS/content.opf"]
    opf = opf.replace("</manifest>", '  <item id="book" href="text/book.xhtml" '
                      'media-type="application/xhtml+xml"/>\n  </manifest>')
    files["OEBPS/content.opf"] = opf.replace("</spine>", '  <itemref idref="book"/>\n  </spine>')
    if ncx:
        points = "".join(f'<navPoint id="b{i}"><navLabel><text>{t}</text></navLabel>'
                         f'<content src="text/book.xhtml{"#" + f if f else ""}"/></navPoint>'
                         for i, (f, t) in enumerate(toc))
        files["OEBPS/toc.ncx"] = files["OEBPS/toc.ncx"].replace("</navMap>", points + "</navMap>")
    else:
        links = "".join(f'<li><a href="text/book.xhtml{"#" + f if f else ""}">{t}</a></li>'
                        for f, t in toc)
        files["OEBPS/nav.xhtml"] = files["OEBPS/nav.xhtml"].replace("</ol>", links + "</ol>")
    return files


@pytest.mark.parametrize("ncx", [False, True])
def test_epub_toc_fragments_switch_chapter_at_their_element(tmp_path, ncx):
    body = ('<p>Still the opening, carried over.</p>'
            '<section id="one"><h2>One</h2><p>First text.</p></section>'
            '<p>Between, <a id="two"/>then two begins mid-paragraph.</p>'
            '<p><a name="three%20x"></a>Three by an old-style anchor.</p>'
            '<div id="unlisted"><p>Still three.</p></div>')
    toc = [("one", "Chapter One"), ("two", "Chapter Two"), ("three%2520x", "Chapter Three")]
    files = _one_file_book(body, toc, ncx=ncx)
    reader, segs = read(docgen.write_epub_files(tmp_path / "f.epub", files))
    assert [(s.locator.chapter, s.text) for s in segs] == [
        ("Opening", "Opening\n\nAn opening file."),
        ("Opening", "Still the opening, carried over."),
        ("Chapter One", "One\n\nFirst text.\n\nBetween,"),
        ("Chapter Two", "then two begins mid-paragraph."),
        ("Chapter Three", "Three by an old-style anchor.\n\nStill three.")]
    assert reader.info().chapters == ["Opening", "Chapter One", "Chapter Two", "Chapter Three"]


def test_epub_toc_fragment_missing_from_its_file_names_the_text_anyway(tmp_path):
    files = _one_file_book("<h1>Alone</h1><p>Body text.</p>", [("nowhere", "The Only Chapter")])
    _, segs = read(docgen.write_epub_files(tmp_path / "stale.epub", files))
    assert [(s.locator.chapter, s.text) for s in segs][1:] == [
        ("The Only Chapter", "Alone\n\nBody text.")]


# -- EPUB: internal DTD subsets and entities --------------------------------------------
def test_case_epub_chapter_declares_nbsp_entity():
    reader, segs = read(CASES / "epub-chapter-declares-nbsp-entity.epub")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("“Arrival”", "Arrival\n\nThe train arrived at platform 9 at noon."),
        ("“Departure”", "Departure\n\nIt left again at 4 pm, heading north.")]  # nbsp: a space
    assert reader.warnings == []


def test_epub_chapter_subsets_are_dropped_never_expanded(tmp_path):
    files = docgen.epub_files(PARTS)
    files["OEBPS/text/ch002.xhtml"] = (
        '<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "x.dtd" [\n'
        '  <!ENTITY mine "EXPANDED">\n  <!ENTITY % p "<!ENTITY q \'Q\'>"> %p;\n'
        '  <!-- a ] and a > in a comment -->\n  <!ATTLIST p x CDATA "a]>b">\n]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Part 2</h1>'
        "<p>Kept &mine; as written, &eacute;t&eacute; read, &amp; more.</p></body></html>")
    _, segs = read(docgen.write_epub_files(tmp_path / "dtd.epub", files))
    assert segs[1].text == "Part 2\n\nKept &mine; as written, été read, & more."
    assert "EXPANDED" not in "".join(s.text for s in segs)


@pytest.mark.parametrize("member", ["OEBPS/content.opf", "OEBPS/toc.ncx", "META-INF/container.xml"])
def test_epub_package_files_declaring_entities_are_still_refused(tmp_path, member):
    files = docgen.epub_files(PARTS, with_nav=False, with_ncx=True)
    body = files[member].split("?>", 1)[1]
    files[member] = '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY nbsp "&#160;">]>' + body
    with pytest.raises(DocumentError, match="declares XML entities"):
        read(docgen.write_epub_files(tmp_path / "ent.epub", files))


def test_epub_html_named_entities_in_opf_and_ncx_are_read(tmp_path):
    files = docgen.epub_files(PARTS, with_nav=False, with_ncx=True, title="X")
    files["OEBPS/content.opf"] = files["OEBPS/content.opf"].replace(
        "<dc:title>X</dc:title>", "<dc:title>Caf&eacute;&nbsp;Stories &amp; more</dc:title>")
    files["OEBPS/toc.ncx"] = files["OEBPS/toc.ncx"].replace(">Part 2<", ">Part&nbsp;2 &mdash; Mill<")
    reader, segs = read(docgen.write_epub_files(tmp_path / "named.epub", files))
    assert reader.info().title == "Café Stories & more"  # spaces collapsed, nbsp too
    assert chapters(segs) == ["Part 1", "Part 2 — Mill", "Part 3"]


# -- EPUB: SVG pages ----------------------------------------------------------------
def test_case_epub_svg_page_among_xhtml():
    reader, segs = read(CASES / "epub-svg-page-among-xhtml.epub")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("“Page 1”", "Page 1\n\nThe fox lived under the old oak."),
        ("“Page 2”", "Plate 1. The fox carries a red lantern to the river."),
        ("“Page 3”", "Page 3\n\nIn the morning the lantern was gone.")]
    assert reader.warnings == []


def test_case_epub_all_svg_pages():
    _reader, segs = read(CASES / "epub-all-svg-pages.epub")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("“Page 1”", "The fox wakes up."), ("“Page 2”", "The fox finds a lantern."),
        ("“Page 3”", "The fox goes home.")]
    assert [s.progress for s in segs] == pytest.approx([1 / 3, 2 / 3, 1])


def test_epub_svg_text_elements_are_paragraphs_and_nothing_else_is(tmp_path):
    files = docgen.epub_files(PARTS[:1], with_nav=False)
    files["OEBPS/p.svg"] = (
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><title>Plate</title>'
        "<desc>A drawing of a mill.</desc><style>text { fill: red }</style>"
        '<text x="1" y="2"><tspan>First</tspan> <tspan>bubble.</tspan></text>'
        '<g><text x="1" y="9">Second bubble.</text></g>'
        '<text><tspan x="0" dy="1">Three</tspan><tspan x="0" dy="1">lines</tspan><tspan>here.</tspan></text>'
        '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml"><p>Caption.</p></div></foreignObject>'
        "</svg>")
    opf = files["OEBPS/content.opf"].replace(
        "</manifest>", '<item id="p" href="p.svg" media-type="image/svg+xml"/></manifest>')
    files["OEBPS/content.opf"] = opf.replace("</spine>", '<itemref idref="p"/></spine>')
    _, segs = read(docgen.write_epub_files(tmp_path / "svg.epub", files))
    assert [(s.locator.chapter, s.text) for s in segs][1:] == [
        ("Part 1", "First bubble.\n\nSecond bubble.\n\nThree lineshere.\n\nCaption.")]


def test_epub_svg_pages_without_text_say_no_text(tmp_path):
    files = docgen.epub_files(PARTS[:1], with_nav=False)
    files["OEBPS/p.svg"] = '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'
    files["OEBPS/content.opf"] = docgen._opf(
        "Art", ['<item id="p" href="p.svg" media-type="image/svg+xml"/>'], ['<itemref idref="p"/>'])
    with pytest.raises(NoTextError) as err:
        read(docgen.write_epub_files(tmp_path / "art.epub", files))
    assert "no text" in str(err.value) and "damaged" not in str(err.value)


# -- PDF: form fields ------------------------------------------------------------------
def test_case_pdf_form_fields_and_text():
    _reader, segs = read(CASES / "pdf-form-fields-and-text.pdf")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("p. 1", ("Vessel registration form\nShip name:\nHome port:\n\n"
                  "shipname: Northern Lantern\nhomeport: Whitby"))]


def test_case_pdf_form_fields_only_is_not_called_scanned():
    reader, segs = read(CASES / "pdf-form-fields-only.pdf")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("p. 1", "shipname: Northern Lantern\nhomeport: Whitby")]
    assert reader.warnings == []


def _write_pdf(path, objects: list[bytes]) -> Path:
    """Objects 1..n as given (1 must be the catalog); a valid xref and trailer."""
    from docgen import write_pdf_objects

    return write_pdf_objects(path, objects, version=b"1.5")


def _stream(data: bytes, head: bytes = b"") -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (head, len(data)) + data + b"\nendstream"


def test_pdf_form_fields_of_every_shape_in_reading_order(tmp_path):
    content = b"BT /F1 12 Tf 72 720 Td (Application) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 7 0 R 8 0 R 9 0 R 10 0 R 11 0 R] >> >>",
        b"<< /Type /Pages /Kids [3 0 R 12 0 R] /Count 2 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
         b" /Contents 13 0 R /Annots [11 0 R 10 0 R 9 0 R 8 0 R 7 0 R 6 0 R] >>"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        # a parent field holding the value; its widget kid is on the page
        b"<< /FT /Tx /T (owner) /V (Ada Lovelace) /Kids [6 0 R] >>",
        b"<< /Type /Annot /Subtype /Widget /Parent 5 0 R /Rect [72 600 300 620] >>",
        # a user-facing name
        (b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (dob) /TU (Date of birth) /V (1815-12-10)"
         b" /Rect [72 580 300 600] >>"),
        b"<< /Type /Annot /Subtype /Widget /FT /Btn /T (agree) /V /Yes /Rect [72 560 90 578] >>",
        b"<< /Type /Annot /Subtype /Widget /FT /Btn /T (spam) /V /Off /Rect [72 540 90 558] >>",
        (b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (secret) /V (hidden value) /F 2"
         b" /Rect [72 520 300 540] >>"),
        (b"<< /Type /Annot /Subtype /Widget /FT /Ch /T (colour) /V [(red) (blue)]"
         b" /Rect [320 600 400 620] >>"),
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
         b" /Contents 14 0 R >>"),
        _stream(content),
        _stream(b"BT /F1 12 Tf 72 720 Td (Second page) Tj ET"),
    ]
    _, segs = read(_write_pdf(tmp_path / "form.pdf", objects))
    assert [(str(s.locator), s.text) for s in segs] == [
        ("p. 1", ("Application\n\nowner: Ada Lovelace\ncolour: red, blue\n"
                  "Date of birth: 1815-12-10\nagree: Yes")),
        ("p. 2", "Second page")]


# -- PDF: ligatures and fonts ------------------------------------------------------------
def test_case_pdf_ligature_glyphs_are_folded():
    _, segs = read(CASES / "pdf-ligature-glyphs.pdf")
    assert [(str(s.locator), s.text) for s in segs] == [
        ("p. 1", "The first field office was fifty miles\nfrom the flooded floodplain.")]


def test_pdf_every_compatibility_ligature_is_folded(tmp_path):
    from bookpot.engine.readers.pdf import clean_page_text

    assert clean_page_text("\ufb00 \ufb01 \ufb02 \ufb03 \ufb04 \ufb05 \ufb06") == "ff fi fl ffi ffl st st"


def _type1_font_pdf(path, to_unicode: bytes | None, encoding: bytes = b"") -> Path:
    """A page drawn with a Type 1 font whose only encoding is its program's own
    (code 12 is /fi, 13 /fl, 11 /ff, as in TeX's OT1), with an optional ToUnicode."""
    program = (b"%!PS-AdobeFont-1.0: CMR10 003.002\n/FontName /CMR10 def\n"
               b"/Encoding 256 array\n0 1 255 {1 index exch /.notdef put} for\n"
               b"dup 11 /ff put\ndup 12 /fi put\ndup 13 /fl put\n"
               + b"".join(b"dup %d /%s put\n" % (ord(c), c.encode()) for c in "adeinorst")
               + b"dup 32 /space put\nreadonly def\ncurrentfile eexec\n" + bytes(range(256)))
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /CMR10 /FontDescriptor 5 0 R %s%s >>" % (
        b"/ToUnicode 7 0 R " if to_unicode else b"", encoding)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
         b" /Contents 8 0 R >>"),
        font,
        (b"<< /Type /FontDescriptor /FontName /CMR10 /Flags 4 /FontBBox [0 0 1000 1000] /ItalicAngle 0"
         b" /Ascent 700 /Descent -200 /CapHeight 700 /StemV 80 /FontFile 6 0 R >>"),
        _stream(zlib.compress(program), b"/Filter /FlateDecode /Length1 %d /Length2 256 /Length3 0"
                % (len(program) - 256)),
        _stream(to_unicode or b""),
        _stream(b"BT /F1 12 Tf 72 720 Td (\\014rst \\015oor o\\013ers) Tj ET"),
    ]
    return _write_pdf(path, objects)


PARTIAL_TO_UNICODE = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
                      b"1 begincodespacerange <00> <FF> endcodespacerange\n"
                      b"1 beginbfchar <0B> <FB00> endbfchar\nendcmap end end\n")


@pytest.mark.parametrize("to_unicode, encoding", [
    (PARTIAL_TO_UNICODE, b""),                                   # cnfsat.pdf's kind
    (None, b""),                                                 # no map at all
    (None, b"/Encoding << /Type /Encoding /Differences [32 /space] >>"),  # differences over it
], ids=["partial-tounicode", "no-tounicode", "differences-only"])
def test_pdf_type1_font_codes_missing_from_tounicode_use_the_fonts_own_encoding(
        tmp_path, to_unicode, encoding):
    _, segs = read(_type1_font_pdf(tmp_path / "t1.pdf", to_unicode, encoding))
    assert [s.text for s in segs] == ["first floor offers"]


def test_debian_tex_pdf_keeps_its_fi_and_fl():
    """glpk-doc's cnfsat.pdf: Computer Modern as CFF fonts with a ToUnicode map that
    lists only ﬀ and ﬃ; fi and fl are codes 12 and 13 of the fonts' own encoding."""
    if not DEBIAN_PDF.is_file():
        pytest.skip(f"{DEBIAN_PDF} is absent; `bash packaging/setup.sh --test` as root installs it")
    _, segs = read(DEBIAN_PDF)
    text = "\n".join(s.text for s in segs)
    assert segs[0].text.startswith("CNF Satisfiability Problem\nAndrew Makhorin")
    assert "this problem is to find such values of the variables" in segs[0].text
    assert "is specified in the Conjunctive Normal Form" in segs[0].text
    for lost in ("Satisability", " nd ", "specied", "\ufb01", "\ufb02"):
        assert lost not in text, lost
    assert text.count("Satisfiability") >= 4
    assert "f (x1, x2, . . . , xn)" in segs[0].text  # the math fonts' own encoding too
    assert [str(s.locator) for s in segs] == [f"p. {i}" for i in range(1, 7)]


# -- PDF: page labels that are not unique -----------------------------------------
def test_case_pdf_page_labels_that_restart():
    _reader, segs = read(CASES / "pdf-page-labels-restart.pdf")
    assert [(str(s.locator), s.text.split(":")[0]) for s in segs] == [
        ("p. 1 (page 1 of 4)", "Report"), ("p. 2 (page 2 of 4)", "Report"),
        ("p. 1 (page 3 of 4)", "Annex"), ("p. 2 (page 4 of 4)", "Annex")]
    assert [s.locator.page for s in segs] == ["1", "2", "1", "2"]
    assert [s.locator.page_index for s in segs] == [0, 1, 2, 3]
    assert segs[2].locator.to_dict()["locator"] == "p. 1 (page 3 of 4)"


def test_case_pdf_page_labels_that_are_only_a_prefix():
    _, segs = read(CASES / "pdf-page-labels-prefix-only.pdf")
    assert [str(s.locator) for s in segs] == [f"p. Annex (page {i} of 3)" for i in (1, 2, 3)]
    assert "winter" in segs[0].text and "summer" in segs[1].text and "bicycles" in segs[2].text


def test_pdf_unique_labels_keep_short_citations(tmp_path):
    path = docgen.make_pdf(tmp_path / "l.pdf", ["a", "b", "c", "d"], page_labels={0: "roman", 2: "decimal"})
    _, segs = read(path)
    assert [str(s.locator) for s in segs] == ["p. i", "p. ii", "p. 1", "p. 2"]


def test_locator_citations():
    assert str(Locator(page="1", page_index=2, page_count=40, label_repeats=True)) == "p. 1 (page 3 of 40)"
    assert str(Locator(page="1", page_index=2, label_repeats=True)) == "p. 1 (page 3)"
    assert str(Locator(page="iv", page_index=3, page_count=40)) == "p. iv"
    assert str(Locator(chapter="Two", page="1", page_index=9, page_count=10, label_repeats=True)) == \
        "“Two”, p. 1 (page 10 of 10)"
    # a state saved before these fields existed still loads
    assert str(Locator(page="3", page_index=2, chapter=None)) == "p. 3"


def test_pdf_pages_without_text_are_listed_in_warnings(tmp_path):
    path = docgen.make_pdf(tmp_path / "holes.pdf", ["one", "", "three", ""])
    reader, segs = read(path)
    assert [str(s.locator) for s in segs] == ["p. 1", "p. 3"]
    assert reader.warnings == ["2 of 4 pages have no text (blank, or images only: scanned?): p. 2, p. 4"]


# -- Markdown -----------------------------------------------------------------------
def test_case_markdown_mixed_fences():
    reader, segs = read(CASES / "markdown-mixed-fences.md")
    assert [str(s.locator) for s in segs] == ["“Install”, lines 1–9", "“Configure”, lines 11–21",
                                              "“Run”, lines 23–25"]
    assert "# build from source" in segs[0].text
    assert "# not a heading either" in segs[1].text and "[server]" in segs[1].text
    assert "".join(s.text for s in segs) == (CASES / "markdown-mixed-fences.md").read_text()
    assert reader.info().title == "Install"


MARKDOWN_KINDS = """\
---
title: front matter is not a heading
---

Book Title
==========

Intro text.

~~~~
```
# not a heading: inside a tilde fence
```
~~~
# still inside: the closing fence is shorter
~~~~

Second Part
-----------

    # indented code, not a heading

> # a quoted heading is not a chapter

- # neither is one in a list

<div>
# nor one in an HTML block
</div>

#Not a heading without a space

## Closing hashes ##
Text *after*.

### Level three stays in its chapter
More.
"""


def test_markdown_headings_as_commonmark_defines_them(tmp_path):
    path = tmp_path / "kinds.md"
    path.write_text(MARKDOWN_KINDS)
    reader, segs = read(path)
    assert [(s.locator.chapter, s.locator.line_start) for s in segs] == [
        (None, 1), ("Book Title", 5), ("Second Part", 18), ("Closing hashes", 33)]
    assert "".join(s.text for s in segs) == MARKDOWN_KINDS
    assert reader.info().title == "Book Title"


def test_markdown_headings_far_into_a_big_file_are_found(tmp_path, monkeypatch):
    import bookpot.engine.readers.text as text_mod

    monkeypatch.setattr(text_mod, "MD_WINDOW_CHARS", 2_000)
    monkeypatch.setattr(text_mod, "MD_MAX_BLOCK_CHARS", 20_000)
    parts = []
    for i in range(30):
        parts.append(f"# Chapter {i}\n\n" + "Some prose here. " * 40 + "\n\n")
        if i == 10:
            parts.append("```\n" + "# fenced\n\n" * 200 + "```\n\n")  # a fence longer than a window
        if i == 20:
            parts.append("Setext over a window edge\n" + "x " * 10 + "\n=====\n\n")
    text = "".join(parts)
    path = tmp_path / "big.md"
    path.write_text(text)
    segs = list(TextReader(path, markdown=True).segments())
    found = list(dict.fromkeys(s.locator.chapter for s in segs))
    assert found[:21] == [f"Chapter {i}" for i in range(21)]
    assert found[21] == "Setext over a window edge " + "x " * 9 + "x"
    assert found[22:] == [f"Chapter {i}" for i in range(21, 30)]
    assert "".join(s.text for s in segs) == text


# -- encodings ---------------------------------------------------------------------
def test_case_text_gbk():
    reader, segs = read(CASES / "text-gbk.txt")
    expected = (CASES / "text-gbk.expected-utf8.txt").read_text(encoding="utf-8")
    assert "".join(s.text for s in segs) == expected
    assert [str(s.locator) for s in segs] == ["lines 1–8"]
    assert reader.warnings == []


SAMPLES = {
    "gbk": "第一章 灯塔\n\n灯塔守护者每天晚上都会数一数经过的船只。冬天港口结冰，船只很少。\n",
    "shift_jis": "第一章\n\nこれは日本語のテキストです。灯台守は毎晩、通り過ぎる船を数えました。\n",
    "cp1251": "Глава первая\n\nСмотритель маяка каждый вечер считал проходящие корабли. Зимой гавань замерзала.\n",
    "cp1252": "Café crème, naïve façade — “quotes” and déjà vu; Über die Straße.\n",
    "latin-1": "Le café est très bon. Où est la gare? Ça dépend de l'été.\n",
}


@pytest.mark.parametrize("codec", sorted(SAMPLES))
@pytest.mark.parametrize("ext", [".txt", ".md"])
def test_undeclared_encodings_read_right_or_say_they_guessed(tmp_path, codec, ext):
    text = SAMPLES[codec] * 3
    path = tmp_path / f"sample{ext}"
    path.write_bytes(text.encode(codec))
    reader, segs = read(path)
    got = "".join(s.text for s in segs)
    # Never silent mojibake: right, or a one-line warning naming the guess.
    assert got == text or (reader.warnings and reader.encoding in reader.warnings[0]), (
        reader.encoding, got[:60])
    if codec in ("gbk", "shift_jis", "cp1252", "latin-1"):
        assert got == text, (reader.encoding, got[:60])


def test_undecidable_bytes_are_read_with_a_warning(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(b"Header line\n" + bytes(range(0x80, 0x100)) * 4 + b"\n")
    reader, segs = read(path)
    assert segs and all("\n" not in w for w in reader.warnings)
    assert reader.encoding in reader.warnings[0] and "some characters may be wrong" in reader.warnings[0]
    if reader.encoding == "cp1252":  # five bytes cp1252 leaves undefined, four times over
        assert reader.warnings[1:] == [
            "20 characters could not be decoded as cp1252 (the first at line 2) and read as \ufffd"]


HTML_HEAD = "<html><head><title>{title}</title>{style}{meta}</head><body>{body}</body></html>"


@pytest.mark.parametrize("meta", [
    '<meta charset="windows-1251">',
    "<META CHARSET=windows-1251>",
    '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">',
    "<meta content='text/html;charset=windows-1251' http-equiv=content-type />",
])
def test_html_charset_declared_anywhere_in_the_head(tmp_path, meta):
    body = "<h1>Глава</h1><p>Смотритель маяка считал корабли.</p>"
    page = HTML_HEAD.format(title="Маяк", style="<style>" + "p{margin:0}\n" * 400 + "</style>",
                            meta=meta, body=body)
    assert page.index("<meta" if "meta" in meta else "<META") > 4000  # past any 1-4 KB prescan
    path = tmp_path / "page.html"
    path.write_bytes(page.encode("cp1251"))
    reader, segs = read(path)
    assert reader.encoding == "cp1251" and reader.warnings == []
    assert [(s.locator.chapter, s.text) for s in segs] == [
        ("Глава", "Глава\n\nСмотритель маяка считал корабли.")]


@pytest.mark.parametrize("fake", [
    "<!-- <meta charset='koi8-r'> -->",
    "<script>var s = '<meta charset=koi8-r>';</script>",
])
def test_html_charset_in_comments_or_scripts_is_not_a_declaration(tmp_path, fake):
    page = HTML_HEAD.format(title="T", style="", meta=fake,
                            body="<p>Café crème, naïve façade and déjà vu.</p>" * 3)
    path = tmp_path / "page.html"
    path.write_bytes(page.encode("cp1252"))
    reader, segs = read(path)
    assert reader.encoding != "koi8-r"
    assert "Café crème, naïve façade and déjà vu." in segs[0].text


def test_html_charset_in_the_body_text_is_not_a_declaration(tmp_path):
    page = ("<html><head><title>T</title></head><body><p>Write &lt;meta charset=koi8-r&gt; or"
            "</p><meta charset='koi8-r'><p>Café déjà vu.</p></body></html>")
    path = tmp_path / "page.html"
    path.write_bytes(page.encode("utf-8"))
    reader, segs = read(path)
    assert reader.encoding == "utf-8" and "Café déjà vu." in segs[0].text


def test_html_xml_declaration_and_a_false_utf8_claim(tmp_path):
    path = tmp_path / "x.xhtml"
    path.write_bytes('<?xml version="1.0" encoding="ISO-8859-15"?>\n<html><body><p>Prix: 5 €.</p>'
                     "</body></html>".encode("iso8859_15"))
    reader, segs = read(path)
    assert reader.encoding == "iso8859-15" and segs[0].text == "Prix: 5 €."
    lie = tmp_path / "lie.html"
    lie.write_bytes('<html><head><meta charset="utf-8"></head><body><p>Café crème, naïve façade.</p>'
                    "</body></html>".encode("cp1252"))
    reader, segs = read(lie)
    assert segs[0].text == "Café crème, naïve façade."
    assert len(reader.warnings) == 1 and "declares UTF-8 but is not" in reader.warnings[0]


def test_html_internal_subset_is_dropped(tmp_path):
    path = tmp_path / "old.xhtml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE html [\n<!ENTITY nbsp "&#160;">\n]>\n'
                    "<html><body><h1>Old</h1>\n<p>a&nbsp;b</p></body></html>")
    _, segs = read(path)
    assert [(str(s.locator), s.text) for s in segs] == [("“Old”, lines 5–6", "Old\n\na b")]


def test_epub_reader_is_what_open_document_gives_for_every_epub_case():
    for path in sorted(CASES.glob("*.epub")):
        assert isinstance(open_document(path), EpubReader), path.name


def test_bytes_the_codec_cannot_decode_are_counted_in_a_warning(tmp_path):
    """UTF-8 for 64 KiB, then a cp1252 line: its bytes become U+FFFD, and the reader says so."""
    path = tmp_path / "late.txt"
    path.write_bytes(b"plain ascii line\n" * 5000 + "caf\xe9 cr\xe8me\n".encode("latin-1"))
    reader, segs = read(path)
    assert "".join(s.text for s in segs).endswith("caf\ufffd cr\ufffdme\n")
    assert reader.warnings == [("2 characters could not be decoded as utf-8 (the first at line "
                                "5,001) and read as \ufffd")]
    page = tmp_path / "late.html"
    page.write_bytes(b"<html><body>" + b"<p>ascii</p>\n" * 6000 + b"<p>caf\xe9</p></body></html>")
    reader, segs = read(page)
    assert segs[-1].text.endswith("caf\ufffd")
    assert reader.warnings == ["1 character could not be decoded as utf-8 and read as \ufffd"]


@pytest.mark.parametrize("damage", ["missing", "no-links"])
def test_epub_nav_that_names_nothing_falls_back_to_the_ncx(tmp_path, damage):
    files = docgen.epub_files(PARTS, with_nav=True, with_ncx=True)
    if damage == "missing":
        del files["OEBPS/nav.xhtml"]
    else:
        files["OEBPS/nav.xhtml"] = "<html><body><nav epub:type='toc'><ol></ol></nav></body></html>"
    reader, segs = read(docgen.write_epub_files(tmp_path / "nav.epub", files))
    assert reader.info().chapters == ["Part 1", "Part 2", "Part 3"]
    assert chapters(segs) == ["Part 1", "Part 2", "Part 3"]


@pytest.mark.parametrize("label, codec, text", [
    ("gb2312", "gbk", "镕 is a GBK character gb2312 lacks: 第一章"),
    ("Shift_JIS", "cp932", "①丸数字 are Windows additions to Shift_JIS"),
    ("euc-kr", "cp949", "똠방각하: cp949 syllables euc-kr lacks"),
    ("x-gbk", "gbk", "第一章"),
])
def test_html_legacy_labels_read_as_the_superset_browsers_use(tmp_path, label, codec, text):
    page = tmp_path / "legacy.html"
    page.write_bytes(f'<html><head><meta charset="{label}"></head><body><p>{text}</p></body></html>'
                     .encode(codec))
    reader, segs = read(page)
    assert segs[0].text == text and reader.warnings == []


@pytest.mark.parametrize("cut", range(4))
@pytest.mark.parametrize("spaced", [True, False])
def test_a_big_gbk_file_is_detected_wherever_its_sniffed_head_ends(tmp_path, cut, spaced):
    """The detector sees the first 64 KiB: it must not fail on a character cut in two."""
    line = "灯塔守护者每天晚上都会数一数经过的船只。" + (" " if spaced else "") + "冬天港口结冰，船只很少。"
    data = (line * 4000).encode("gbk")
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * cut + data)  # shifts where 64 KiB falls in a character
    reader, segs = read(path)
    assert reader.encoding == "gb18030" and reader.warnings == []
    assert "".join(s.text for s in segs) == "a" * cut + line * 4000


def test_epub_toc_and_manifest_may_spell_a_name_differently(tmp_path):
    """The nav percent-encodes and decomposes the name the OPF writes plainly."""
    files = one_file_epub(["Text/Capítulo.xhtml"], ["Text/Capítulo.xhtml"], ["Body."])
    files["OEBPS/nav.xhtml"] = files["OEBPS/nav.xhtml"].replace(
        'href="Text/Capítulo.xhtml">C1', 'href="text/Capi%CC%81tulo.xhtml#top">Named by the nav')
    files["OEBPS/text/x.txt"] = "makes 'text/' a folder of its own"
    reader, segs = read(write_epub(tmp_path / "spell.epub", files))
    assert [(s.locator.chapter, s.text) for s in segs] == [("Named by the nav", "C1\n\nBody.")]
    assert reader.info().chapters == ["Named by the nav"]
