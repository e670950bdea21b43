"""Issue #8, bad input: every broken or hostile book, through the real CLI.

Each case is a file a user could point bookpot at. Run through
``bookpot info BOOK --json`` in a subprocess (it opens the book, reads every
segment through its reader and tokenizes it; no model inference), it must
either be read correctly (exit 0, the right format and character count) or
fail with exactly one line ``bookpot: ...`` on stderr and exit code 2: no
traceback, no hang (every run has a timeout), and nothing half-written left
in the cache (``BOOKPOT_CACHE_DIR`` points at a fresh directory per test).

A multi-GB text file is checked two ways: the CLI on a 3 GiB file (sparse
past its first 64 MiB) while its peak RSS is sampled, since tokenizing
gigabytes takes ~15 min here (about 1.2 MB/s on two busy cores); and the
text reader alone streaming a real 1 GiB file to its end in a subprocess
whose peak RSS must stay small (``BOOKPOT_BIG_TEXT_MB`` changes the size).

Only two cases run ``ask`` with the real model: an encrypted PDF with its
password, and a book that fails half-way through being read (the cache must
come out of it clean and usable).

The same cases at the reader level (faster, with exact texts) are in
test_readers.py; random damage is in test_readers_fuzz.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docgen
import pytest
from conftest import BOOKPOT, run_cli

TIMEOUT = 120  # seconds for one `info` run; the slowest case takes a few


# -- what a case expects ---------------------------------------------------------
@dataclass(frozen=True)
class Error:
    """Exit 2 with one line ``bookpot: ...`` containing every needle."""

    needles: tuple[str, ...]


@dataclass(frozen=True)
class Reads:
    """Exit 0; ``info --json`` reports this format and exactly this many characters."""

    format: str
    characters: int
    pages: int | None = None


def error(*needles: str) -> Error:
    return Error(needles)


def check_one_line_error(p: subprocess.CompletedProcess, needles) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr[-2000:]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bookpot: "), p.stderr[-2000:]
    assert len(lines[0]) < 300, lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def check_cache_clean(cache: Path) -> None:
    """Whatever a failed or finished run left in the cache is whole: no temporaries."""
    if not cache.exists():
        return
    leftovers = [p for p in cache.rglob("*") if p.name.endswith((".tmp", ".part", ".partial"))]
    assert not leftovers, leftovers


# -- the books -----------------------------------------------------------------
TEXT = "Première ligne, café « crème ».\nSecond line: ünïcode ±½ — done.\n"
PAGES = ["classified text", "page two"]


def _pdf(tmp: Path) -> Path:
    return docgen.make_pdf(tmp / "book.pdf", ["The whale is white.", "The ship sails."])


def _write(name: str, data: bytes | str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path
    return make


def _epub_member(name: str, member: str, replace: Callable[[str], str]):
    def make(tmp: Path) -> Path:
        files = docgen.epub_files([("One", "Some text."), ("Two", "More text.")])
        files[member] = replace(files[member])
        return docgen.write_epub_files(tmp / name, files)
    return make


def _unreadable(tmp: Path) -> Path:
    path = tmp / "locked.txt"
    path.write_text("secret")
    path.chmod(0)
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.txt"
    os.mkfifo(path)
    return path


CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...], Error | Reads]] = [
    # PDF
    ("pdf-truncated-30%", lambda t: docgen.write_truncated(_pdf(t), t / "cut.pdf", 0.3), (),
     error("cut.pdf", "not a readable PDF")),
    ("pdf-truncated-95%", lambda t: docgen.write_truncated(_pdf(t), t / "cut.pdf", 0.95), (),
     error("cut.pdf")),
    ("pdf-corrupt", lambda t: docgen.make_corrupt_pdf(t / "junk.pdf"), (),
     error("junk.pdf is not a readable PDF")),
    ("pdf-encrypted-no-password",
     lambda t: docgen.make_pdf(t / "secret.pdf", PAGES, password="s3cret"), (),
     error("secret.pdf is encrypted; pass --password")),
    ("pdf-encrypted-wrong-password",
     lambda t: docgen.make_pdf(t / "secret.pdf", PAGES, password="s3cret"),
     ("--password", "guess"), error("secret.pdf: wrong password")),
    ("pdf-encrypted-right-password",
     lambda t: docgen.make_pdf(t / "secret.pdf", PAGES, password="s3cret"),
     ("--password", "s3cret"), Reads("pdf", len("classified text\npage two"), pages=2)),
    ("pdf-no-text-layer", lambda t: docgen.make_pdf(t / "scan.pdf", ["", ""]), (),
     error("scan.pdf has no text layer", "OCR")),
    ("pdf-enormous-content-stream",
     lambda t: docgen.make_pdf_from_streams(t / "huge.pdf", [b"0 0 m 9 9 l S\n" * 1_500_000]), (),
     error("huge.pdf: page 1 is too large to extract", "16 MiB")),
    ("pdf-flate-bomb-content-stream",
     lambda t: docgen.make_pdf_from_streams(t / "bomb.pdf", [b" " * (200 << 20)], flate=True), (),
     error("bomb.pdf: page 1 is too large to extract")),
    ("pdf-form-drawn-5000-times",
     lambda t: docgen.make_pdf_from_streams(
         t / "amp.pdf", [b"q /A Do Q\n" * 5000],
         forms={"A": b"BT /F1 9 Tf 72 700 Td (The quick brown fox.) Tj ET\n" * 2000}), (),
     error("amp.pdf: page 1 is too large to extract")),
    # EPUB
    ("epub-zip-bomb-member", lambda t: docgen.make_epub_zip_bomb(t / "bomb.epub"), (),
     error("bomb.epub is unsafe", "64 MiB")),
    ("epub-zip-bomb-ratio",
     lambda t: docgen.make_epub_zip_bomb(t / "ratio.epub", member_bytes=40 << 20), (),
     error("ratio.epub is unsafe", "zip bomb")),
    ("epub-20001-files", lambda t: docgen.make_epub_many_members(t / "many.epub", 20_001), (),
     error("many.epub is unsafe", "files")),
    ("epub-href-climbs-out", lambda t: docgen.make_epub_with_href(t / "climb.epub"), (),
     error("climb.epub is unsafe", "../../../etc/passwd", "outside the book")),
    ("epub-href-absolute", lambda t: docgen.make_epub_with_href(t / "abs.epub", "/etc/passwd"), (),
     error("abs.epub is unsafe", "outside the book")),
    ("epub-billion-laughs-container",
     lambda t: docgen.make_epub_entity_bomb(t / "lol.epub", "META-INF/container.xml"), (),
     error("lol.epub is unsafe", "container.xml declares XML entities")),
    ("epub-billion-laughs-opf", lambda t: docgen.make_epub_entity_bomb(t / "lol.epub"), (),
     error("lol.epub is unsafe", "content.opf declares XML entities")),
    # A chapter's internal DTD subset is dropped unread (old EPUBs declare &nbsp;
    # there): the bomb never goes off, and its reference stays as written.
    ("epub-billion-laughs-xhtml",
     lambda t: docgen.make_epub_entity_bomb(t / "lol.epub", "OEBPS/text/ch001.xhtml"), (),
     Reads("epub", len("One\n\n&lol9;"))),
    ("epub-external-entity",
     _epub_member("xxe.epub", "OEBPS/content.opf", lambda s: s.replace(
         "?>\n", '?>\n<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n', 1).replace(
         "A Test Book", "&x;")), (),
     error("xxe.epub is unsafe", "entities")),
    ("epub-opf-400k-elements",
     _epub_member("wide.epub", "OEBPS/content.opf", lambda s: s.replace(
         "</metadata>", "".join(f'<meta i="{i}"/>' for i in range(400_000)) + "</metadata>")), (),
     error("wide.epub is unsafe", "XML elements")),
    ("epub-no-spine", lambda t: docgen.make_epub_without_spine(t / "nospine.epub"), (),
     error("nospine.epub is damaged", "spine")),
    ("epub-truncated",
     lambda t: docgen.write_truncated(docgen.make_epub(t / "g.epub", [("One", "Text.")]),
                                      t / "cut.epub", 0.6), (),
     error("cut.epub")),
    ("epub-not-a-zip", _write("fake.epub", "hello, not a zip"), (), error("fake.epub")),
    ("zip-not-epub", lambda t: _zip(t / "archive.zip"), (), error("archive.zip", "not an EPUB")),
    # text and HTML
    ("text-latin-1", _write("latin1.txt", TEXT.encode("latin-1", "replace")), (),
     Reads("text", len(TEXT.strip()))),
    ("text-cp1252", _write("cp1252.txt", TEXT.encode("cp1252")), (),
     Reads("text", len(TEXT.strip()))),
    ("text-utf-16-bom", _write("u16.txt", TEXT.encode("utf-16")), (),
     Reads("text", len(TEXT.strip()))),
    ("text-utf-16-be-no-bom", _write("u16be.txt", TEXT.encode("utf-16-be")), (),
     Reads("text", len(TEXT.strip()))),
    ("text-utf-32-bom", _write("u32.txt", TEXT.encode("utf-32")), (),
     Reads("text", len(TEXT.strip()))),
    ("markdown-utf-8-bom", _write("notes.md", "\ufeff# Title\n\n" + TEXT), (),
     Reads("markdown", len(("# Title\n\n" + TEXT).strip()))),
    ("html-utf-16-no-bom",
     _write("wide.html", "<html><body><h1>Tête</h1><p>Ünïcode body.</p></body></html>"
            .encode("utf-16-le")), (),
     Reads("html", len("Tête\n\nÜnïcode body."))),
    ("html-unclosed-comment-33MiB",
     _write("open.html", "<html><body><p>hi</p><!-- " + "never closed " * 2_700_000), (),
     error("open.html has markup that never ends")),
    ("binary-named-txt", lambda t: docgen.make_binary_file(t / "data.txt"), (),
     error("data.txt looks like a binary file")),
    ("text-that-turns-binary",
     _write("mixed.txt", b"a readable line\n" * 2000 + bytes(range(256)) * 8), (),
     error("mixed.txt is not text", "NUL", "line 2,001")),
    ("empty-file", _write("empty.pdf", b""), (), error("empty.pdf is empty")),
    ("whitespace-only", _write("blank.txt", "\n  \n\t\n"), (), error("blank.txt has no text")),
    ("unknown-extension", _write("letter.docx", "plain words"), (),
     error("letter.docx", "unknown file type")),
    ("directory", lambda t: t, (), error("is a directory, not a book")),
    ("missing-path", lambda t: t / "nope.epub", (), error("nope.epub: no such file")),
    ("fifo", _fifo, (), error("pipe.txt is not a regular file")),
    ("dev-zero", lambda t: Path("/dev/zero"), (), error("zero is not a regular file")),
]
if os.geteuid() != 0:  # root reads anything
    CASES.append(("unreadable", _unreadable, (), error("locked.txt", "ermission denied")))


def _zip(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")
    return path


@pytest.mark.parametrize("make, args, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_info(tmp_path, make, args, expect):
    book = make(tmp_path)
    cache = tmp_path / "cache"
    p = run_cli("info", book, "--json", *args, timeout=TIMEOUT,
                env={"BOOKPOT_CACHE_DIR": str(cache), "BOOKPOT_DEBUG": "0"})
    if isinstance(expect, Error):
        check_one_line_error(p, expect.needles)
    else:
        assert p.returncode == 0, p.stderr[-2000:]
        assert "Traceback" not in p.stderr
        data = json.loads(p.stdout)
        assert data["format"] == expect.format, data
        assert data["characters"] == expect.characters, data
        assert data["tokens"] > 0
        if expect.pages is not None:
            assert data["pages"] == expect.pages
    check_cache_clean(cache)


# -- multi-GB text -----------------------------------------------------------------
def _vm_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_multi_gb_text_cli_streams(tmp_path):
    """``bookpot info`` on a 3 GiB file: RSS stays flat while it works through it.

    Only the first 64 MiB are text (the rest is a hole, so the test costs no
    disk); at ~1.2 MB/s of tokenizing the run never gets there in the time
    it is watched. Loading the file whole would show as gigabytes of RSS in
    the first seconds; streaming stays near the size of the tokenizer.
    """
    book = docgen.make_big_text(tmp_path / "huge.txt", 3 << 30, sparse_after=64 << 20)
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen([*BOOKPOT, "info", str(book), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            peak = max(peak, _vm_kib(proc.pid, "VmHWM"))
            time.sleep(0.2)
        running = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate(timeout=30)
    if not running:  # it got through 64 MiB after all: then it must stop at the hole
        assert proc.returncode == 2 and "not text" in err, (proc.returncode, err[-2000:])
    assert "Traceback" not in err
    assert 0 < peak < 400 * 1024, f"peak RSS {peak / 1024:.0f} MiB"


def test_gigabyte_text_reader_streams_to_the_end(tmp_path):
    """The text reader reads a real 1 GiB file to its last byte with a small, flat RSS."""
    mb = int(os.environ.get("BOOKPOT_BIG_TEXT_MB", "1024"))
    book = docgen.make_big_text(tmp_path / "gig.txt", mb << 20)
    script = textwrap.dedent("""
        import json, sys
        from bookpot.engine.readers import open_document
        chars = segments = 0
        longest = 0
        for seg in open_document(sys.argv[1]).segments():
            segments += 1
            chars += len(seg.text)
            longest = max(longest, len(seg.text))
            last = seg
        with open("/proc/self/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        print(json.dumps({"chars": chars, "segments": segments, "longest": longest,
                          "progress": last.progress, "line_end": last.locator.line_end,
                          "hwm_kib": hwm}))
    """)
    try:
        p = subprocess.run([sys.executable, "-c", script, str(book)], capture_output=True,
                           text=True, timeout=600, check=False)
        assert p.returncode == 0, p.stderr[-2000:]
        r = json.loads(p.stdout)
        assert r["chars"] == book.stat().st_size  # ASCII: every byte came out as a character
        assert r["longest"] <= 4000 and r["progress"] == pytest.approx(1.0)
        assert r["hwm_kib"] < 100 * 1024, f"peak RSS {r['hwm_kib'] / 1024:.0f} MiB for {mb} MiB"
    finally:
        book.unlink()


# -- a few runs with the real model ---------------------------------------------------
@pytest.mark.model
def test_ask_encrypted_pdf_with_its_password(tmp_path, model_path):
    book = docgen.make_pdf(tmp_path / "secret.pdf",
                           ["The pass key is 7231.", "Nothing else is written here."],
                           password="s3cret")
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")}
    p = run_cli("ask", book, "What is the pass key?", "--password", "s3cret", "--json",
                "--max-tokens", "16", timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    r = json.loads(p.stdout)
    assert r["stats"]["doc_tokens"] > 10  # the decrypted pages reached the model
    check_cache_clean(tmp_path / "cache")
    p = run_cli("ask", book, "q", "--password", "wrong", timeout=600, env=env)
    check_one_line_error(p, ["secret.pdf: wrong password"])


@pytest.mark.model
def test_ask_book_failing_half_way_leaves_a_clean_cache(tmp_path, model_path):
    """The reader fails after the model has begun reading the book: one line, exit 2,
    and the cache it leaves behind still serves the repaired book.

    Past the 8 KiB that ``open_document`` sniffs, the file turns binary; the
    text before is one short paragraph and blank lines (few tokens: prefill
    runs at ~40 tokens/s on this busy machine).
    """
    cache = tmp_path / "cache"
    env = {"BOOKPOT_CACHE_DIR": str(cache)}
    book = tmp_path / "notes.txt"
    good = "The lighthouse keeper counts ships every night.\n" + "\n" * 10_000
    book.write_bytes(good.encode() + b"\x00\x01 a binary tail" * 50)
    p = run_cli("ask", book, "What does the keeper count?", "-q", "--max-tokens", "8",
                timeout=600, env=env)
    check_one_line_error(p, ["notes.txt is not text", "NUL"])
    check_cache_clean(cache)
    book.write_text(good)  # repaired: same path, new content
    p = run_cli("ask", book, "What does the keeper count?", "--json", "--max-tokens", "8",
                timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert json.loads(p.stdout)["stats"]["doc_tokens"] > 5
    check_cache_clean(cache)


@pytest.mark.parametrize("question", ["", "   ", "?"])
def test_a_question_with_no_words_is_refused_before_any_model_work(tmp_path, question):
    """It used to run the model (39 s on a licence) and print a made-up line with quotes."""
    book = tmp_path / "book.txt"
    book.write_text("The lighthouse at Harrow Point was kept by Ada Brennan.\n" * 40)
    folder = tmp_path / "shelf"
    folder.mkdir()
    (folder / "a.txt").write_text(book.read_text())
    for where in (book, folder):
        p = run_cli("ask", where, question, "--cache-dir", tmp_path / "cache")
        assert p.returncode == 2, (where, p.stdout, p.stderr)
        assert p.stderr.strip() == "bookpot: the question has no words: type what you want to know"
        assert p.stdout == ""
    assert not (tmp_path / "cache").exists()  # nothing was read
