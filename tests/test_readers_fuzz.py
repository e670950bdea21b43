"""Fuzzing the readers: any bytes in, only DocumentError out.

A user will point bookpot at every kind of file; whatever is wrong with it
must come back as a DocumentError with one line, never as an IndexError from
deep inside a parser. Byte mutations of real PDFs (plain and deflated),
EPUBs (the zip, and each XML/XHTML member inside a good zip), HTML and text
in several encodings; random content streams with form XObjects for the PDF
page-size check; random markup for the EPUB chapter stream.

Bounded so CI stays fast: at most ``EXAMPLES`` examples per test, each with
a ``DEADLINE`` (a reader that hangs on some input fails the test instead of
stalling it); the whole module runs in well under a minute
(``BOOKPOT_FUZZ_EXAMPLES`` raises the count for a longer local run). No
example database is written into the work tree.
"""
from __future__ import annotations

import codecs
import os
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
import docgen  # noqa: E402 - after the importorskip above
from bookpot.engine.errors import DocumentError  # noqa: E402
from bookpot.engine.readers import open_document  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("BOOKPOT_FUZZ_EXAMPLES", "150"))
DEADLINE = timedelta(seconds=3)  # one example; real ones take milliseconds
FUZZ = settings(max_examples=EXAMPLES, deadline=DEADLINE, database=None,
                suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = [".pdf", ".epub", ".txt", ".md", ".html", ".xhtml", ""]

_workdir = Path(tempfile.mkdtemp(prefix="bookpot-fuzz-"))


def _valid_pdf() -> bytes:
    path = docgen.make_pdf(_workdir / "seed.pdf", ["First page words.", "Second page."],
                           page_labels={0: "roman"}, outline=[("One", 0)])
    return path.read_bytes()


def _deflated_pdf() -> bytes:
    path = docgen.make_pdf(_workdir / "seedz.pdf", ["Deflated page one.", "Page two."],
                           compress=True)
    return path.read_bytes()


def _valid_epub() -> bytes:
    path = docgen.make_epub(_workdir / "seed.epub", [("One", "Alpha."), ("Two", "Beta.")])
    return path.read_bytes()


HTML_SEED = ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>T</title>"
             "<style>p{}</style></head>\n<body><h1>One</h1><p>Alpha &amp; beta.</p>"
             "<!-- note --><pre>a\n b</pre><script>x=1</script><h2>Two</h2>"
             "<div>Gamma<br>delta</div></body></html>\n")
TEXT_SEED = "# Title\n\nCafé “quoted” naïve – résumé.\n\n## Part\n\nMore words here.\n"
SEEDS = {".pdf": _valid_pdf(), ".pdfz": _deflated_pdf(), ".epub": _valid_epub()}
TEXT_SEEDS = [TEXT_SEED.encode("utf-8"), TEXT_SEED.encode("utf-16"),
              TEXT_SEED.encode("utf-16-le"), TEXT_SEED.encode("cp1252"),
              codecs.BOM_UTF8 + TEXT_SEED.encode("utf-8"), TEXT_SEED.encode("utf-32")]


def read_fully(data: bytes, ext: str, password: str | None = None) -> None:
    """Write ``data`` to a file and read it end to end; DocumentError is a fine outcome."""
    path = _workdir / f"case{ext}"
    path.write_bytes(data)
    try:
        reader = open_document(path, password)
        info = reader.info()
        for text in [info.title or "", *info.chapters]:
            assert "\n" not in text
            text.encode("utf-8")
        for seg in reader.segments():
            assert isinstance(seg.text, str) and seg.text
            seg.text.encode("utf-8")  # no lone surrogates: the tokenizer and JSON need UTF-8
            str(seg.locator).encode("utf-8")
            assert "\n" not in str(seg.locator)
    except DocumentError as e:
        msg = str(e)
        assert msg and "\n" not in msg and len(msg) < 400, repr(msg)
        msg.encode("utf-8")


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(EXTENSIONS))
def test_random_bytes(data, ext):
    read_fully(data, ext)


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few bytes overwritten, a slice deleted, or cut short."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "truncate", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


