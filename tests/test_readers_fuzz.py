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
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bookpot.engine.errors import DocumentError  # noqa: E402
from bookpot.engine.readers import open_document  # noqa: E402

import docgen  # noqa: E402

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
