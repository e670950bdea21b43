"""Fuzzing the readers: any bytes in, only DocumentError out.

A user will point bookpot at every kind of file; whatever is wrong with it
must come back as a DocumentError with one line, never as an IndexError from
deep inside a parser. Bounded (a few hundred examples per test) so CI stays
fast; no example database is written into the work tree.
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bookpot.engine.errors import DocumentError  # noqa: E402
from bookpot.engine.readers import open_document  # noqa: E402

import docgen  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = [".pdf", ".epub", ".txt", ".md", ".html", ".xhtml", ""]

_workdir = Path(tempfile.mkdtemp(prefix="bookpot-fuzz-"))


def _valid_pdf() -> bytes:
    path = docgen.make_pdf(_workdir / "seed.pdf", ["First page words.", "Second page."],
                           page_labels={0: "roman"}, outline=[("One", 0)])
    return path.read_bytes()


def _valid_epub() -> bytes:
    path = docgen.make_epub(_workdir / "seed.epub", [("One", "Alpha."), ("Two", "Beta.")])
    return path.read_bytes()


SEEDS = {".pdf": _valid_pdf(), ".epub": _valid_epub()}


def read_fully(data: bytes, ext: str, password: str | None = None) -> None:
    """Write ``data`` to a file and read it end to end; DocumentError is a fine outcome."""
    path = _workdir / f"case{ext}"
    path.write_bytes(data)
    try:
        reader = open_document(path, password)
        reader.info()
        for seg in reader.segments():
            assert isinstance(seg.text, str) and seg.text
    except DocumentError as e:
        msg = str(e)
        assert msg and "\n" not in msg, repr(msg)


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


@FUZZ
@given(st.text(max_size=3000), st.sampled_from([".txt", ".md", ".html"]))
def test_random_text(text, ext):
    read_fully(text.encode("utf-8", errors="surrogatepass"), ext)


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
