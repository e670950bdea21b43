"""``bookpot text`` (what bookpot reads), ``bookpot info`` (cache state,
chapters, warnings) and the options every book or model command shares,
through the real CLI."""
from __future__ import annotations

import json
from pathlib import Path

import docgen
import pytest
from bookpot.engine.readers import open_document
from conftest import ROOT, run_cli

SAMPLE = ROOT / "app" / "sample" / "sample.pdf"
CASES = Path(__file__).parent / "fixtures" / "readers"


def one_line_error(p, *parts) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err.startswith("bookpot: ") and "\n" not in err and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


def json_lines(p) -> list[dict]:
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_text_of_the_sample_pdf_is_what_the_reader_gives():
    segs = list(open_document(SAMPLE).segments())
    assert len(segs) == 4
    p = run_cli("text", SAMPLE)
    assert p.returncode == 0, p.stderr
    expected = "\n".join(f"--- {s.locator} ---\n{s.text}\n" for s in segs)
    assert p.stdout == expected
    rows = json_lines(run_cli("text", SAMPLE, "--json"))
    assert [r["text"] for r in rows] == [s.text for s in segs]
    assert [(r["page"], r["page_index"], r["locator"]) for r in rows] == [
        (s.locator.page, s.locator.page_index, str(s.locator)) for s in segs]
    assert [r["progress"] for r in rows] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    page2 = json_lines(run_cli("text", SAMPLE, "--json", "--page", "2"))
    assert [r["page_index"] for r in page2] == [1] and page2[0]["text"] == segs[1].text
    one_line_error(run_cli("text", SAMPLE, "--page", "99"), "no page 99", "4 pages")


def test_text_pages_by_label_then_by_physical_number():
    book = CASES / "pdf-page-labels-restart.pdf"
    rows = json_lines(run_cli("text", book, "--json", "--page", "1"))
    assert [(r["locator"], r["text"]) for r in rows] == [
        ("p. 1 (page 1 of 4)", "Report: the west bridge needs new cables."),
        ("p. 1 (page 3 of 4)", "Annex: the east bridge was inspected in March.")]
    p = run_cli("text", book, "--page", "3")  # no page is labelled 3: the third page
    assert p.returncode == 0 and p.stdout == (
        "--- p. 1 (page 3 of 4) ---\nAnnex: the east bridge was inspected in March.\n")


def test_text_of_an_epub_by_chapter():
    book = CASES / "epub-three-chapters-one-file.epub"
    rows = json_lines(run_cli("text", book, "--json"))
    assert [(r["chapter"], r["text"]) for r in rows] == [
        ("I. The Harbour", "I. The Harbour\n\nThe harbour froze in the first week of winter."),
        ("II. The Storm", "II. The Storm\n\nA storm broke the northern pier into pieces."),
        ("III. The Thaw", "III. The Thaw\n\nIn spring the thaw brought the fishing boats back.")]
    for name in ("ii. the STORM", "Storm"):  # exact without case, else contained
        p = run_cli("text", book, "--chapter", name)
        assert p.returncode == 0 and p.stdout == (
            "--- “II. The Storm” ---\nII. The Storm\n\nA storm broke the northern pier into pieces.\n")
    one_line_error(run_cli("text", book, "--chapter", "Winter"), "'Winter'", "“III. The Thaw”")
    one_line_error(run_cli("text", book, "--page", "1"), "has no pages", "epub")


def test_text_of_markdown_shows_lines_and_chapters():
    book = CASES / "markdown-mixed-fences.md"
    rows = json_lines(run_cli("text", book, "--json"))
    assert [(r["chapter"], r["line_start"], r["line_end"]) for r in rows] == [
        ("Install", 1, 9), ("Configure", 11, 21), ("Run", 23, 25)]
    assert "".join(r["text"] for r in rows) == book.read_text()
    p = run_cli("text", book, "--chapter", "run")
    assert p.returncode == 0 and p.stdout.startswith("--- “Run”, lines 23–25 ---\n# Run\n")


def test_text_warnings_go_to_stderr_after_the_text(tmp_path):
    files = docgen.epub_files([("One", "Alpha."), ("Two", "Beta.")])
    files["OEBPS/content.opf"] = files["OEBPS/content.opf"].replace(
        "<manifest>", '<manifest>\n<item id="img" href="plate.png" media-type="image/png"/>').replace(
        "<spine>", '<spine>\n<itemref idref="img"/>')
    files["OEBPS/plate.png"] = b"\x89PNG"
    p = run_cli("text", docgen.write_epub_files(tmp_path / "plate.epub", files))
    assert p.returncode == 0
    assert p.stdout == "--- “One” ---\nOne\n\nAlpha.\n\n--- “Two” ---\nTwo\n\nBeta.\n"
    assert p.stderr == ("bookpot: warning: skipped OEBPS/plate.png in the reading order: "
                        "image/png is not text\n")


