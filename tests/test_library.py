"""Asking a collection of books (issue #24 part 1): engine/collection.py and ``bookpot ask PATH...``.

The fast tests hold the top list, the merged index and the folder
expansion; the model tests (real default model, real PDF/EPUB/TXT books of
GNU-manual prose from tests/natural.py, one corrupt PDF) ask a folder a
question whose fact is in its third book.
"""
from __future__ import annotations

import json
import os
import random

import pytest

import natural
from conftest import run_cli, run_json


# --------------------------------------------------------------- top list
def test_the_top_list_keeps_the_best_hits_and_each_best_books_best_hit():
    from bookpot.engine.collection import Hit, TopList

    rng = random.Random(7)
    every = {b: [(uid, rng.uniform(0, 20)) for uid in range(rng.randint(0, 30))] for b in range(40)}
    top = TopList(k=8, books=4)
    for b, ranked in every.items():
        top.add(b, ranked)
        assert len(top._hits) <= 8 and len(top._books) <= 4  # bounded whatever the number of books
    flat = sorted(((s, b, u) for b, r in every.items() for u, s in r), reverse=True)
    assert [(h.score, h.book, h.uid) for h in top.hits()] == flat[:8]
    best = {}
    for s, b, u in flat:
        best.setdefault(b, Hit(s, b, u))
    assert top.books() == sorted(best.values(), reverse=True)[:4]
    assert top.books()[0] == top.hits()[0]


def test_the_top_list_breaks_ties_toward_the_first_book_and_keeps_a_books_best_when_fed_twice():
    from bookpot.engine.collection import TopList

    top = TopList(k=2, books=2)
    top.add(0, [(5, 1.0)])
    top.add(1, [(3, 1.0)])
    top.add(2, [(1, 1.0)])
    assert [(h.book, h.uid) for h in top.hits()] == [(0, 5), (1, 3)]
    merged = TopList(k=4, books=2)  # the merged index gives one unit at a time
    for b, uid, s in [(3, 1, 2.0), (4, 9, 1.5), (3, 2, 5.0), (4, 8, 0.5), (5, 1, 1.0)]:
        merged.add(b, [(uid, s)])
    assert [(h.book, h.uid, h.score) for h in merged.books()] == [(3, 2, 5.0), (4, 9, 1.5)]
    empty = TopList()
    empty.add(0, [])
    assert empty.hits() == [] and empty.books() == []


def _index(path, units: list[str]):
    """A lexicon file holding a finished text pass's word index of ``units``."""
    from bookpot.engine.lexicon import Lexicon
    from bookpot.engine.textpass import TextIndex

    lex = Lexicon(path)
    text = TextIndex(lex)
    text.begin({"units": units})  # another signature: the rows of an earlier index go
    lex.begin()
    lex.db.executemany("INSERT INTO tp_fts(rowid, text) VALUES (?, ?)", list(enumerate(units)))
    text._checkpoint(dict(text.meta(), units=len(units), done=True))
    lex.close()


def test_the_merged_index_ranks_units_of_every_book_by_one_bm25(tmp_path):
    from bookpot.engine.collection import Merged, Shelved, TopList
    from bookpot.engine.lexicon import Lexicon

    prose = ["the sort command orders lines of text files", "grep prints lines that match patterns",
             "sed edits streams of text", "find walks a directory tree"]
    books = []
    for b in range(3):
        units = [prose[(b + i) % 4] for i in range(6)]
        if b == 1:
            units[4] = "the silver compass was made by a clockmaker named Tobias Fenwick"
        path = tmp_path / f"b{b}.sqlite"
        _index(path, units)
        books.append(Shelved(f"b{b}.txt", str(path), "tp_fts", len(units)))
    words = ["silver", "compass", "made", "lines"]
    merged = Merged(tmp_path / "library", books)
    top = TopList()
    for b, ranked in merged.search(words, 32):
        top.add(b, ranked)
    merged.close()
    assert (top.hits()[0].book, top.hits()[0].uid) == (1, 4)
    each = TopList()
    for b, book in enumerate(books):
        lex = Lexicon(book.lexicon)
        each.add(b, lex.search(words, 8, below=book.below, table="tp_fts"))
        lex.close()
    assert (each.hits()[0].book, each.hits()[0].uid) == (1, 4)
    assert {h.book for h in top.books()} == {h.book for h in each.books()} == {0, 1, 2}
    # a book whose index changed is copied again, the others stay
    _index(tmp_path / "b0.sqlite", ["nothing about compasses here"] * 2)
    books[0] = Shelved("b0.txt", str(tmp_path / "b0.sqlite"), "tp_fts", 2)
    again = Merged(tmp_path / "library", books)
    n = again.db.execute("SELECT count(*) FROM units").fetchone()[0]
    found = list(again.search(["lines"], 32))
    again.close()
    assert n == 2 + 6 + 6 and all(b != 0 for b, _ in found)