@FUZZ
@given(mutated(SEEDS[".pdf"]), st.sampled_from([None, "pw"]))
def test_mutated_pdf(data, password):
    read_fully(data, ".pdf", password)


@FUZZ
@given(mutated(SEEDS[".pdfz"]))
def test_mutated_deflated_pdf(data):
    """Damaged zlib streams: the page-size check's own inflating, then pypdf's."""
    read_fully(data, ".pdf")


CONTENT_TOKENS = [b"BT", b"ET", b"/F1 12 Tf", b"72 700 Td", b"(hello) Tj", b"[(a) -20 (b)] TJ",
                  b"(x) '", b"1 2 (y) \"", b"<48656c6c6f> Tj", b"T*", b"q", b"Q",
                  b"1 0 0 1 5 5 cm", b"/A Do", b"/B Do", b"/Nope Do", b"/A%c\nDo", b"/#41 Do",
                  b"(unclosed", b")", b"(a\\)b)", b"[", b"]", b"<<", b">>", b"%comment\n",
                  b"0 0 m 9 9 l S", b"BI /W 1 /H 1 ID x EI"]
content_stream = st.lists(st.one_of(st.sampled_from(CONTENT_TOKENS), st.binary(max_size=6)),
                          max_size=40).map(b" ".join)


@FUZZ
@given(st.lists(content_stream, min_size=1, max_size=3), content_stream, content_stream,
       st.booleans())
def test_random_content_streams(pages, form_a, form_b, flate):
    """Odd operators, strings and forms drawing forms (cycles too): one line or text."""
    path = docgen.make_pdf_from_streams(_workdir / "streams.pdf", pages,
                                        forms={"A": form_a, "B": form_b}, flate=flate)
    read_fully(path.read_bytes(), ".pdf")


@FUZZ
@given(mutated(SEEDS[".epub"]))
def test_mutated_epub_bytes(data):
    read_fully(data, ".epub")


MEMBERS = ["META-INF/container.xml", "OEBPS/content.opf", "OEBPS/nav.xhtml",
           "OEBPS/text/ch001.xhtml"]


@FUZZ
@given(st.sampled_from(MEMBERS), st.data())
def test_mutated_epub_members(member, data):
    """Damage inside a well-formed zip: the XML/XHTML parsers' turn."""
    files = docgen.epub_files([("One", "Alpha."), ("Two", "Beta.")])
    files[member] = data.draw(mutated(files[member].encode()))
    path = _workdir / "members.epub"
    docgen.write_epub_files(path, files)
    read_fully(path.read_bytes(), ".epub")


MARKUP = ["<p>", "</p>", "<h1>", "</h1>", "<h2>", "</h2>", "<pre>", "</pre>", "<br>",
          "<script>", "</script>", "<style>", "</style>", "<!--", "-->", "<![CDATA[", "]]>",
          "<!DOCTYPE html>", "<?xml version='1.0'?>", "&amp;", "&#x41;", "&#99999999;", "&bogus;",
          "<", ">", "&", "<a href='x'>", "</a>", "<title>", "</title>", "\x00", "\ufeff"]
markup = st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=20)),
                  max_size=80).map("".join)


@FUZZ
@given(st.text(max_size=3000), st.sampled_from([".txt", ".md", ".html"]))
def test_random_text(text, ext):
    read_fully(text.encode("utf-8", errors="surrogatepass"), ext)


@FUZZ
@given(st.sampled_from(TEXT_SEEDS).flatmap(mutated), st.sampled_from([".txt", ".md", ""]))
def test_mutated_text_encodings(data, ext):
    """UTF-8, UTF-16 (BOM or not), UTF-32, cp1252: damaged, they still read or say why."""
    read_fully(data, ext)


@FUZZ
@given(mutated(HTML_SEED.encode()), st.sampled_from([".html", ".xhtml", ""]))
def test_mutated_html(data, ext):
    read_fully(data, ext)


