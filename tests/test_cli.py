"""The real CLI end to end, on the real default model."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, run_cli, run_json
from docgen import make_pdf
from passkey import QUESTION, keys, passkey_text
from plain_llama import plain_answers

SAMPLE = ROOT / "app" / "sample" / "sample.pdf"


def test_version():
    p = run_cli("--version")
    assert p.returncode == 0 and p.stdout.startswith("bookpot ")


@pytest.mark.model
def test_passkey_at_least_as_good_as_plain_llama(tmp_path, model_path):
    """~1.5K and ~6K-token pass-key documents, key at three depths."""
    docs = []
    for n in (1500, 6000):
        for depth, key in zip((0.1, 0.5, 0.9), keys(3, seed=n)):
            path = tmp_path / f"pk-{n}-{depth}.txt"
            path.write_text(passkey_text(n, depth, key))
            docs.append((path, key))
    ours = []
    for path, key in docs:
        r = run_json("ask", path, QUESTION, "--prompt-style", "completion", "--max-tokens", "16")
        assert r["stats"]["mode"] == "full"
        assert r["stats"]["doc_tokens"] > 1000
        ours.append(str(key) in r["answer"])
    theirs = [str(key) in a for (path, key), a in
              zip(docs, plain_answers(model_path, [p.read_text() + "\n" + QUESTION for p, _ in docs]))]
    print(f"bookpot {sum(ours)}/{len(ours)}  plain llama.cpp {sum(theirs)}/{len(theirs)}")
    assert sum(ours) >= sum(theirs)
    assert sum(ours) >= 3  # the model's measured ceiling here is 4-9 of 6-9


@pytest.mark.model
def test_ask_sample_pdf_cites_the_right_page(model_path):
    r = run_json("ask", SAMPLE, "What did the village give Ada Brennan after the storm? The village gave her")
    assert "compass" in r["answer"].lower()
    assert r["citations"][0]["page"] == "3"
    s = r["stats"]
    for key, kind in (("doc_tokens", int), ("peak_rss_bytes", int), ("ingest_tokens_per_s", float),
                      ("ttft_s", float), ("mode", str)):
        assert isinstance(s[key], kind), key
    assert s["doc_tokens"] > 300 and s["ttft_s"] > 0 and s["peak_rss_bytes"] > 50 * 2**20


@pytest.mark.model
def test_answer_stops_when_it_says_a_sentence_again(model_path):
    """The README's first question: the model names the keeper, then says
    "She was a widow, and she was the last keeper of Harrow Point." over
    and over (line breaks in different places) until the token limit."""
    question = "Who was the last keeper of Harrow Point? The last keeper was"
    r = run_json("ask", SAMPLE, question, "--max-tokens", "200")
    answer = r["answer"]
    assert "brennan" in answer.lower()
    sentences = [" ".join(s.split()).lower() for s in re.findall(r"[^.!?]*[.!?]+", answer)]
    assert len(sentences) == len(set(sentences)), answer
    assert r["stats"]["answer_tokens"] < 200


@pytest.mark.model
def test_ask_streams_plain_text_with_sources(model_path):
    p = run_cli("ask", SAMPLE, "How many steps did she climb? She climbed")
    assert p.returncode == 0, p.stderr
    assert "Sources: p." in p.stdout
    assert "Traceback" not in p.stderr


@pytest.mark.model
def test_info_counts_pages_and_tokens(model_path):
    r = run_json("info", SAMPLE)
    assert r["format"] == "pdf" and r["pages"] == 4
    assert 300 < r["tokens"] < 500 and r["fits_window"] is True


@pytest.mark.model
def test_epub_and_markdown_answers(tmp_path, model_path):
    from docgen import make_epub

    key = 48213
    text = passkey_text(800, 0.5, key)
    # The 135M model finds the key when its chapter is the whole book; a
    # chapter before it ("Opening ...") already derails it (measured), so
    # this checks the reader -> engine path, not the model's limits.
    epub = make_epub(tmp_path / "b.epub", [("The Key", text)])
    r = run_json("ask", epub, QUESTION, "--max-tokens", "12")
    assert str(key) in r["answer"]
    assert any("The Key" in c["locator"] for c in r["citations"])
    md = tmp_path / "b.md"
    md.write_text("# Notes\n\n" + text + "\n")
    assert str(key) in run_json("ask", md, QUESTION, "--max-tokens", "12")["answer"]


@pytest.mark.model
def test_truncate_and_streaming_modes_stay_in_window(tmp_path, model_path):
    path = tmp_path / "long.txt"
    path.write_text(passkey_text(3000, 0.95, 77777))
    for mode in ("truncate", "streaming"):
        r = run_json("ingest", path, "--mode", mode, "--pot-tokens", "512")
        assert r["mode"] == mode and r["evictions"] >= 2
        assert r["kept_tokens"] <= 512 and r["max_position"] < r["n_ctx"]


def _one_line_error(p, *needles):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("bookpot: "), p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_error_missing_file(tmp_path):
    _one_line_error(run_cli("ask", tmp_path / "nope.pdf", "q"), "nope.pdf")


def test_error_unknown_format(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(bytes(range(256)) * 40)
    _one_line_error(run_cli("ask", f, "q"))


def test_error_directory(tmp_path):
    _one_line_error(run_cli("info", tmp_path))


def test_error_empty_file(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("")
    _one_line_error(run_cli("ask", f, "q"), "empty")


def test_error_encrypted_pdf(tmp_path, model_path):
    f = make_pdf(tmp_path / "secret.pdf", ["The pass key is 12345."], password="hunter2")
    _one_line_error(run_cli("ask", f, "q"), "--password")
    _one_line_error(run_cli("ask", f, "q", "--password", "wrong"), "password")
    r = run_json("info", f, "--password", "hunter2")
    assert r["pages"] == 1 and r["tokens"] > 3


@pytest.mark.model
def test_error_pdf_without_text(tmp_path, model_path):
    f = make_pdf(tmp_path / "scan.pdf", ["", ""])
    _one_line_error(run_cli("ask", f, "q"), "OCR")


def test_error_missing_model(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("Some text.")
    _one_line_error(run_cli("ask", f, "q", "--model", tmp_path / "missing.gguf"), "missing.gguf")
    _one_line_error(run_cli("ask", f, "q", "--model", "no-such-model"), "unknown")


def test_error_corrupt_model(tmp_path, model_path):
    bad = tmp_path / "cut.gguf"
    with open(model_path, "rb") as src:
        bad.write_bytes(src.read(2_000_000))
    f = tmp_path / "a.txt"
    f.write_text("Some text.")
    _one_line_error(run_cli("ask", f, "q", "--model", bad), "truncated")


def test_error_bad_arguments():
    p = run_cli("ask")
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.startswith("bookpot: ")


def test_doctor_reports_plan_and_warns_on_low_cap(model_path):
    p = run_cli("doctor")
    assert p.returncode == 0, p.stderr
    for word in ("cpu", "memory", "disk", "native", "KV 23,040 B/token", "plan         pot"):
        assert word in p.stdout, word
    p = run_cli("doctor", "--ram-cap", "128M", "--threads", "64")
    assert "smallest that works" in p.stdout and "more than the" in p.stdout


@pytest.mark.model
def test_a_book_longer_than_the_plain_context_goes_into_the_bounded_pot(tmp_path, model_path):
    """Routing before reading: a ~9K-token book does not fit the context a 1G cap
    allows plain (7,680 without units), so it is read into the pot of at most 2,048 tokens, from its start."""
    doc = tmp_path / "long.txt"
    doc.write_text(passkey_text(9000, 0.5, 31337))
    s = run_json("ingest", doc, "--ram-cap", "1G", "--no-units", "--no-cache")
    assert s["mode"] == "pot" and s["pot_tokens"] == 2048 and s["distillations"] >= 6, s
    assert "books up to 7,680 tokens run plain" in s["plan"]
    assert s["n_ctx"] == 2048 + 512


def test_a_streamed_answer_prints_as_its_json_text_without_outer_blanks(capsys):
    """A completion answer starts with a space and may end with a line break;
    what is printed is the answer as --json gives it (stripped), inner
    spaces and line breaks kept."""
    from types import SimpleNamespace

    from bookpot.app.cli import _stream_answer

    pieces = [" ", " The keeper", " was", "\n", " Ada", " Brennan.", "\n", " "]
    answer = SimpleNamespace(answered=True, text="The keeper was\n Ada Brennan.")
    assert _stream_answer(iter(pieces), lambda: answer) is answer
    assert capsys.readouterr().out == "The keeper was\n Ada Brennan.\n"