def test_text_errors_are_one_line(tmp_path):
    one_line_error(run_cli("text", tmp_path / "nope.pdf"), "no such file")
    scan = docgen.make_pdf(tmp_path / "scan.pdf", ["", ""])
    one_line_error(run_cli("text", scan), "OCR")


def test_text_into_a_closed_pipe_is_quiet():
    import subprocess

    from conftest import BOOKPOT

    p = subprocess.run(" ".join([*BOOKPOT, "text", str(CASES / "markdown-mixed-fences.md"), "| head -1"]),
                       shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert p.stdout == "--- “Install”, lines 1–9 ---\n" and p.stderr == ""


# -- info: chapters, warnings, cache -----------------------------------------------
@pytest.mark.model
def test_info_lists_markdown_and_html_chapters_and_reading_warnings(tmp_path, model_path):
    md = json.loads(run_cli("info", CASES / "markdown-mixed-fences.md", "--json").stdout)
    assert md["chapters"] == ["Install", "Configure", "Run"] and md["warnings"] == []
    page = tmp_path / "p.html"
    page.write_text("<html><body><h1>Alpha</h1><p>a</p><h2>Beta</h2><p>b</p></body></html>")
    assert json.loads(run_cli("info", page, "--json").stdout)["chapters"] == ["Alpha", "Beta"]
    noise = tmp_path / "noise.txt"
    noise.write_bytes(b"Header\n" + bytes(range(0x80, 0x100)) * 4 + b"\n")
    r = json.loads(run_cli("info", noise, "--json").stdout)
    assert "guessed" in r["warnings"][0] or "could not be recognised" in r["warnings"][0]
    holes = docgen.make_pdf(tmp_path / "holes.pdf", ["one", "", "three"])
    p = run_cli("info", holes)
    assert p.returncode == 0
    assert "  warning     1 of 3 pages have no text (blank, or images only: scanned?): p. 2\n" in p.stdout


def _fake_state(cache: Path, book: Path, model_path: Path, status: str, progress: float) -> None:
    from bookpot.engine.bookcache import model_id
    from bookpot.engine.store import document_hash

    d = cache / "books" / f"fake-{status}"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({
        "key": d.name, "status": status, "progress": progress, "model": model_id(model_path),
        "document": {"path": str(book), "hash": document_hash(book)}, "doc_tokens": 10}))


@pytest.mark.model
def test_info_shows_the_real_cache_state(tmp_path, model_path):
    cache = tmp_path / "cache"
    book = tmp_path / "book.txt"  # small: the real model reads it in a second
    book.write_text("The lighthouse keeper counted the ships that passed.\n")

    def state() -> str:
        p = run_cli("info", book, "--json", "--cache-dir", cache)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["cache"]

    assert state() == "not read"
    _fake_state(cache, book, model_path, "ingesting", 0.42)
    assert state() == "42%"
    p = run_cli("ingest", book, "--cache-dir", cache, "-q", "--no-units")
    assert p.returncode == 0, p.stderr
    assert state() == "ready"
    listed = run_cli("cache", "list", "--cache-dir", cache).stdout
    assert "ready" in listed
    p = run_cli("info", book, "--cache-dir", cache)
    assert "  cache       ready\n" in p.stdout
    other = tmp_path / "other-cache"
    assert run_cli("info", book, "--json", "--cache-dir", other).returncode == 0
    assert not (other / "books").exists()  # info reads the cache, never writes it


# -- the options every book or model command takes ----------------------------------
SHARED = ["--model", "smollm2-135m", "--cache-dir", "/tmp/x", "--threads", "2", "--ram-cap", "512M",
          "--prompt-style", "chat"]


@pytest.mark.parametrize("command", [["ask", "b.pdf", "q"], ["ingest", "b.pdf"], ["summarize", "b.pdf"],
                                     ["info", "b.pdf"], ["text", "b.pdf"], ["open", "b.pdf"], ["open"],
                                     ["doctor"]])
def test_every_book_or_model_command_takes_the_shared_options(monkeypatch, command):
    from bookpot.app.cli import build_parser

    monkeypatch.setenv("BOOKPOT_CACHE_DIR", "/tmp/restored-after-the-test")
    args = build_parser().parse_args([*command, *SHARED])
    assert (args.model, args.cache_dir, args.threads, args.ram_cap, args.prompt_style) == (
        "smollm2-135m", "/tmp/x", 2, "512M", "chat")


def test_open_hands_its_cache_dir_to_the_reader(monkeypatch):
    """The TUI finds its cache by $BOOKPOT_CACHE_DIR: `open --cache-dir` sets it."""
    import os

    from bookpot.app.cli import build_parser
    from bookpot.engine.store import cache_root

    monkeypatch.setenv("BOOKPOT_CACHE_DIR", "/tmp/before")
    build_parser().parse_args(["open", "--cache-dir", "/tmp/chosen"])
    assert os.environ["BOOKPOT_CACHE_DIR"] == "/tmp/chosen" and str(cache_root()) == "/tmp/chosen"