def test_merged_indexes_of_books_gone_from_the_cache_are_removed(tmp_path):
    """A merged index naming a book index no longer on disk (the book changed,
    or its cache was cleared) is a copy of text nobody can query: the next
    merged lookup removes it; one whose books are all there stays."""
    from bookpot.engine import bookcache
    from bookpot.engine.collection import Merged, Shelved

    books = []
    for b in range(3):
        path = tmp_path / f"b{b}.sqlite"
        _index(path, [f"unit {i} of book {b} about lighthouses" for i in range(4)])
        books.append(Shelved(f"b{b}.txt", str(path), "tp_fts", 4))
    root = tmp_path / "cache" / "library"
    for pair in (books[:2], books[1:]):
        Merged(root, pair).close()
    assert len(list(root.glob("merged-*.sqlite"))) == 2
    (tmp_path / "b0.sqlite").unlink()  # the first pair's first book: its cache was cleared
    Merged(root, books[1:]).close()
    [left] = root.glob("merged-*.sqlite")
    assert {p.name for p in root.glob("merged-*")} <= {left.name, f"{left.name}-wal", f"{left.name}-shm"}
    Merged(root, books[1:]).close()
    assert list(root.glob("merged-*.sqlite")) == [left]  # its books are there: it stays
    # beyond the last MERGED_KEPT used, the oldest go
    from bookpot.engine.collection import prune_merged

    Merged(root, books[1:2]).close()
    Merged(root, books[2:]).close()
    newest = root / "merged-newest.sqlite"
    sorted(root.glob("merged-*.sqlite"))[0].rename(newest)
    os.utime(newest, (2e9, 2e9))  # last used: in the future
    assert len(list(root.glob("merged-*.sqlite"))) == 3
    assert prune_merged(root, kept=1) == 2
    assert list(root.glob("merged-*.sqlite")) == [newest]
    # clearing the whole cache takes the library's files with it
    bookcache.clear(tmp_path / "cache")
    assert not root.exists()


def test_folders_expand_recursively_only_when_asked(tmp_path):
    from bookpot.app.summarize import expand_books

    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "sub" / "deeper" / "c.epub").write_bytes(b"PK")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.txt").write_text("d")
    flat = [p for p, e in expand_books([str(tmp_path)]) if e is None]
    deep = [p for p, e in expand_books([str(tmp_path)], recursive=True) if e is None]
    assert flat == [str(tmp_path / "a.txt")]
    assert deep == [str(tmp_path / "a.txt"), str(tmp_path / "sub" / "b.pdf"),
                    str(tmp_path / "sub" / "deeper" / "c.epub")]


def test_a_collection_without_units_or_cache_is_refused_in_one_line():
    from bookpot.engine import Options, open_collection
    from bookpot.engine.errors import BookpotError

    for opts in (Options(use_units=False), Options(mode="full"), Options(cache=False), Options(catalyst="question")):
        with pytest.raises(BookpotError):
            open_collection(["a.txt", "b.txt"], opts)
    with pytest.raises(BookpotError):
        open_collection([], Options())


def test_the_question_may_follow_an_option_after_several_books():
    """`ask A B --json "q"`: the words after the option are the rest of PATH... QUESTION."""
    p = run_cli("ask", "/nonexistent/a.txt", "/nonexistent/b.txt", "-q", "why?")
    assert p.returncode == 2 and "unrecognized" not in p.stderr
    assert p.stderr.strip().splitlines()[-1] == "bookpot: none of the 2 book(s) could be used", p.stderr
    assert "Traceback" not in p.stderr


# ---------------------------------------------------------- with the model
FACT = "F17"  # "Who drew the map of the salt caves?"
FORMATS = ["txt", "epub", "pdf", "txt"]  # the fact is in the third book, a PDF


