"""Memory units and the book cache, end to end with the real model.

- Units bring back what the pot dropped (a key the recent window cannot
  hold), and the citation names the key's page of a generated PDF.
- A question leaves sequence 0 exactly as it was (cells and positions).
- Reopening a read book needs no prefill.
- SIGKILL during ingestion: the next run resumes and answers as an
  uninterrupted run does.
- A damaged unit file is detected and rebuilt; a damaged state file is
  detected and the book read again; a full disk is one clear error and
  the cache stays usable; two processes on one book both finish.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BOOKPOT, run_cli
from docgen import make_pdf
from passkey import FILLER, QUESTION

pytestmark = pytest.mark.model

KEY = 61729
SMALL_KEY = 40917
# --read first: these tests are about reading (units saved while the window slides, checkpoints)
STREAM = ["--mode", "streaming", "--pot-tokens", "512", "--max-tokens", "12", "--threads", "2", "--read", "first"]


def passkey_pages(n_tokens: int, depth: float, key: int, blocks_per_page: int = 24) -> tuple[list[str], int]:
    """Pass-key text cut into pages at block boundaries; returns (pages, key page index)."""
    n_blocks = n_tokens // 25
    at = round(depth * n_blocks)
    blocks = [FILLER] * n_blocks
    blocks.insert(at, f"The pass key is {key}. Remember it. {key} is the pass key.")
    pages = [" ".join(blocks[i : i + blocks_per_page]) for i in range(0, len(blocks), blocks_per_page)]
    return pages, at // blocks_per_page


def ask(book, *extra, cache: Path, timeout=1500, env=None) -> tuple[dict, subprocess.CompletedProcess]:
    p = run_cli("ask", book, QUESTION, *STREAM, *extra, "--json", timeout=timeout,
                env={"BOOKPOT_CACHE_DIR": str(cache), **(env or {})})
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout), p


@pytest.fixture(scope="module")
def pdf_book(tmp_path_factory):
    d = tmp_path_factory.mktemp("units-pdf")
    pages, key_page = passkey_pages(12000, 0.10, KEY)
    return make_pdf(d / "passkey.pdf", pages), key_page, d / "cache"


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    d = tmp_path_factory.mktemp("units-small")
    pages, _ = passkey_pages(3600, 0.10, SMALL_KEY, blocks_per_page=1000)
    path = d / "small.txt"
    path.write_text(pages[0])
    return path


@pytest.fixture(scope="module")
def small_reference(small_book, tmp_path_factory):
    """An uninterrupted run on the small book, in its own cache."""
    out, _ = ask(small_book, cache=tmp_path_factory.mktemp("ref-cache"))
    assert str(SMALL_KEY) in out["answer"], out
    return out


def test_units_recall_what_the_window_dropped_and_cite_its_page(pdf_book):
    book, key_page, cache = pdf_book
    with_units, _ = ask(book, cache=cache)
    without, _ = ask(book, "--no-units", cache=cache)
    st = with_units["stats"]
    assert st["doc_tokens"] > 10000 and st["evictions"] > 5 and st["units"] > 50
    assert str(KEY) in with_units["answer"], with_units
    assert str(KEY) not in without["answer"], without  # the recent window alone cannot know it
    assert without["stats"]["units"] == 0
    first = with_units["citations"][0]
    assert first["source"] == "unit" and first["page"] == str(key_page + 1), with_units["citations"]
    assert st["max_position"] < st["n_ctx"]


def test_reopening_a_read_book_needs_no_prefill(pdf_book):
    book, key_page, cache = pdf_book
    out, p = ask(book, cache=cache)
    st = out["stats"]
    assert st["cached"] is True and str(KEY) in out["answer"]
    assert out["citations"][0]["page"] == str(key_page + 1)
    # no prefill of ~12K tokens: only the question, its prompt and the answer are decoded
    assert 0 < st["decoded_tokens"] < 300 < st["doc_tokens"], st


def test_a_damaged_unit_file_is_detected_and_rebuilt(pdf_book):
    book, key_page, cache = pdf_book
    files = sorted(cache.glob("books/*/units/units/u*.kv"))
    assert len(files) > 50
    for f in files:  # flip bytes inside every unit's KV
        data = bytearray(f.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        f.write_bytes(bytes(data))
    out, _ = ask(book, cache=cache)
    loaded = out["stats"]["units_loaded"]
    assert loaded and all(u["how"] == "rebuilt" for u in loaded), loaded
    assert str(KEY) in out["answer"]
    again, _ = ask(book, cache=cache)
    assert all(u["how"] == "disk" for u in again["stats"]["units_loaded"])
    assert again["answer"] == out["answer"]


def test_a_question_leaves_the_pot_exactly_as_it_was(model_path, small_book, tmp_path):
    import numpy as np

    from bookpot.engine.llm import Model
    from bookpot.engine.readers import open_document
    from bookpot.engine.session import Session
    from bookpot.engine.units import UnitConfig

    model = Model(model_path)
    s = Session(model, mode="streaming", n_ctx=1024, n_batch=256, units=UnitConfig(k=4), units_dir=tmp_path)
    s.ingest(open_document(small_book).segments())
    assert s.stats.evictions > 0 and s.stats.units > 10
    cells0, pos0 = s.ctx.cells.cells_of(0)
    before = (cells0.copy(), pos0.copy(), s.ctx.pos_min(0), s.ctx.pos_max(0), list(s.kept.tokens))
    a1 = s.ask(QUESTION, max_tokens=10)
    assert 1 <= len(s.stats.units_loaded) <= 4
    cells1, pos1 = s.ctx.cells.cells_of(0)
    assert np.array_equal(before[0], cells1) and np.array_equal(before[1], pos1)
    assert (s.ctx.pos_min(0), s.ctx.pos_max(0)) == before[2:4]
    assert s.ctx.pos_max(1) == -1  # the scratch sequence is empty
    assert list(s.kept.tokens) == before[4]
    a2 = s.ask(QUESTION, max_tokens=10)
    assert a2.text == a1.text and str(SMALL_KEY) in a1.text
    s.close()


def _manifest_tokens(cache: Path) -> int:
    for m in cache.glob("books/*/manifest.json"):
        try:
            return json.loads(m.read_text()).get("doc_tokens", 0)
        except ValueError:
            return 0
    return 0


def test_sigkill_during_ingestion_resumes_and_answers_the_same(small_book, small_reference, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(cache), BOOKPOT_CHECKPOINT_S="0")
    proc = subprocess.Popen([*BOOKPOT, "ask", str(small_book), QUESTION, *STREAM, "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900
    while _manifest_tokens(cache) < 1200 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "ingestion ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _manifest_tokens(cache)
    assert killed_at >= 1200
    out, p = ask(small_book, cache=cache)
    assert "resuming after" in p.stderr
    assert out["stats"]["resumed_from_tokens"] >= killed_at
    assert out["stats"]["doc_tokens"] == small_reference["stats"]["doc_tokens"]
    assert out["answer"] == small_reference["answer"]
    assert [u["unit"] for u in out["stats"]["units_loaded"]] == \
        [u["unit"] for u in small_reference["stats"]["units_loaded"]]


def test_a_damaged_state_file_is_detected_and_the_book_read_again(small_book, small_reference, tmp_path):
    cache = tmp_path / "cache"
    ask(small_book, cache=cache)
    (state,) = cache.glob("books/*/state.bin")
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    out, p = ask(small_book, cache=cache)
    assert "damaged" in p.stderr and out["stats"]["cached"] is False
    assert out["answer"] == small_reference["answer"]


def _limit_file_size(limit: int):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_a_full_disk_is_one_clear_error_and_the_cache_stays_usable(small_book, small_reference, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(cache))
    p = subprocess.run([*BOOKPOT, "ask", str(small_book), QUESTION, *STREAM, "--json"], env=env,
                       capture_output=True, text=True, timeout=1500, preexec_fn=_limit_file_size(4 << 20))
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bookpot: ") and "Traceback" not in p.stderr
    assert "too large" in lines[0] or "space" in lines[0]
    assert not list(cache.rglob("*.tmp"))  # no half-written file left behind
    out, _ = ask(small_book, cache=cache)
    assert out["answer"] == small_reference["answer"]


def test_two_processes_on_one_book_both_finish(small_book, small_reference, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(cache))
    cmd = [*BOOKPOT, "ask", str(small_book), QUESTION, *STREAM, "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=1500) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    answers = [json.loads(o[0])["answer"] for o in outs]
    assert answers == [small_reference["answer"]] * 2
    assert any("waiting" in o[1] for o in outs)
    assert sum(json.loads(o[0])["stats"]["cached"] for o in outs) == 1  # the second reused the first's work
    listing = run_cli("cache", "list", "--json", env={"BOOKPOT_CACHE_DIR": str(cache)})
    books = json.loads(listing.stdout)
    assert len(books) == 1 and books[0]["status"] == "ready"
    cleared = run_cli("cache", "clear", small_book, env={"BOOKPOT_CACHE_DIR": str(cache)})
    assert cleared.returncode == 0 and "removed 1" in cleared.stdout
    assert json.loads(run_cli("cache", "list", "--json",
                              env={"BOOKPOT_CACHE_DIR": str(cache)}).stdout) == []