@FUZZ
@given(markup, st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_random_epub_chapter_markup(text, encoding):
    """A chapter of random markup, streamed through the EPUB chapter parser."""
    files = docgen.epub_files([("One", "Alpha."), ("Two", "Beta.")])
    files["OEBPS/text/ch001.xhtml"] = text.encode(encoding, errors="replace")
    path = docgen.write_epub_files(_workdir / "chapter.epub", files)
    read_fully(path.read_bytes(), ".epub")


def test_zip_with_odd_members_is_only_a_document_error(tmp_path):
    """A stored-but-unsupported compression method must not leak NotImplementedError."""
    path = docgen.make_epub(tmp_path / "odd.epub", [("One", "Alpha.")])
    raw = bytearray(path.read_bytes())
    # Patch the compression method of every member to 99 (AES / unknown).
    with zipfile.ZipFile(path) as z:
        offsets = [i.header_offset for i in z.infolist()]
    for off in offsets[1:]:
        raw[off + 8: off + 10] = (99).to_bytes(2, "little")
    cd = raw.rfind(b"PK\x01\x02")
    while cd != -1:
        raw[cd + 10: cd + 12] = (99).to_bytes(2, "little")
        cd = raw.rfind(b"PK\x01\x02", 0, cd)
    path.write_bytes(bytes(raw))
    with pytest.raises(DocumentError):
        list(open_document(path).segments())


# -- EPUBs built the many ways real tools write them ----------------------------------
# Every chapter's text must come out once, in order, under its own title,
# whatever the zip flags, media-type spelling, file layout (several chapters
# in one file, switched at a fragment), entities and toc kind.
XHTML_SPELLINGS = ["application/xhtml+xml", "APPLICATION/XHTML+XML", "application/xhtml+xml; charset=utf-8",
                   "Application/Xhtml+Xml ;charset=\"UTF-8\"", "text/html", "text/x-oeb1-document"]
SVG_SPELLINGS = ["image/svg+xml", "IMAGE/SVG+XML", "image/svg+xml; charset=utf-8"]
# (as written in the markup, as read)
WORDS = [("harbour", "harbour"), ("caf&eacute;", "café"), ("fish &amp; chips", "fish & chips"),
         ("a&nbsp;b", "a b"), ("&mdash;", "—"), ("&#233;t&#xE9;", "été"), ("&custom;", "&custom;"),
         ("Capítulo", "Capítulo"), ("灯塔", "灯塔"), ("&lt;tag&gt;", "<tag>")]
FILE_NAMES = ["ch{n}.xhtml", "Capítulo {n}.xhtml", "第{n}章.xhtml", "Ca\u0301pi\u0301tulo{n}.xhtml",
              "100%{n}.xhtml"]
ANCHORS = ['<section id="{id}"><h2>{title}</h2>{body}</section>', '<h2 id="{id}">{title}</h2>{body}',
           '<p><a id="{id}"/></p><h2>{title}</h2>{body}', '<a name="{id}"></a><h2>{title}</h2>{body}',
           '<div id="{id}"><h2>{title}</h2></div>{body}']


class _NoUtf8Flag(zipfile.ZipInfo):
    def _encodeFilenameFlags(self):  # UTF-8 name bytes without the flag, as many tools write
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


@st.composite
def epub_books(draw):
    """``(files, zip_style, expected, toc_titles, title)``: the members of an EPUB,
    how the zip stores their names ("flagged" UTF-8 or "no-flag"), the
    ``[(chapter, text), ...]`` a correct reading gives, the toc's titles in
    order and the book's title as read."""
    from urllib.parse import quote

    n = draw(st.integers(1, 7))
    chapters = []
    for i in range(n):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
        title_word = draw(st.sampled_from(["Ch", "Capítulo", "Caf&eacute;", "Ship &amp; Sea"]))
        chapters.append((f"{title_word} {i}", f"marker{i} " + " ".join(w for w, _ in words),
                         f"marker{i} " + " ".join(r for _, r in words)))
    # consecutive chapters share a file; an SVG page holds one chapter alone
    files_of: list[list[int]] = []
    i = 0
    while i < n:
        size = draw(st.integers(1, min(3, n - i)))
        files_of.append(list(range(i, i + size)))
        i += size
    use_ncx = draw(st.booleans())
    subset = draw(st.booleans())
    opf_title = draw(st.sampled_from(["Plain", "Caf&eacute; &amp; Co"]))
    files: dict[str, bytes] = {"META-INF/container.xml": docgen.CONTAINER_XML.encode()}
    manifest, spine, toc, expected = [], [], [], []
    for f, members in enumerate(files_of):
        name = draw(st.sampled_from(FILE_NAMES)).format(n=f)
        svg = len(members) == 1 and draw(st.integers(0, 4)) == 0
        if svg:
            name = name.rsplit(".", 1)[0] + ".svg"
        href = quote(name) if draw(st.booleans()) or "%" in name or " " in name else name
        kind = draw(st.sampled_from(SVG_SPELLINGS if svg else XHTML_SPELLINGS))
        manifest.append(f'<item id="i{f}" href="{docgen._esc(href)}" media-type="{docgen._esc(kind)}"/>')
        spine.append(f'<itemref idref="i{f}"/>')
        parts = []
        for k, c in enumerate(members):
            title, markup, read_as = chapters[c]
            if svg:
                parts.append(f'<text x="1" y="{k}">{markup}</text>')
                expected.append((_read_title(title), read_as))
                toc.append((href, _read_title(title), title))
                continue
            whole = k == 0 and draw(st.booleans())  # the toc names the file itself
            anchor = f"a{c}" if draw(st.booleans()) else f"a {c}"
            parts.append(draw(st.sampled_from(ANCHORS)).format(id=anchor, title=title,
                                                               body=f"<p>{markup}</p>"))
            toc.append((href if whole else f"{href}#{quote(anchor)}", _read_title(title), title))
            expected.append((_read_title(title), f"{_read_title(title)}\n\n{read_as}"))
        if svg:
            doc = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><title>t</title>' \
                  + "".join(parts) + "</svg>"
        else:
            prolog = ('<!DOCTYPE html [\n<!ENTITY custom "EXPANDED">\n<!ENTITY nbsp "&#160;">\n]>\n'
                      if subset else "<!DOCTYPE html>\n")
            doc = ('<?xml version="1.0" encoding="utf-8"?>\n' + prolog
                   + '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head><body>'
                   + "".join(parts) + "</body></html>")
        files[f"OEBPS/{name}"] = doc.encode()
    if use_ncx:
        manifest.append('<item id="ncx" href="toc.ncx" media-type="Application/X-DTBNCX+XML"/>')
        points = "".join(f'<navPoint id="p{k}"><navLabel><text>{t}</text></navLabel>'
                         f'<content src="{docgen._esc(h)}"/></navPoint>' for k, (h, _, t) in enumerate(toc))
        files["OEBPS/toc.ncx"] = ('<?xml version="1.0"?>\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/">'
                                  f"<navMap>{points}</navMap></ncx>").encode()
    else:
        manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                        'properties="nav"/>')
        links = "".join(f'<li><a href="{docgen._esc(h)}">{t}</a></li>' for h, _, t in toc)
        files["OEBPS/nav.xhtml"] = ('<html xmlns="http://www.w3.org/1999/xhtml" '
                                    'xmlns:epub="http://www.idpf.org/2007/ops"><body>'
                                    f'<nav epub:type="toc"><ol>{links}</ol></nav></body></html>').encode()
    opf = docgen._opf("T", manifest, spine, ' toc="ncx"' if use_ncx else "")
    files["OEBPS/content.opf"] = opf.replace("<dc:title>T</dc:title>",
                                             f"<dc:title>{opf_title}</dc:title>").encode()
    zip_style = draw(st.sampled_from(["flagged", "no-flag"]))
    return files, zip_style, expected, [t for _, t, _ in toc], _read_title(opf_title)


def _read_title(markup: str) -> str:
    import html

    return html.unescape(markup)


@FUZZ
@given(epub_books())
def test_every_chapter_comes_out_once_in_order(book):
    files, zip_style, expected, toc_titles, title = book
    path = _workdir / "variants.epub"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, data in files.items():
            info = _NoUtf8Flag(name) if zip_style == "no-flag" else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    reader = open_document(path)
    segs = list(reader.segments())
    assert [(s.locator.chapter, s.text) for s in segs] == expected
    assert reader.info().chapters == list(dict.fromkeys(toc_titles))
    assert reader.info().title == title
    assert reader.warnings == []
    assert "EXPANDED" not in "".join(s.text for s in segs)
