"""Several paths given, some unusable (``ask``, ``ingest``, ``summarize``).

A path given that does not exist, is no book or cannot be read is one line
on stderr; the other books are used, and the exit code is 1 (2 when no book
could be used). Files in a folder given that are no book type (a .png) are
not looked at, and a copy of a book used is one book, not a failure.

The fast tests run ``bookpot.app.cli.main`` with the model's part faked
(the collection, or the reading); the model tests run the real CLI on the
real default model and the sample PDF.
"""
from __future__ import annotations

import json
import os
import shutil
from types import SimpleNamespace

import pytest

from conftest import ROOT, run_cli

SAMPLE = ROOT / "app" / "sample" / "sample.pdf"
QUESTION = "What did the village give Ada Brennan after the storm?"


@pytest.fixture
def paths(tmp_path):
    """a.txt; shelf/ holding a copy of it and a picture; empty/; a missing PDF."""
    book = tmp_path / "a.txt"
    book.write_text("The keeper rang the bell at dawn.\n")
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copyfile(book, shelf / "copy.txt")
    (shelf / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n not a book")
    (tmp_path / "empty").mkdir()
    return SimpleNamespace(book=str(book), shelf=str(shelf), copy=str(shelf / "copy.txt"),
                           empty=str(tmp_path / "empty"), missing=str(tmp_path / "missing.pdf"))


class _FakeShelf:
    """engine.collection's Collection without the model: a path that is no
    file is skipped, a second file with the same text is a skipped copy."""

    def __init__(self, paths, options, *, on_skip, **_):
        self.paths, self.on_skip = paths, on_skip
        self.books, self.skipped, self.copies = [], [], []
        self.stats = {"indexed_now": 0}
        self.last_answer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def prepare(self, progress=None):
        texts = {}
        for p in self.paths:
            why = None
            if not os.path.isfile(p):
                why = "no such file"
            elif open(p).read() in texts:
                self.copies.append(p)
                why = f"the same text as {texts[open(p).read()]}"
            if why:
                self.skipped.append((p, why))
                self.on_skip(p, why)
            else:
                texts[open(p).read()] = p
                self.books.append(p)

    def ask(self, question, **_):
        self.last_answer = SimpleNamespace(text="None of these books seems to say.", answered=False, answer=None,
                                           book=None, book_name=None, citations=[], runners_up=[], stats={})
        return self.last_answer

    def ask_stream(self, question, **kw):
        self.ask(question)
        return iter(())


def _ask(monkeypatch, capsys, *args):
    import bookpot.engine.collection as collection
    from bookpot.app.cli import main

    monkeypatch.setattr(collection, "open_collection", _FakeShelf)
    code = main(["ask", *args, "Who rang the bell?", "-q"])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_ask_exits_1_when_a_path_given_cannot_be_used_and_lists_it_in_json(paths, monkeypatch, capsys):
    code, out, err = _ask(monkeypatch, capsys, paths.book, paths.missing, paths.empty, "--json")
    assert code == 1, err
    assert [s["book"] for s in json.loads(out)["skipped"]] == [paths.empty, paths.missing]
    assert [s["reason"] for s in json.loads(out)["skipped"]] == [
        "the folder holds no books (PDF, EPUB, .txt, .md, .html)", "no such file"]
    assert err == [f"bookpot: {paths.empty}: the folder holds no books (PDF, EPUB, .txt, .md, .html)",
                   f"bookpot: skipped {paths.missing}: no such file"]
    code, out, err = _ask(monkeypatch, capsys, paths.book, paths.missing)  # the printed answer: the same
    assert (code, out) == (1, "None of these books seems to say.\n") and len(err) == 1, err


def test_ask_over_a_folder_with_a_picture_and_a_copy_exits_0(paths, monkeypatch, capsys):
    code, out, err = _ask(monkeypatch, capsys, paths.book, paths.shelf, "--json")
    assert code == 0, err
    assert json.loads(out)["skipped"] == [{"book": paths.copy, "reason": f"the same text as {paths.book}"}]
    assert not any("cover.png" in line for line in err)


def test_ingest_reads_the_usable_books_and_exits_1(paths, monkeypatch, capsys):
    from bookpot.app import cli

    real_open = cli._open
    stats = SimpleNamespace(to_dict=lambda: {"doc_tokens": 9})
    read = []

    class FakeBook:
        def __enter__(self):
            return SimpleNamespace(stats=stats)

        def __exit__(self, *exc):
            return False

    def fake_open(args, question=None):  # a real book is faked; a missing one fails as it does
        return FakeBook() if args.book == paths.book else real_open(args, question)

    monkeypatch.setattr(cli, "_open", fake_open)
    monkeypatch.setattr(cli, "_read", lambda args, book: read.append(args.book))
    code = cli.main(["ingest", paths.missing, paths.book, paths.empty, "--json", "-q"])
    out, err = capsys.readouterr()
    assert code == 1 and read == [paths.book], err
    assert [json.loads(line) for line in out.splitlines()] == [{"doc_tokens": 9, "path": paths.book}]
    assert paths.missing in err and paths.empty in err and len(err.splitlines()) == 2, err


@pytest.mark.parametrize("command", ["ingest", "summarize"])
def test_no_usable_path_is_exit_2_with_one_line_each(paths, command, capsys):
    from bookpot.app.cli import main

    picture = os.path.join(paths.shelf, "cover.png")
    code = main([command, paths.missing, paths.empty, picture, "-q"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if not line.endswith("3 failed")]  # summarize counts them
    assert code == 2 and out == "" and len(lines) == 3, err
    assert all(line.startswith("bookpot: ") for line in lines) and "Traceback" not in err
    assert [n for n in ("missing.pdf", "empty", "cover.png") if any(n in line for line in lines)] == \
        ["missing.pdf", "empty", "cover.png"]


# --------------------------------------------------------------- with the model
@pytest.mark.model
def test_ask_answers_from_the_book_it_can_use_and_exits_1_for_a_missing_one(paths, tmp_path, model_path):
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")}
    p = run_cli("ask", SAMPLE, paths.missing, QUESTION, "--threads", "1", env=env)
    assert p.returncode == 1, p.stderr
    assert "compass" in p.stdout.lower() and "— sample.pdf, p. 3" in p.stdout, p.stdout
    assert f"bookpot: skipped {paths.missing}: no such file" in p.stderr.splitlines()
    assert "Traceback" not in p.stderr

    shutil.copyfile(SAMPLE, os.path.join(paths.shelf, "sample-copy.pdf"))
    p = run_cli("ask", SAMPLE, paths.shelf, paths.empty, QUESTION, "--json", "-q", "--threads", "1", env=env)
    assert p.returncode == 1, p.stderr
    r = json.loads(p.stdout)
    assert "compass" in r["answer"].lower() and r["book_name"] == "sample.pdf"
    assert [s["book"] for s in r["skipped"]] == [paths.empty, os.path.join(paths.shelf, "sample-copy.pdf")]

    p = run_cli("ask", SAMPLE, paths.shelf, QUESTION, "-q", "--threads", "1", env=env)
    assert p.returncode == 0 and "compass" in p.stdout.lower(), p.stderr  # a copy and a picture: no failure


@pytest.mark.model
def test_ingest_reads_the_book_and_exits_1_for_a_missing_one(paths, tmp_path, model_path):
    p = run_cli("ingest", SAMPLE, paths.missing, "--threads", "1", env={"BOOKPOT_CACHE_DIR": str(tmp_path / "c")})
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith(f"{SAMPLE}: ") and " tokens " in p.stdout, p.stdout
    assert p.stderr.splitlines() == [f"bookpot: {paths.missing}: no such file"], p.stderr