@pytest.fixture(scope="module")
def shelf(tmp_path_factory):
    d = tmp_path_factory.mktemp("library")
    folder = d / "books"
    n_paras = len(natural.prose())
    docs = []
    for i, fmt in enumerate(FORMATS):
        doc = natural.build(3000, [FACT] if i == 2 else [], fmt, offset=i * n_paras // 4, name=f"{i + 1}-book")
        docs.append((doc.write(folder), doc))
    (folder / "0-broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n")
    return folder, docs, {"BOOKPOT_CACHE_DIR": str(d / "cache")}


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_a_folder_answers_from_the_book_holding_the_fact_with_its_page(shelf):
    folder, docs, env = shelf
    fact = natural.BY_ID[FACT]
    path, doc = docs[2]
    p = run_cli("ask", folder, fact.question, "-q", "--json", "--threads", "1", env=env)
    assert p.returncode == 1, p.stderr  # the broken PDF could not be used
    r = json.loads(p.stdout)
    assert r["book"] == str(path) and r["book_name"] == path.name, (r["book"], r["runners_up"])
    assert [s["book"] for s in r["skipped"]] == [str(folder / "0-broken.pdf")] and r["skipped"][0]["reason"]
    quotes = [c for c in r["citations"] if "quote" in c]
    assert quotes and all(c["book"] == str(path) for c in r["citations"])
    q = next((c for c in quotes if natural.holds_evidence(fact, c["quote"])), None)
    assert q is not None, quotes
    pages = natural.pages_by_locator(path)
    assert pages[q["locator"]][q["start"]:q["end"]] == q["quote"]  # verbatim, from that page
    placed = next(pl for pl in doc.placed if pl.fact == FACT)
    assert q["page"] == str(placed.page + 1), (q, placed)
    assert r["collection"]["usable"] == 4 and r["collection"]["skipped"] == 1
    assert all(x["book"] != str(path) and x["passage"]["text"] for x in r["runners_up"])
    assert r["stats"]["doc_tokens"] == 0 < r["stats"]["book_tokens"]  # answered from the index, nothing read


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_the_text_output_names_each_quotes_book_and_the_skipped_file(shelf):
    folder, docs, env = shelf
    path = docs[2][0]
    books = [str(p) for p, _ in docs] + [str(folder / "0-broken.pdf")]
    p = run_cli("ask", *books, natural.BY_ID[FACT].question, "--threads", "1", env=env)
    assert p.returncode == 1, p.stderr  # answered; the broken PDF named could not be used
    quotes = [ln for ln in p.stdout.splitlines() if ln.startswith("> ")]
    assert quotes and all(f"— {path.name}, p. " in ln for ln in quotes), p.stdout
    skipped = [ln for ln in p.stderr.splitlines() if "0-broken.pdf" in ln]
    assert len(skipped) == 1 and skipped[0].startswith("bookpot: skipped "), p.stderr
    assert "Traceback" not in p.stderr
    assert f"answered from {path.name}" in p.stderr


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_one_book_asks_as_before(shelf):
    folder, docs, env = shelf
    path = docs[2][0]
    r = run_json("ask", path, natural.BY_ID[FACT].question, "-q", "--threads", "1", env=env)
    assert set(r) == {"answer", "answered", "stem", "model_text", "citations", "passages", "read_whole",
                      "from_unread", "stats"}
    assert r["citations"] and not any("book" in c for c in r["citations"])
    p = run_cli("ask", path, natural.BY_ID[FACT].question, "-q", "--threads", "1", env=env)
    quotes = [ln for ln in p.stdout.splitlines() if ln.startswith("> ")]
    assert p.returncode == 0 and quotes and all(path.name not in ln for ln in quotes), p.stdout


@pytest.mark.model
def test_no_usable_book_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"not a pdf at all")
    (tmp_path / "b.epub").write_bytes(b"PK\x03\x04 broken")
    p = run_cli("ask", tmp_path, "What is it?", "-q", env={"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1] == "bookpot: none of the 2 book(s) could be used", lines
    assert sum(ln.startswith("bookpot: skipped ") for ln in lines) == 2, lines


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_indexing_stopped_midway_says_so_and_the_next_run_finishes_it(shelf, tmp_path):
    from bookpot.engine import Options, open_collection
    from bookpot.engine.errors import BookpotError

    folder, docs, _ = shelf
    paths = [str(p) for p, _ in docs]
    opts = Options(threads=1, cache_dir=str(tmp_path / "cache"))
    seen = []
    with open_collection(paths, opts) as c:
        with pytest.raises(BookpotError, match="stopped"):
            c.prepare(progress=lambda i, n, p, f: seen.append(i), cancel=lambda: len(seen) > 0 and seen[-1] >= 1)
        assert not c.skipped  # a stop is no book's fault
        c.prepare()
        assert [b.path for b in c.books] == paths and c.stats["indexed_now"] >= 3, c.stats
    with open_collection(paths, opts) as again:
        again.prepare()
        assert again.stats["indexed_now"] == 0  # the shelf knows every index now


# ------------------------------------------------------------------ the TUI
def test_asking_an_empty_library_says_so_and_stays_on_the_library(tmp_path, monkeypatch):
    import asyncio

    from bookpot.app.config import Settings
    from bookpot.app.library import Library
    from bookpot.app.tui.app import BookpotApp
    from bookpot.app.tui.library import LibraryScreen

    monkeypatch.setenv("BOOKPOT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BOOKPOT_DATA_DIR", str(tmp_path / "data"))
    lib = Library()
    lib.touch(str(tmp_path / "gone.pdf"), title="gone", format="pdf")  # in the library, not on disk

    async def go():
        app = BookpotApp(settings=Settings(threads=1), library=lib)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+f")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            assert any("no books on disk" in n.message for n in app._notifications)

    asyncio.run(go())


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_the_tui_asks_the_library_and_a_quote_opens_its_book_at_that_page(shelf, tmp_path, monkeypatch):
    import asyncio
    import os
    import time

    from bookpot.app.config import Settings
    from bookpot.app.library import Library
    from bookpot.app.tui.app import BookpotApp
    from bookpot.app.tui.askall import AskLibraryScreen, BookQuoteLink
    from bookpot.app.tui.booktext import BookText
    from bookpot.app.tui.reader import ReaderScreen

    folder, docs, env = shelf
    monkeypatch.setenv("BOOKPOT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BOOKPOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BOOKPOT_CACHE_DIR", env["BOOKPOT_CACHE_DIR"])
    lib = Library()
    for p in [folder / "0-broken.pdf", *(p for p, _ in docs)]:
        lib.touch(str(p), title=p.name, format=p.suffix[1:], state="new")
    fact = natural.BY_ID[FACT]
    path, doc = docs[2]
    page = next(pl for pl in doc.placed if pl.fact == FACT).page + 1

    async def wait_for(pilot, cond, what, timeout=240.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            await pilot.pause(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    async def go():
        app = BookpotApp(settings=Settings(threads=1), library=lib)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("ctrl+f")
            screen = app.screen
            assert isinstance(screen, AskLibraryScreen) and len(screen.paths) == 5
            await pilot.press(*fact.question)
            await pilot.press("enter")
            await wait_for(pilot, screen.done.is_set, "the library's answer")
            await pilot.pause()
            assert not screen.error and screen.answer.book == str(path), (screen.error, screen.answer)
            assert screen.answer_text.strip() and screen.answer_text.strip() in screen.answer.text
            links = list(screen.query(BookQuoteLink))
            chosen = next((link for link in links if natural.holds_evidence(fact, link.citation["quote"])), None)
            assert chosen is not None, [link.line for link in links]
            assert f"” — {path.name}, p. {page}" in chosen.line, chosen.line  # then " · unread"
            status = str(screen.query_one("#askall-status").render())
            assert f"answered from {path.name}" in status and "0-broken.pdf" in status, status
            chosen.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen), "the reader")
            reader = app.screen
            assert reader.path == os.path.abspath(path)
            text = reader.query_one(BookText)
            await wait_for(pilot, lambda: bool(text.quote_spans), "the quote highlighted")
            (bi, a, z), *_ = text.quote_spans
            assert natural.holds_evidence(fact, text.blocks[bi].text[a:z]) or \
                " ".join(text.blocks[bi].text[a:z].split()) in " ".join(chosen.citation["quote"].split())
            await pilot.pause(0.3)
            assert reader.query_one("#text-pane").border_title.startswith(f"p. {page}")
            app.show_library()
            await pilot.pause()
        app.close_engines()

    asyncio.run(go())


# Real files written by others, as Debian installs them (glpk-doc by packaging/test.sh).
REAL_SHELF = {"git-readme.md": "/usr/share/doc/git/README.md", "procps-bugs.md": "/usr/share/doc/procps/bugs.md",
              "cnfsat.pdf": "/usr/share/doc/glpk-doc/cnfsat.pdf",
              "apache-2.0.txt": "/usr/share/common-licenses/Apache-2.0",
              "mpl-2.0.txt": "/usr/share/common-licenses/MPL-2.0"}


@pytest.mark.model
@pytest.mark.skipif(not all(os.path.exists(p) for p in REAL_SHELF.values()), reason="Debian's docs of git, procps, glpk")
def test_a_question_naming_its_subject_is_answered_from_that_book_among_real_files(tmp_path):
    """A newcomer's folder: each book's own BM25 cited a SAT-solver paper for
    "Who named git?" ("name" matched "named"; "git", all through git's
    README, weighed little there). One index of the whole folder weighs a
    word by the whole library and cites the right book."""
    import shutil

    folder = tmp_path / "shelf"
    folder.mkdir()
    for name, src in REAL_SHELF.items():
        shutil.copyfile(src, folder / name)
    shutil.copyfile(REAL_SHELF["procps-bugs.md"], folder / "zz-copy.md")  # a copy is one book, not two
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")}
    for question, book in (("Who named git?", "git-readme.md"),
                           ("Where can I report bugs in procps?", "procps-bugs.md")):
        r = run_json("ask", folder, question, "-q", "--threads", "1", env=env)
        assert r["book_name"] == book, (question, r["book_name"], r["runners_up"])
        assert r["citations"] and all(c["book_name"] == book for c in r["citations"])
        assert [(s["book"], s["reason"]) for s in r["skipped"]] == \
            [(str(folder / "zz-copy.md"), f"the same text as {folder / 'procps-bugs.md'}")]
        assert "zz-copy.md" not in {x["book_name"] for x in r["runners_up"]}
