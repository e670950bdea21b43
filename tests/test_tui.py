"""The Textual TUI, driven with Pilot.

The flows that matter (open a book, wait for ingestion, ask, read the
answer, jump to a citation; reopen from the cache with no prefill; close
half-way and resume; memory-unit citations past a small pot, matched
against the CLI; a question typed right after opening a long book,
answered from its unread pages while reading goes on) run the REAL engine with the real default model on small
generated documents (marked ``model``). A fake session is used only where
timing must be controlled: Esc stopping an answer mid-stream, pause/resume,
waiting for another reader's lock, and deterministic snapshots. The cache
is the test run's own (conftest sets ``BOOKPOT_CACHE_DIR``).
"""
from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

import docgen
import natural
from conftest import run_cli
from passkey import FILLER, QUESTION, passkey_text
from topicbook import pdf_pages, topic_chapters

from bookpot.app import config, library as library_mod
from bookpot.app.config import Settings
from bookpot.app.library import QA, BookRecord, Library
from bookpot.app.tui.app import BookpotApp
from bookpot.app.tui.booktext import Block, BookText, hard_breaks, wrap_offsets
from bookpot.app.tui.chat import (NEAREST, NOT_SAID, ChatLog, CitationButton, Exchange, ListGuard, QuoteLink,
                                  SummaryExchange, exchange_text, quote_line)
from bookpot.app.tui.dialogs import ConfirmDialog, FileBrowser, PromptDialog
from bookpot.app.tui.messages import IngestProgress
from bookpot.app.tui.worker import BookEngine, default_session_factory
from bookpot.app.tui.library import book_state
from bookpot.engine import store
from bookpot.engine.build import Built
from bookpot.app.tui.help import HelpScreen
from bookpot.app.tui.library import LibraryScreen
from bookpot.app.tui.reader import ReaderScreen
from bookpot.app.tui.settings import SettingsScreen
from bookpot.app.tui.status import Eta, StatusBar
from bookpot.engine.errors import BookpotError
from bookpot.engine.readers.base import Locator
from bookpot.engine.session import Answer, Stats
from bookpot.engine.summarize import BookSummary, Cancelled, Part, Section

KEY = 48213
SIZE = (100, 30)
MODEL_TIMEOUT = 240.0  # a loaded CI box ingests slowly; the flows still must finish


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOKPOT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BOOKPOT_DATA_DIR", str(tmp_path / "data"))


def run(coro):
    return asyncio.run(coro)


async def wait_for(pilot, cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def notifications(app, severity: str | None = None) -> list[str]:
    return [n.message for n in app._notifications if severity is None or n.severity == severity]


def reader(app) -> ReaderScreen:
    assert isinstance(app.screen, ReaderScreen), f"on {type(app.screen).__name__}"
    return app.screen


async def ask(pilot, app, question: str) -> Exchange:
    box = app.screen.query_one("#question")
    box.focus()
    box.value = question
    await pilot.press("enter")
    await wait_for(pilot, lambda: any(ex.question == question for ex in app.screen.query(Exchange)),
                   5, "the question in the chat")
    return [ex for ex in app.screen.query(Exchange) if ex.question == question][-1]


def real_settings() -> Settings:
    # One thread: on a busy 2-core box llama.cpp's spinning threads contend badly.
    return Settings(threads=1)


def record(monkeypatch, handler: str) -> list:
    """Every message ``ReaderScreen.<handler>`` gets from now on."""
    seen = []
    orig = getattr(ReaderScreen, handler)

    def spy(self, msg):
        seen.append(msg)
        orig(self, msg)

    monkeypatch.setattr(ReaderScreen, handler, spy)
    return seen


def status_text(app) -> str:
    return str(app.screen.query_one("#ingest-stats").render())


# ----------------------------------------------------------------- fake engine
@dataclass
class FakeSession:
    """Session-shaped stand-in for timing tests; records what it ingested."""

    segment_delay: float = 0.0
    token_delay: float = 0.02
    answer_words: int = 400
    ingested: list[str] = field(default_factory=list)
    finished: bool = False
    closed: bool = False

    def __post_init__(self):
        self.stats = Stats()
        self.last_answer = None

    def ingest(self, segments, *, progress=None, cancel=None, after_chunk=None):
        """Like Session.ingest: ``cancel`` is checked before taking the next piece, so
        stopping loses nothing and the next call carries on with the same iterator."""
        it = iter(segments)
        while not (cancel is not None and cancel()):
            seg = next(it, None)
            if seg is None:
                self.finished = True
                break
            time.sleep(self.segment_delay)
            self.ingested.append(seg.text)
            self.stats.doc_tokens += len(seg.text.split())
            if progress is not None:
                from bookpot.engine.session import Progress
                progress(Progress(self.stats.doc_tokens, seg.progress, 1000.0, seg.locator))
        return self.stats

    def ask_stream(self, question, *, max_tokens=200, cancel=None):
        parts = []
        try:
            for i in range(self.answer_words):
                if cancel is not None and cancel():
                    break
                time.sleep(self.token_delay)
                piece = f" word{i}"
                parts.append(piece)
                yield piece
        finally:
            self.last_answer = Answer("".join(parts).strip(),
                                      [{"locator": "p. 2", "page": "2", "page_index": 1}],
                                      self.stats, partial=not self.finished)

    def close(self):
        self.closed = True


def fake_factory(**kw):
    sessions = []

    def factory(request):
        s = FakeSession(**kw)
        sessions.append(s)
        return Built(s)  # no plan, no cache

    factory.sessions = sessions
    return factory


def make_book_pdf(path: Path, pages: int = 5) -> Path:
    texts = []
    for i in range(pages):
        body = f"This is page {i + 1} of the test book. " * 30
        if i == 1:
            body += "The lighthouse keeper is called Ilse Varga. "
        texts.append(body)
    return docgen.make_pdf(path, texts)


# ----------------------------------------------------------------- pure parts
def test_wrap_offsets_cover_the_text():
    text = "alpha beta gamma delta\n\nepsilon " + "x" * 30
    lines = wrap_offsets(text, 10)
    assert all(e - s <= 10 for s, e in lines)
    joined = "".join(text[s:e] for s, e in lines)
    assert joined.replace(" ", "") == text.replace(" ", "").replace("\n", "")


def test_reflow_joins_the_source_margin_and_keeps_what_means_something():
    """Issue #22 item 1: lines broken only at the source's margin are joined; breaks
    after a paragraph's short last line, around a heading, before list items and
    indented lines, at blank lines, and in verse (all lines short) are kept."""
    prose = ("The Keeper of Harrow Point\n"
             "Harrow Point lighthouse stands on a black rock at the northern end of the bay. It was\n"
             "built in 1871 from grey granite carried by boat from the quarry at Selby. For most of\n"
             "its working life the light was tended by a single keeper.\n"
             "Chapter Two\n"
             "- the first item of a list that is long enough to fill the line to the margin here\n"
             "- the second item\n"
             "\n"
             "    an indented line of code that is also quite long, long enough to reach the margin\n"
             "    and its next line")
    stretches = [" ".join(prose[a:b].split()) for a, b in hard_breaks(prose)]
    assert stretches == [
        "The Keeper of Harrow Point",
        ("Harrow Point lighthouse stands on a black rock at the northern end of the bay. It was built in 1871 "
         "from grey granite carried by boat from the quarry at Selby. For most of its working life the light "
         "was tended by a single keeper."),
        "Chapter Two",
        "- the first item of a list that is long enough to fill the line to the margin here",
        "- the second item", "",
        "an indented line of code that is also quite long, long enough to reach the margin",
        "and its next line"]
    verse = "In the beginning\nwas the word,\nand the word\nwas short."
    assert [verse[a:b] for a, b in hard_breaks(verse)] == verse.split("\n")
    lines = wrap_offsets(prose, 30)
    assert all(e - s <= 30 for s, e in lines)
    shown = [prose[s:e].replace("\n", " ") for s, e in lines]
    assert "For most of its working life" in " ".join(shown)
    assert all(x == x.rstrip() and (x == x.lstrip() or x.startswith("    ")) for x in shown)
    assert " ".join(" ".join(shown).split()) == " ".join(prose.split())  # every word, in order


def test_sample_pdf_reflows_at_80x24_without_orphan_words():
    sample = Path(__file__).resolve().parents[1] / "app" / "sample" / "sample.pdf"

    async def go():
        app = BookpotApp(str(sample), session_factory=fake_factory())
        async with app.run_test(size=(80, 24)) as pilot:
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: len(text.blocks) == 4 and text._lines, 10, "the text")
            width = text._wrap_width
            for bi, block in enumerate(text.blocks):
                ends = {e for _, e in hard_breaks(block.text)}
                for b, s, e in text._lines:
                    if b == bi and s >= 0 and e not in ends:  # a line the wrap cut, not the book
                        assert e - s > width // 2, (block.text[s:e], width)
            shown = [str(text.render_line(y).text) for y in range(text.scrollable_content_region.height)]
            assert "For most of its" in " ".join(" ".join(shown).split())

    run(go())


def test_eta_is_a_moving_average_over_work_and_ignores_pauses():
    eta = Eta(horizon=1000)
    assert eta.eta(500) is None
    t = 0.0
    for tokens in range(0, 5001, 500):  # 500 tokens every 5 s: 100 tok/s
        eta.add(tokens, t)
        t += 5.0
    assert eta.eta(1000) == pytest.approx(10.0) and eta.per_second == pytest.approx(100.0)
    eta.pause()  # an answer: 60 s of no reading
    t += 60.0
    eta.add(5000, t)  # the first chunk's news after it starts a new interval
    eta.add(5500, t + 5.0)
    assert eta.eta(1000) == pytest.approx(10.0)  # the pause did not count
    eta.add(6000, t + 15.0)  # one slow chunk (50 tok/s) moves it part of the way only
    assert 10.0 < eta.eta(1000) < 20.0
    eta.add(100, t + 20.0)  # read again from the start: no old average
    assert eta.eta(1000) is None


def test_quote_line_fits_the_width_and_keeps_the_page():
    c = {"quote": "The lighthouse   keeper\nis called Ilse Varga.", "locator": "p. 12"}
    assert quote_line(c, 80) == "“The lighthouse keeper is called Ilse Varga.” — p. 12"
    short = quote_line(c, 30)
    assert len(short) == 30 and short.endswith("…” — p. 12") and short.startswith("“The lighthouse")


def test_find_quote_walks_a_page_made_of_several_segments():
    """A page's text is its segments joined by "\n" (blank segments left out): the
    offsets land in the right block, and a span that does not read as the quote
    falls back to the quote's words."""
    text = BookText()
    loc = Locator(chapter="One")
    parts = ["First part of the chapter.  \n", "   ", "Second part. The key is here.\n"]
    text.add_blocks([Block(p, loc) for p in parts])
    page = parts[0] + "\n" + parts[2]
    start = page.index("The key")
    cite = {"locator": str(loc), "chapter": "One", "quote": "The key is here.", "start": start,
            "end": start + len("The key is here.")}
    spans = text.find_quote(cite)
    assert len(spans) == 1 and spans[0][0] == 2
    bi, a, z = spans[0]
    assert text.blocks[bi].text[a:z] == "The key is here."
    cite["start"] -= 3  # offsets from a page read differently: the words still find it
    assert text.find_quote(cite) == spans
    assert text.find_quote(dict(cite, quote="Not in the book.")) == []


def test_list_guard_keeps_numbers_out_of_markdown_lists():
    g = ListGuard()
    out = "".join(g.feed(p) for p in ["48213", ". Remember", " it.\n", "2", ") two"]) + g.flush()
    assert out == "48213\\. Remember it.\n2\\) two"


def test_config_roundtrip_and_damage(tmp_path):
    s = Settings(model='odd "name" \\ path.gguf', ram_cap_mb=512, threads=3, theme="textual-light")
    path = config.save(s)
    assert tomllib.loads(path.read_text())["threads"] == 3
    loaded, problem = config.load()
    assert problem is None and loaded == s
    path.write_text("threads = [oops")
    loaded, problem = config.load()
    assert loaded == Settings() and "unreadable" in problem


def test_library_records_history_and_export(tmp_path):
    lib = Library()
    book = tmp_path / "b.txt"
    book.write_text("hello")
    lib.touch(str(book), title="B", state="ingesting")
    lib.update(str(book), state="ready", tokens=12)
    assert lib.get(str(book)).state_text() == "ready"
    lib.add_qa(str(book), QA("Who?", "Ilse.", [{"locator": "p. 2"}], partial=True))
    out = library_mod.export_notes(str(book), "B", lib.history(str(book)))
    md = out.read_text()
    assert "## Who?" in md and "Ilse." in md and "p. 2" in md and "before the whole book" in md
    assert out.parent == Path(os.environ["BOOKPOT_DATA_DIR"]) / "notes"
    lib.remove(str(book))
    assert lib.books() == [] and lib.history(str(book)) == []
    (lib.root / "books.json").write_text("{not json")
    assert lib.books() == []  # damaged file reads as empty


# ----------------------------------------------------------------- failures
def test_bad_file_is_a_notification_not_a_crash(tmp_path):
    binary = docgen.make_binary_file(tmp_path / "junk.bin")
    missing = tmp_path / "nope.pdf"

    async def go():
        app = BookpotApp(str(missing))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            assert any("no such file" in m for m in notifications(app, "error"))
            box = app.screen.query_one("#path")
            box.focus()
            box.value = str(binary)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            assert any("binary" in m for m in notifications(app, "error"))
            corrupt = docgen.make_corrupt_pdf(tmp_path / "bad.pdf")
            assert app.open_book(str(corrupt)) is False
            assert isinstance(app.screen, LibraryScreen)

    run(go())


@pytest.mark.model
def test_missing_model_is_reported_and_asking_says_so(tmp_path):
    book = tmp_path / "key.txt"
    book.write_text(passkey_text(300, 0.5, KEY))

    async def go():
        app = BookpotApp(str(book), Settings(model=str(tmp_path / "no-such-model.gguf")))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "failed", 60, "the model failure")
            assert notifications(app, "error")
            assert "failed" in str(app.screen.query_one("#ingest-stats").render())
            await ask_no_wait(pilot, app, "anything?")
            assert any("Cannot ask" == n.title for n in app._notifications)
            # the text pane still works without a model
            await wait_for(pilot, lambda: app.screen.query_one(BookText).blocks, 10, "the text")
        assert Library().get(str(book)).state == "failed"

    run(go())


async def ask_no_wait(pilot, app, question):
    box = app.screen.query_one("#question")
    box.focus()
    box.value = question
    await pilot.press("enter")
    await pilot.pause()


# ----------------------------------------------------------------- real model flows
@pytest.mark.model
def test_passkey_question_streams_the_answer_and_saves_it(tmp_path, monkeypatch):
    """Read, ask, close; reopen: history shown, ready at once from the cache (no
    prefill), the same answer; and `bookpot ask` finds the same saved state."""
    book = tmp_path / "passkey.txt"
    book.write_text(passkey_text(600, 0.5, KEY))

    async def go():
        app = BookpotApp(str(book), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state in ("ready", "failed"), MODEL_TIMEOUT,
                           "ingestion")
            assert reader(app).state == "ready", notifications(app)
            assert "ready" in status_text(app) and "from the cache" not in status_text(app)
            assert not reader(app).engine.session.stats.cached
            ex = await ask(pilot, app, QUESTION)
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the answer")
            assert str(KEY) in ex.text
            assert str(KEY) in ex.answer.source  # streamed into the Markdown widget
            assert "read so far" not in str(ex.note.render())
            first = ex.text
        app.close_engines(wait=60)
        rec = Library().get(str(book))
        assert rec.state == "ready" and rec.tokens > 400
        assert rec.cache_key and rec.doc_hash == store.document_hash(book)
        assert book_state(rec) == ("ready", rec.tokens)  # the library reads the cache
        hist = Library().history(str(book))
        assert len(hist) == 1 and str(KEY) in hist[0].answer and not hist[0].partial

        # Reopening shows the history, and the book is ready with no prefill.
        progress = record(monkeypatch, "on_ingest_progress")  # none: no prefill
        app = BookpotApp(str(book), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            exs = list(app.screen.query(Exchange))
            assert len(exs) == 1 and str(KEY) in exs[0].answer.source
            await wait_for(pilot, lambda: reader(app).state == "ready", 60, "the saved state")
            engine = reader(app).engine
            assert engine.cached and engine.session.stats.cached and engine.session.finished
            assert progress == []  # not one token prefilled
            assert "from the cache" in status_text(app)
            assert engine.session.stats.doc_tokens == rec.tokens
            cap = engine.built.ram_cap  # the plan's cap (no setting: the default one) is the gauge's
            assert cap and str(app.screen.query_one("#ram").render()).endswith(f"/{cap // 2**20:,} MB")
            ex = await ask(pilot, app, QUESTION)
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the answer")
            assert ex.text == first
        app.close_engines(wait=60)
        return first

    first = run(go())
    # The CLI, with its default flags, builds the same session: it finds the TUI's state.
    p = run_cli("ask", book, QUESTION, "--json", "--threads", "1", timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["stats"]["cached"] and out["answer"] == first


def passkey_pages(n_blocks: int, at: int, key: int, per_page: int) -> list[str]:
    blocks = [FILLER] * n_blocks
    blocks.insert(at, f"The pass key is {key}. Remember it. {key} is the pass key.")
    return [" ".join(blocks[i:i + per_page]) for i in range(0, len(blocks), per_page)]


@pytest.mark.model
def test_closed_half_way_resumes_and_units_cite_what_the_pot_dropped(tmp_path, monkeypatch):
    """A book longer than a small pot: closed half-way (checkpointed on close), reopened
    it resumes where it stopped; the answer brings back memory units, cites the key's
    page first, and a citation jumps there. It all matches an uninterrupted `bookpot
    ask` with the same pot: the TUI cuts the book into the CLI's chunks."""
    pot = 1024
    pdf = docgen.make_pdf(tmp_path / "units.pdf", passkey_pages(120, 30, KEY, per_page=24))  # ~3,000 tokens
    factory = functools.partial(default_session_factory, pot_tokens=pot)
    reached = threading.Event()
    held = []
    on_progress = BookEngine._on_progress

    def hold_there(self, p):
        """After the chunk that follows the first distillation, the engine thread waits
        until the app is closed: the close checkpoints a compacted pot, at a known place."""
        on_progress(self, p)
        if self.session.stats.distillations and not reached.is_set():
            held.append(p.tokens)
            reached.set()
            self._closing.wait(MODEL_TIMEOUT)

    monkeypatch.setattr(BookEngine, "_on_progress", hold_there)

    async def go():
        app = BookpotApp(str(pdf), real_settings(), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, reached.is_set, MODEL_TIMEOUT, "the first distillation")
            assert reader(app).state == "reading"
        app.close_engines(wait=120)  # closing checkpoints the book where it stopped
        rec = Library().get(str(pdf))
        (manifest,) = (store.cache_root() / "books" / rec.cache_key).glob("manifest.json")
        saved = json.loads(manifest.read_text())
        assert saved["status"] == "ingesting" and saved["doc_tokens"] == held[0] < 2800, saved
        assert book_state(rec) == (f"paused {saved['progress']:.0%}", saved["doc_tokens"])

        notes = record(monkeypatch, "on_engine_note")
        app = BookpotApp(str(pdf), real_settings(), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", MODEL_TIMEOUT, "the rest of the book")
            session = reader(app).engine.session
            assert session.stats.resumed_from_tokens == saved["doc_tokens"]
            assert any(f"resuming after {saved['doc_tokens']:,} tokens" in n.text for n in notes)
            assert session.stats.distillations > 0  # the book did not fit the pot
            ex = await ask(pilot, app, QUESTION)
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the answer")
            units = session.stats.units_loaded
            n = len(units)  # up to --units (4); the engine may load fewer when the rest score low
            assert 1 <= n <= 4 and f"{n} unit{'s' if n > 1 else ''} loaded" in str(ex.note.render())
            shown = list(ex.query(QuoteLink)) + list(ex.query(CitationButton))  # quotes, then the rest
            sources = [w.citation.get("source") for w in shown]
            assert sources[0] == "unit" and shown[0].has_class("-unit"), sources
            app.screen.query_one(ChatLog).scroll_to_widget(ex.citations, animate=False, immediate=True)
            await pilot.pause()
            pane = app.screen.query_one(ChatLog).region
            for w in shown:  # every quote and citation on screen, none cut off at the pane's edge
                assert w.region.width > 0 and pane.contains_region(w.region), (w.citation, w.region, pane)
            text = app.screen.query_one(BookText)
            text.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            await pilot.click(shown[0])
            await pilot.pause()
            page = shown[0].citation["page"]
            assert text.target == int(page) - 1 and text.top_block() == int(page) - 1
            assert app.screen.query_one("#text-pane").border_title.startswith(f"p. {page}")
            answer = (ex.text, [w.citation["locator"] for w in shown], [u["unit"] for u in units],
                      session.stats.doc_tokens)
        app.close_engines(wait=60)
        hist = Library().history(str(pdf))
        assert hist[-1].units == len(answer[2]) and hist[-1].citations[0]["source"] == "unit"
        return answer

    text, locators, unit_ids, doc_tokens = run(go())
    assert locators[0] == "p. 2"  # the key's page, from a unit
    ref = run_cli("ask", pdf, QUESTION, "--json", "--threads", "1", "--pot-tokens", str(pot), "--read", "first", timeout=900,
                  env={"BOOKPOT_CACHE_DIR": str(tmp_path / "reference-cache")})
    assert ref.returncode == 0, ref.stderr
    out = json.loads(ref.stdout)
    assert not out["stats"]["cached"] and out["stats"]["doc_tokens"] == doc_tokens
    assert out["answer"] == text
    assert [u["unit"] for u in out["stats"]["units_loaded"]] == unit_ids
    assert [c["locator"] for c in out["citations"]] == locators
    assert str(KEY) in text  # last: the TUI and the CLI agree, whatever the model answered


@pytest.mark.model
def test_plain_question_quotes_the_page_and_the_quote_jumps_there(tmp_path):
    """Asked as a person types it, the real model's answer comes with a quote from the
    book under it; choosing the quote shows its page with the sentence highlighted."""
    filler = "The grass is green. The sky is blue. The sun is yellow. " * 40
    pdf = docgen.make_pdf(tmp_path / "three.pdf", [
        filler, filler, f"The pass key is {KEY}. Remember it. {KEY} is the pass key. " + filler,
    ])

    async def go():
        app = BookpotApp(str(pdf), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", MODEL_TIMEOUT, "ingestion")
            ex = await ask(pilot, app, "What is the pass key?")
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the answer")
            await pilot.pause()
            links = list(ex.query(QuoteLink))
            assert links, (ex.text, str(ex.note.render()))
            first = links[0].citation
            assert str(KEY) in first["quote"] and first["locator"] == "p. 3", first
            assert links[0].line.endswith("” — p. 3")
            text = app.screen.query_one(BookText)
            text.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            assert text.top_block() == 0
            await pilot.click(links[0])
            await pilot.pause()
            assert text.top_block() == 2 and text.target == 2
            assert app.screen.query_one("#text-pane").border_title.startswith("p. 3")
            (bi, a, z), = text.quote_spans
            assert bi == 2 and " ".join(text.blocks[2].text[a:z].split()) == " ".join(first["quote"].split())
            # The quotes are the answer's evidence, or the nearest passages when it has none.
            assert bool(ex.query(".nearest")) == (not ex.answered) and (ex.answered or ex.text == NOT_SAID)

    run(go())


@pytest.mark.model
def test_question_while_reading_is_partial_then_reading_resumes(tmp_path):
    book = tmp_path / "long.txt"
    book.write_text(passkey_text(2500, 0.05, KEY))

    async def go():
        app = BookpotApp(str(book), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "reading"
                           and reader(app).engine.tokens > 0, MODEL_TIMEOUT, "reading to start")
            ex = await ask(pilot, app, QUESTION)
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the partial answer")
            assert "read so far" in str(ex.note.render())
            await wait_for(pilot, lambda: reader(app).state == "ready", MODEL_TIMEOUT,
                           "ingestion to resume and finish")
            engine = reader(app).engine
            assert engine.session.finished and engine.progress == 1.0
        assert Library().history(str(book))[0].partial

    run(go())


@pytest.mark.model
def test_summarize_streams_a_section_per_chapter_then_the_overview(tmp_path, monkeypatch):
    """The palette's "Summarize this book" while the book is being read: reading stops,
    the reader's context is freed (never two contexts at once); Esc after the first
    section stops it, and reading carries on from its checkpoint. Ctrl+R again goes on
    after the kept chapter: one section per chapter streams in with its pages, the
    overview comes last. A third run is the cached summary at once, as is `bookpot
    summarize` with the same settings (one cache for both)."""
    from bookpot.engine import llm

    chapters = topic_chapters(450)[:3]  # ~1.5K tokens in all
    pages, outline = pdf_pages(chapters, chars_per_page=1400)
    pdf = docgen.make_pdf(tmp_path / "crafts.pdf", pages, outline=outline)
    first_page = {title: i + 1 for title, i in outline}
    live, most = set(), [0]
    init, close = llm.Context.__init__, llm.Context.close

    def counted_init(self, *a, **kw):
        init(self, *a, **kw)
        live.add(id(self))
        most[0] = max(most[0], len(live))

    def counted_close(self):
        live.discard(id(self))
        close(self)

    monkeypatch.setattr(llm.Context, "__init__", counted_init)
    monkeypatch.setattr(llm.Context, "close", counted_close)
    held = []
    on_progress = BookEngine._on_progress

    def hold_for_the_summary(self, p):
        """After the first chunk the reader waits for the summary to be asked for, so
        it is stopped half-way through the book (deterministically)."""
        on_progress(self, p)
        if not held:
            held.append(p.tokens)
            deadline = time.monotonic() + MODEL_TIMEOUT
            while not self.summarizing and not self.closing and time.monotonic() < deadline:
                time.sleep(0.05)

    monkeypatch.setattr(BookEngine, "_on_progress", hold_for_the_summary)

    async def go():
        app = BookpotApp(str(pdf), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: held, MODEL_TIMEOUT, "the first chunk")
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Summarize this book")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: list(app.screen.query(SummaryExchange)), 10, "the summary entry")
            engine = reader(app).engine
            await wait_for(pilot, lambda: engine.released, MODEL_TIMEOUT, "the reader to stop")
            assert engine.tokens == held[0]
            # Esc after the first chapter: stopped; the chapter is kept for the next run.
            stopped = app.screen.query_one(SummaryExchange)
            await wait_for(pilot, lambda: stopped.sections, MODEL_TIMEOUT, "the first section")
            await pilot.press("escape")
            await wait_for(pilot, lambda: stopped.done, 30, "the stop")
            assert "stopped" in str(stopped.note.render()) and stopped.sections < 3
            # The reader reopens from its checkpoint and reads on.
            # (the session is set a moment before its checkpoint is restored into it)
            await wait_for(pilot, lambda: engine.session is not None and engine.session.stats.resumed_from_tokens,
                           60, "the reader again, from its checkpoint")
            assert engine.session.stats.resumed_from_tokens == held[0] < 1200
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(app.screen.query(SummaryExchange)) == 2, 10, "the summary entry")
            ex = app.screen.query(SummaryExchange)[-1]
            t0 = time.monotonic()
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the summary")
            took = time.monotonic() - t0
            assert not notifications(app, "error"), notifications(app, "error")
            print(f"summary in {took:.1f} s, after {ex.summary.resumed_sections} chapter(s) kept from the stopped run")
            print(ex.text)
            assert ex.summary.resumed_sections >= 1 and not ex.summary.cached
            # One section per chapter, streamed in order: title and page range, then the text.
            assert ex.sections == 3 and len(ex.streamed) == 3
            for (title, _), piece, nxt in zip(chapters, ex.streamed, [*list(first_page.values())[1:], len(pages) + 1]):
                head, text = piece.split("\\\n", 1)
                assert head == f"**{title}** · pp. {first_page[title]}–{nxt - 1}", head
                assert len(text.split()) >= 5
            # The finished summary: the chapters, then the overview.
            last = ex.text.index(f"**{chapters[-1][0]}**")
            assert ex.text.index("**Overview**") > last
            overview = ex.text.split("**Overview**\\\n", 1)[1]
            assert len(overview.split()) >= 5
            assert [b.citation["page"] for b in ex.query(CitationButton)] == [str(p) for p in first_page.values()]
            # The reader was stopped for each run; it carries on and reads the book to its end.
            assert engine.released == 2
            await wait_for(pilot, lambda: engine.session is not None and engine.session.finished
                           and reader(app).state == "ready", MODEL_TIMEOUT, "the rest of the book")
            assert engine.session.stats.doc_tokens > 1200
            assert most[0] == 1, most  # the reader's context and the summary's never together
            # Again: the cached summary, at once, the reader's session untouched.
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(app.screen.query(SummaryExchange)) == 3
                           and app.screen.query(SummaryExchange)[-1].done, 15, "the cached summary")
            again = app.screen.query(SummaryExchange)[-1]
            assert again.text == ex.text and "from the summary cache" in str(again.note.render())
            assert engine.released == 2 and engine.session is not None
        app.close_engines(wait=60)
        hist = Library().history(str(pdf))
        assert [q.question for q in hist] == ["Summarize this book"] and hist[0].answer == ex.text
        return ex.text

    text = run(go())
    p = run_cli("summarize", pdf, "--json", "--threads", "1", timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["cached"] and [x["title"] for x in out["parts"]] == [t for t, _ in chapters]
    assert out["overview"] in text


# ----------------------------------------------------------------- fake-engine timing
def test_escape_stops_the_answer_mid_stream(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf")
    factory = fake_factory(token_delay=0.02, answer_words=1000)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            ex = await ask(pilot, app, "Tell me everything")
            await wait_for(pilot, lambda: len(ex.text.split()) >= 3, 10, "streaming")
            await pilot.press("escape")
            await wait_for(pilot, lambda: ex.done, 5, "the stop")
            n = len(ex.text.split())
            assert 3 <= n < 1000
            assert "stopped" in str(ex.note.render())
            assert [b.citation["locator"] for b in ex.query(CitationButton)] == ["p. 2"]
            await pilot.pause(0.3)
            assert len(ex.text.split()) == n  # nothing arrives after the stop
        hist = Library().history(str(pdf))
        assert hist[0].cancelled and len(hist[0].answer.split()) == n

    run(go())


def test_an_answer_failing_before_its_first_token_does_not_stall_the_chat(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=2)

    class Failing(FakeSession):
        def ask_stream(self, question, **kw):
            raise RuntimeError("boom")
            yield  # a generator, like Session.ask_stream

    async def go():
        app = BookpotApp(str(pdf), session_factory=lambda request: Built(Failing()))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            for q in ("first?", "second?"):
                ex = await ask(pilot, app, q)
                await wait_for(pilot, lambda: ex.done, 10, "the failure")
                assert "boom" in str(ex.note.render())

    run(go())


SENTENCE = "The lighthouse keeper is called Ilse Varga."


@pytest.mark.model
@pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")
def test_a_question_right_after_opening_a_long_book_is_answered_from_its_unread_pages(tmp_path, monkeypatch):
    """Issue #19 with the real model: a ~30K-token PDF never read is indexed in seconds;
    a question typed at once is answered from the whole book (its fact sits halfway in,
    far past what was read) with the fact's quote, marked unread, while reading goes on;
    the quote jumps to its sentence in the text pane."""
    doc = natural.build(30000, ["F03"], "pdf", offset=200, name="tui-early30k")
    pdf = doc.write(tmp_path)
    (fact,) = doc.facts()
    done, orig = [], ReaderScreen.on_answer_done

    async def spy(self, msg):
        done.append((msg, self.engine.session.finished))
        await orig(self, msg)

    monkeypatch.setattr(ReaderScreen, "on_answer_done", spy)

    async def go():
        app = BookpotApp(str(pdf), real_settings())
        async with app.run_test(size=SIZE) as pilot:
            ex = await ask(pilot, app, fact.question)  # typed right after opening: it waits for the text pass only
            await wait_for(pilot, lambda: ex.done, MODEL_TIMEOUT, "the answer")
            await pilot.pause()
            engine = reader(app).engine
            ((msg, finished),) = done
            assert engine.indexed and msg.indexed and msg.partial and msg.from_unread
            assert msg.read_fraction is not None and msg.read_fraction < 0.4, msg.read_fraction
            assert not finished  # answered before reading was done; it goes on behind
            link = next((q for q in ex.query(QuoteLink) if natural.holds_evidence(fact, q.citation["quote"])),
                        None)
            assert link is not None, (ex.text, [q.citation for q in ex.query(QuoteLink)])
            assert link.citation["source"] == "unread" and link.line.endswith("· unread"), link.citation
            placed = doc.placed[0]
            assert link.citation["page"] == str(placed.page + 1), (link.citation, placed)
            assert "answered from pages not read yet" in str(ex.note.render())
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: text.find_quote(link.citation), 30, "the quote's page in the text")
            text.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            link.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert text.quote_spans, link.citation
            got = " ".join(" ".join(text.blocks[i].text[a:z].split()) for i, a, z in text.quote_spans)
            assert got == " ".join(link.citation["quote"].split())
            assert app.screen.query_one("#text-pane").border_title.startswith(link.citation["locator"])
            await wait_for(pilot, lambda: reader(app).state == "reading", 30, "reading to resume")

    run(go())


def quote_of(pdf: Path, page_index: int, sentence: str) -> dict:
    """A quote as Session.quotes gives it: offsets in the reader's text of that page."""
    from bookpot.engine.readers import open_document

    (seg,) = [s for s in open_document(str(pdf)).segments() if s.locator.page_index == page_index]
    a = seg.text.index(sentence)
    return dict(seg.locator.to_dict(), source="unit", quote=sentence, start=a, end=a + len(sentence), score=2.0)


class QuotingSession(FakeSession):
    """Answers at once, with quotes first (or, ``answered=False``, "does not say")."""

    citations: tuple = ()
    answered = True

    def ask_stream(self, question, *, max_tokens=200, cancel=None):
        text = "The keeper is called Ilse Varga." if self.answered else NOT_SAID
        yield "The keeper is called" if self.answered else "The keeper"
        if self.answered:
            yield " Ilse Varga."
        self.last_answer = Answer(text, list(self.citations), self.stats, partial=False, answered=self.answered)


def quoting_factory(citations, answered=True):
    def factory(request):
        s = QuotingSession()
        s.citations, s.answered = citations, answered
        return Built(s)
    return factory


def test_quotes_under_the_answer_jump_to_the_highlighted_sentence(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=5)
    quote = quote_of(pdf, 1, SENTENCE)
    other = {"locator": "p. 4", "page": "4", "page_index": 3, "source": "pot", "score": 1.0}
    factory = quoting_factory([quote, other])

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: len(text.blocks) == 5, 10, "the text")
            ex = await ask(pilot, app, "Who keeps the lighthouse?")
            await wait_for(pilot, lambda: ex.done, 10, "the answer")
            await pilot.pause()
            links = list(ex.query(QuoteLink))
            assert [link.citation["quote"] for link in links] == [SENTENCE]
            line = links[0].line
            assert line.startswith("“The lighthouse") and line.endswith("” — p. 2")
            assert len(line) <= links[0].content_region.width  # cut to the pane, never wrapped
            assert [b.citation["locator"] for b in ex.query(CitationButton)] == ["p. 4"]  # locator-only after
            assert not ex.query(".nearest")
            text.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            links[0].focus()  # reachable from the keyboard
            await pilot.press("enter")
            await pilot.pause()
            assert text.target == 1 and text.quote_spans
            (bi, a, z), = text.quote_spans
            assert bi == 1 and text.blocks[1].text[a:z] == SENTENCE
            # On screen, drawn in the quote's style, exactly the quoted words.
            style = text.rich_style + text.get_component_rich_style("booktext--quote")
            shown = []
            for y in range(text.scrollable_content_region.height):
                shown += [seg.text for seg in text.render_line(y) if seg.style == style]
            assert " ".join(" ".join(shown).split()) == SENTENCE
            assert app.screen.query_one("#text-pane").border_title.startswith("p. 2")
            await pilot.click(ex.query(CitationButton).first())  # a locator-only source: no highlight
            await pilot.pause()
            assert text.target == 3 and text.quote_spans == []
        hist = Library().history(str(pdf))
        assert hist[0].answered and hist[0].citations[0]["quote"] == SENTENCE
        md = library_mod.notes_markdown("Book", str(pdf), hist)  # the exported notes keep the quotes
        assert f'> "{SENTENCE}" — p. 2' in md and "Sources: p. 4" in md

    run(go())


class IndexingSession(FakeSession):
    """Has a text pass (``index_delay`` s a segment) and answers with a quote from a page
    not read yet, as Session does once its text pass is done (issue #19)."""

    index_delay = 0.0
    citations: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        self.text = TextState()
        self.read_when_indexed: int | None = None  # segments ingested when the pass ended
        self.pass_cancelled = False

    def text_pass(self, segments, *, progress=None, cancel=None):
        n = 0
        for seg in segments:
            if cancel is not None and cancel():
                self.pass_cancelled = True
                return SimpleNamespace(tokens=n)
            time.sleep(self.index_delay)
            n += len(seg.text.split())
            if progress is not None:
                progress(n, seg.progress)
        self.text.done, self.text.n_tokens = True, n
        self.stats.book_tokens = n
        self.read_when_indexed = len(self.ingested)
        return SimpleNamespace(tokens=n)

    def ask_stream(self, question, *, max_tokens=200, cancel=None):
        yield "The keeper is called Ilse Varga."
        unread = any(c.get("source") == "unread" for c in self.citations)
        self.last_answer = Answer("The keeper is called Ilse Varga.", list(self.citations), self.stats,
                                  partial=not self.finished, from_unread=unread)


@dataclass
class TextState:
    done: bool = False
    n_tokens: int = 0


def indexing_factory(citations=(), *, segment_delay=0.0, index_delay=0.0):
    sessions = []

    def factory(request):
        s = IndexingSession(segment_delay=segment_delay)
        s.citations, s.index_delay = tuple(citations), index_delay
        sessions.append(s)
        return Built(s)

    factory.sessions = sessions
    return factory


def test_a_book_is_indexed_first_and_answered_from_unread_pages_while_reading_goes_on(tmp_path, monkeypatch):
    """Issue #19 in the reader: the text pass runs (and says so) before reading; a question
    is answered from a page not read yet, marked as such, its quote still jumps to the
    sentence; reading resumes and finishes; the history keeps the marks."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=12)
    quote = dict(quote_of(pdf, 1, SENTENCE), source="unread")
    factory = indexing_factory([quote], segment_delay=0.15, index_delay=0.05)
    states = record(monkeypatch, "on_ingest_state")
    indexing = record(monkeypatch, "on_index_progress")
    shown: list[str] = []
    orig = StatusBar.set_state

    def spy(self, text, progress=None):
        shown.append(text)
        orig(self, text, progress)

    monkeypatch.setattr(StatusBar, "set_state", spy)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).engine is not None and reader(app).engine.indexed,
                           10, "the text pass")
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: len(text.blocks) == 12, 10, "the text")
            ex = await ask(pilot, app, "Who keeps the lighthouse?")
            await wait_for(pilot, lambda: ex.done, 10, "the answer")
            await pilot.pause()
            session = factory.sessions[0]
            assert session.read_when_indexed == 0  # indexed before the first page was read
            assert not session.finished  # answered while reading was under way
            note = str(ex.note.render())
            assert "answered from pages not read yet (" in note and "% of the book read)" in note, note
            (link,) = ex.query(QuoteLink)
            assert link.has_class("-unread") and link.line.endswith("” — p. 2 · unread"), link.line
            assert "· unread" in exchange_text(ex)
            text.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            link.focus()
            await pilot.press("enter")
            await pilot.pause()
            (bi, a, z), = text.quote_spans
            assert bi == 1 and text.blocks[1].text[a:z] == SENTENCE
            await wait_for(pilot, lambda: reader(app).state == "ready", 20, "reading to resume and finish")
            assert session.finished
        seen = [m.state for m in states]
        assert seen.index("indexing") < seen.index("reading"), seen
        assert indexing and all(0 <= m.progress <= 1 for m in indexing)
        assert any(t.startswith("indexing for questions ") for t in shown), shown
        assert shown.index("indexing for questions…") < next(i for i, t in enumerate(shown)
                                                             if t.startswith("indexing for questions "))
        assert any(t.startswith("looking up passages in the whole book…") for t in shown), shown
        (qa,) = Library().history(str(pdf))
        assert qa.from_unread and qa.partial and qa.indexed and 0 <= qa.read_fraction < 1
        assert qa.citations[0]["source"] == "unread"
        md = library_mod.notes_markdown("Book", str(pdf), [qa])
        assert "> Answered from pages not read yet (" in md

        # Reopened: the history shows the same note and marks.
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.query(Exchange), 10, "the history")
            ex = app.screen.query(Exchange).first()
            await pilot.pause()
            assert "answered from pages not read yet" in str(ex.note.render())
            assert ex.query(QuoteLink).first().line.endswith("· unread")

    run(go())


def test_a_question_while_indexing_waits_for_it_and_closing_stops_the_pass(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=12)
    factory = indexing_factory([dict(quote_of(pdf, 1, SENTENCE), source="unread")], index_delay=0.3)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "indexing", 10, "the text pass")
            await ask(pilot, app, "Who keeps the lighthouse?")
            await pilot.pause()
            assert "answered once the book is indexed" in status_text(app), status_text(app)
            engine = reader(app).engine
            await pilot.press("ctrl+l")  # leave the book while it is indexed
            await pilot.pause()
            assert engine.done.wait(5)
        session = factory.sessions[0]
        assert session.pass_cancelled and not session.text.done and not session.ingested
        assert Library().get(str(pdf)).state == "paused"

    run(go())


def test_not_answered_says_so_with_the_nearest_passages(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=3)
    quote = quote_of(pdf, 1, SENTENCE)
    factory = quoting_factory([quote], answered=False)

    def check(ex):
        assert ex.text == NOT_SAID and NOT_SAID in ex.answer.source and "The keeper" not in ex.answer.source
        labels = [str(w.render()) for w in ex.query(".nearest")]
        assert labels == [NEAREST]
        assert [link.citation["quote"] for link in ex.query(QuoteLink)] == [SENTENCE]
        assert "(no answer)" not in str(ex.note.render())

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            ex = await ask(pilot, app, "How many sheep did Marta Quill count?")
            await wait_for(pilot, lambda: ex.done, 10, "the answer")
            await pilot.pause()
            check(ex)
        hist = Library().history(str(pdf))
        assert not hist[0].answered and hist[0].answer == NOT_SAID
        app = BookpotApp(str(pdf), session_factory=factory)  # the same from the saved history
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            (ex,) = app.screen.query(Exchange)
            check(ex)

    run(go())


def test_old_history_without_answered_still_loads(tmp_path):
    lib = Library()
    book = tmp_path / "b.txt"
    book.write_text("hello")
    lib.history_path(library_mod.book_key(str(book))).parent.mkdir(parents=True)
    lib.history_path(library_mod.book_key(str(book))).write_text(
        json.dumps([{"question": "Who?", "answer": "Ilse.", "citations": [], "units": 1}]))
    (qa,) = lib.history(str(book))
    assert qa.answered and qa.units == 1


def test_answer_stopped_before_its_first_word_cites_nothing(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=2)

    class Slow(FakeSession):
        def ask_stream(self, question, *, max_tokens=200, cancel=None):
            while not cancel():
                time.sleep(0.02)
            self.last_answer = Answer(NOT_SAID, [quote_of(pdf, 1, SENTENCE), {"locator": "p. 1"}], self.stats,
                                      answered=False)
            return
            yield

    async def go():
        app = BookpotApp(str(pdf), session_factory=lambda request: Built(Slow()))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            ex = await ask(pilot, app, "Who?")
            await wait_for(pilot, lambda: reader(app).engine.answering, 10, "the answer to start")
            await pilot.press("escape")
            await wait_for(pilot, lambda: ex.done, 10, "the stop")
            note = str(ex.note.render())
            assert "stopped" in note and "(no answer)" not in note
            assert not ex.query(QuoteLink) and not ex.query(CitationButton) and NOT_SAID not in ex.answer.source
        hist = Library().history(str(pdf))
        assert hist[0].cancelled and hist[0].answer == "" and hist[0].citations == []

    run(go())


def test_status_says_what_happens_while_a_question_is_answered(tmp_path, monkeypatch):
    """Issue #22 item 5: asked while reading, the status line says the question waits for
    the chunk, that passages are looked up with reading paused, the answer's tokens
    while it is written, and that reading resumes; a summary's status has an ETA."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=40)
    factory = fake_factory(segment_delay=0.1, token_delay=0.05, answer_words=8)
    states: list[str] = []
    orig = StatusBar.set_state

    def spy(self, text, progress=None):
        states.append(text)
        orig(self, text, progress)

    monkeypatch.setattr(StatusBar, "set_state", spy)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "reading" and reader(app).engine.progress > 0.1,
                           20, "reading")
            await wait_for(pilot, lambda: "ETA" in states[-1] and "ETA –" not in states[-1], 10, "an ETA")
            assert "tok/s" in states[-1]
            states.clear()
            ex = await ask(pilot, app, "Who keeps the lighthouse?")
            await wait_for(pilot, lambda: ex.done, 20, "the answer")
            await wait_for(pilot, lambda: states and states[-1].startswith("reading "), 10, "reading again")
            await pilot.press("ctrl+t")  # paused: the rest of the summary test needs a quiet engine

            def first(prefix, after=-1):
                return next(i for i, x in enumerate(states) if x.startswith(prefix) and i > after)

            order = [first("question asked: reading pauses"), first("looking up passages"), first("answering · ")]
            order.append(first("reading ", after=order[-1]))
            assert order == sorted(order), states
            assert not any(x.startswith("reading ") for x in states[order[0]:order[2]]), states
            assert "reading paused at" in states[order[1]] and "reading paused at" in states[order[2]]
            assert any(x.startswith("answering · 8 tok") for x in states)
            assert "Stop" not in footer_text(app)  # nothing to stop any more

    run(go())


def footer_text(app) -> str:
    from textual.widgets import Footer

    return " ".join(str(k.render()) for k in app.screen.query_one(Footer).query("FooterKey"))


def test_a_long_read_says_what_it_keeps_on_disk(tmp_path):
    """Issue #22 item 9: at the start of a read, the memory units' expected total
    (the book's tokens as its first pages predict, times the bytes per token the
    first units took) and the free space."""
    from types import SimpleNamespace

    pdf = make_book_pdf(tmp_path / "book.pdf", pages=30)

    class WithUnits(FakeSession):
        def __post_init__(self):
            super().__post_init__()
            self.units = SimpleNamespace(units=SimpleNamespace(kv_tokens=lambda: 1000), kv_bytes=23_040_000,
                                         cfg=SimpleNamespace(disk_cap=None))

    async def go():
        app = BookpotApp(str(pdf), session_factory=lambda request: Built(WithUnits(segment_delay=0.02)))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 20, "fake ingestion")
            (note,) = [n for n in app._notifications if n.title == "Disk"]
            first = reader(app).engine.session.ingested[0]
            expected = len(first.split()) * 30 * 23_040  # tokens of page 1 x 30 pages x bytes per token
            assert f"about {expected / 2**20:,.0f} MiB of memory units on disk" in note.message, note.message
            assert "free" in note.message

    run(go())


def test_leaving_a_book_while_it_is_read_shows_it_paused_at_once(tmp_path):
    """Issue #22 item 10: the library said "ingesting n%" until the engine had closed."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=40)

    async def go():
        app = BookpotApp(str(pdf), session_factory=fake_factory(segment_delay=0.1))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "reading" and reader(app).engine.progress > 0.05,
                           10, "reading")
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            state = app.screen.query_one("#books").get_row(str(pdf))[1]
            assert state.startswith("paused "), state

    run(go())


def test_pause_and_resume_lose_no_segment(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=30)
    factory = fake_factory(segment_delay=0.05)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            # a few pages in (read_s is kept to 0.1 s: a pause after one page could round to 0)
            await wait_for(pilot, lambda: reader(app).state == "reading"
                           and reader(app).engine.progress > 0.2, 10, "reading")
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: reader(app).state == "paused", 5, "pause")
            n = len(factory.sessions[0].ingested)
            read_s = reader(app)._read_s
            await pilot.pause(0.4)
            assert len(factory.sessions[0].ingested) == n and n < 30
            assert reader(app)._read_s == read_s  # a paused book is not being read
            assert "paused" in str(app.screen.query_one("#ingest-stats").render())
            paused = Library().get(str(pdf))
            assert paused.state == "paused" and paused.read_s > 0  # reading time, kept for the library
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: reader(app).state == "ready", 20, "the rest")
            assert Library().get(str(pdf)).read_s > paused.read_s
        got = " ".join(" ".join(factory.sessions[0].ingested).split())
        at = [got.find(f"This is page {i + 1} of") for i in range(30)]
        assert all(a >= 0 for a in at) and at == sorted(at)
        assert got.count("This is page") == 30 * 30  # every sentence, once

    run(go())


class FakeSummaries:
    """A summary runner: ``sections`` page summaries, ``delay`` s apart, then the overview.

    ``mode``: "run" (frees the reader's session first, as a cache miss does),
    "cached" (returns at once, touching nothing), "fail" (raises a BookpotError).
    """

    def __init__(self, sections: int = 5, delay: float = 0.3) -> None:
        self.n, self.delay, self.mode = sections, delay, "run"
        self.calls = 0

    def summary(self, cached: bool) -> BookSummary:
        secs = [self.section(i) for i in range(self.n)]
        parts = [Part(f"p. {i + 1}", [], s.first, s.last, s.summary, [i]) for i, s in enumerate(secs)]
        return BookSummary("Book", "/x/book.pdf", "A test book of pages.", parts, secs, cached=cached)

    def section(self, i: int) -> Section:
        loc = Locator(page=str(i + 1), page_index=i).to_dict()
        return Section(i, f"Page {i + 1} is about page {i + 1}.", [], loc, loc, 100, "window full")

    def __call__(self, request, model, hooks):
        self.calls += 1
        if self.mode == "cached":
            return self.summary(True)
        if self.mode == "fail":
            raise BookpotError("book.pdf: the model gave no usable summary")
        hooks.before_session()
        for i in range(self.n):
            deadline = time.monotonic() + self.delay
            while time.monotonic() < deadline:
                if hooks.cancel():
                    raise Cancelled()
                time.sleep(0.01)
            hooks.section(self.section(i))
            from bookpot.engine.session import Progress
            hooks.update(Progress(100 * (i + 1), (i + 1) / self.n, 300.0, None))
        return self.summary(False)


def test_summary_streams_in_stops_with_escape_and_frees_the_reader(tmp_path):
    """Ctrl+R while reading: the reader's session is released (a fake has no cache,
    so it reads again afterwards, and says so), sections stream in, Esc stops them;
    a failure is a notification; a finished summary joins the history and the notes;
    a cached one comes back without touching the reader's session."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=20)
    factory = fake_factory(segment_delay=0.05)
    runner = FakeSummaries()

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory, summary_runner=runner)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "reading"
                           and reader(app).engine.progress > 0, 10, "reading")
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: list(app.screen.query(SummaryExchange)), 5, "the summary entry")
            ex = app.screen.query_one(SummaryExchange)
            await wait_for(pilot, lambda: ex.sections >= 2, 10, "two sections")
            assert factory.sessions[0].closed  # the reader's context was freed first
            assert "summarizing" in status_text(app) and "ETA" in status_text(app)  # from the 2nd section on
            box = app.screen.query_one("#question")
            box.focus()
            await pilot.press("escape")
            await wait_for(pilot, lambda: ex.done, 5, "the stop")
            n = ex.sections
            assert 2 <= n < 5 and "stopped" in str(ex.note.render())
            assert "**Page 1** · p. 1" not in ex.text and "**p. 1**" in ex.text  # heading: the page range
            assert "Overview" not in ex.text
            await wait_for(pilot, lambda: reader(app).state == "ready", 20, "reading again")
            assert len(factory.sessions) == 2 and reader(app).engine.released == 1
            assert any("reading it again" in m for m in notifications(app, "warning"))
            assert Library().history(str(pdf)) == []  # a stopped summary is no summary

            runner.mode = "fail"
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(app.screen.query(SummaryExchange)) == 2
                           and app.screen.query(SummaryExchange)[-1].done, 5, "the failure")
            assert any("no usable summary" in m for m in notifications(app, "error"))
            assert "error" in str(app.screen.query(SummaryExchange)[-1].note.render())

            runner.mode = "run"
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(app.screen.query(SummaryExchange)) == 3
                           and app.screen.query(SummaryExchange)[-1].done, 20, "the summary")
            ex = app.screen.query(SummaryExchange)[-1]
            assert ex.sections == 5 and ex.text.rstrip().endswith("A test book of pages."), (str(ex.note.render()), notifications(app))
            assert ex.text.index("**p. 5**") < ex.text.index("**Overview**")
            assert [b.citation["locator"] for b in ex.query(CitationButton)] == [f"p. {i}" for i in range(1, 6)]
            await wait_for(pilot, lambda: reader(app).state == "ready", 20, "reading again")
            hist = Library().history(str(pdf))
            assert len(hist) == 1 and hist[0].answer == ex.text

            runner.mode = "cached"
            sessions = len(factory.sessions)
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(app.screen.query(SummaryExchange)) == 4
                           and app.screen.query(SummaryExchange)[-1].done, 5, "the cached summary")
            again = app.screen.query(SummaryExchange)[-1]
            assert again.text == ex.text and "from the summary cache" in str(again.note.render())
            assert len(factory.sessions) == sessions and not factory.sessions[-1].closed
            assert len(Library().history(str(pdf))) == 1  # not saved twice
            out = reader(app).export_to(str(tmp_path / "notes.md"))
            assert "## Summarize this book" in out.read_text() and "A test book of pages." in out.read_text()
        # Reopened, the history shows the summary as a summary.
        app = BookpotApp(str(pdf), session_factory=fake_factory(), summary_runner=runner)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            (shown,) = app.screen.query(SummaryExchange)
            assert "A test book of pages." in shown.answer.source

    run(go())


def test_search_goto_export_and_back_to_library(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=8)
    factory = fake_factory(token_delay=0.0, answer_words=5)

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: len(text.blocks) == 8, 10, "the text")
            # search works whatever the ingestion state
            await pilot.press("ctrl+f")
            await pilot.press(*"lighthouse")
            await pilot.press("enter")
            assert text.match is not None and text.match[0] == 1
            await pilot.press("escape")
            assert text.match is None
            await pilot.press("ctrl+g")
            await pilot.press("6", "enter")
            await pilot.pause()
            assert text.top_block() == 5
            await pilot.press("ctrl+g")
            await pilot.press("9", "9", "enter")
            assert any("no page" in m for m in notifications(app, "warning"))
            await pilot.press("escape")
            # a question, then export
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            ex = await ask(pilot, app, "Who keeps the lighthouse?")
            await wait_for(pilot, lambda: ex.done, 10, "the answer")
            dest = tmp_path / "out" / "notes.md"
            await pilot.press("ctrl+s")
            await pilot.pause()
            box = app.screen.query_one("#prompt-input")
            box.value = str(dest)
            await pilot.press("enter")
            await pilot.pause()
            assert "Who keeps the lighthouse?" in dest.read_text()
            assert any(str(dest) in m for m in notifications(app))
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            # the reader's session is closed by its own thread, soon after
            await wait_for(pilot, lambda: factory.sessions[0].closed, 10, "the book's session closed")
            table = app.screen.query_one("#books")
            assert table.row_count == 1

    run(go())


def test_goto_bar_resets_titles_follow_and_text_chapters_are_targets(tmp_path):
    """Go to: a failed entry is replaced by the next one typed (not appended to), the bar
    opens empty, the pane title names the range on top after every jump, and a plain
    text file's chapter headings are targets (the heading's line on top)."""
    book = tmp_path / "chapters.txt"
    roman = ["I", "II", "III", "IV", "V", "VI"]
    book.write_text("".join(f"CHAPTER {r}.\n\n" + "".join(
        f"Line {k} of chapter {r} tells of the lighthouse and the sea.\n\n" for k in range(40)) for r in roman))

    async def go():
        app = BookpotApp(str(book), session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: text.blocks and reader(app).state == "ready", 10, "the text")
            pane = app.screen.query_one("#text-pane")
            bar = app.screen.query_one("#goto")

            def title_is_top():  # the place jumped to, even at the end where it cannot be on top
                return pane.border_title.startswith(text.blocks[text.target].label)

            await pilot.press("ctrl+g", *"chapter iii", "enter")
            await pilot.pause()
            i = text.top_block()
            y = int(text.scroll_offset.y)
            bi, s, e = text._lines[y]
            assert bi == i and text.blocks[bi].text[s:e] == "CHAPTER III."  # the heading's line on top
            assert title_is_top()
            await pilot.press("ctrl+g")
            assert bar.value == ""  # a new target, not the last one
            assert "Close" not in footer_text(app)  # a bar open: Esc closes it, the footer keeps its keys
            await pilot.press(*"99999", "enter")
            await pilot.pause()
            assert any("no page, line or chapter" in m for m in notifications(app, "warning"))
            await pilot.press("2", "0", "0", "enter")  # replaces "99999"
            await pilot.pause()
            assert not bar.display
            loc = text.blocks[text.top_block()].locator
            assert loc.line_start <= 200 <= loc.line_end and title_is_top()
            for target in ("1", "chapter vi", "3", "490", "400"):
                await pilot.press("ctrl+g", *target, "enter")
                await pilot.pause()
                assert title_is_top(), (target, pane.border_title)

    run(go())


def test_library_lists_opens_and_removes_books(tmp_path):
    a = make_book_pdf(tmp_path / "a.pdf", pages=2)
    b = make_book_pdf(tmp_path / "b.pdf", pages=2)
    lib = Library()
    lib.touch(str(a), title="Book A", format="pdf", pages=2, state="ready", tokens=1234, model="smollm2-135m")
    time.sleep(0.01)
    lib.touch(str(b), title="Book B", format="pdf", pages=2, state="failed", error="x")
    factory = fake_factory()

    async def go():
        app = BookpotApp(session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#books")
            assert table.row_count == 2
            assert app.screen.selected_path() == str(b)  # most recent first
            await pilot.press("delete")  # asks first; "n" (or Esc) keeps the book
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("n")
            await pilot.pause()
            assert table.row_count == 2 and Library().get(str(b)) is not None
            await pilot.press("delete")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert table.row_count == 1 and Library().get(str(b)) is None
            # Delete in the path box deletes a character, and where there is none it says so.
            box = app.screen.query_one("#path")
            box.focus()
            box.value = "ab"
            await pilot.press("home", "delete")
            assert box.value == "b"
            await pilot.press("end", "delete")
            await pilot.pause()
            assert box.value == "b" and table.row_count == 1
            assert any("to remove a book" in m for m in notifications(app, "warning"))
            table.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen), 5, "the reader")
            assert app.screen.path == str(a)

    run(go())


def fake_state(root: Path, book: Path, key: str, status: str, progress: float, tokens: int) -> Path:
    """A saved book state as the book cache writes its manifest (no KV needed for the list)."""
    d = root / "books" / key
    (d / "units").mkdir(parents=True)
    (d / "state.bin").write_bytes(b"x" * 1000)
    (d / "manifest.json").write_text(json.dumps({
        "key": key, "status": status, "progress": progress, "doc_tokens": tokens,
        "document": {"path": str(book), "hash": store.document_hash(book)}}))
    return d


def test_library_state_comes_from_the_cache_and_remove_clears_it(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOOKPOT_CACHE_DIR", str(cache))
    a = make_book_pdf(tmp_path / "a.pdf", pages=2)
    b = make_book_pdf(tmp_path / "b.pdf", pages=3)
    c = make_book_pdf(tmp_path / "c.pdf", pages=4)
    a_state = fake_state(cache, a, "aaaa", "ready", 1.0, 2345)
    a_other = fake_state(cache, a, "aaab", "ingesting", 0.1, 99)  # another model's state of a
    b_state = fake_state(cache, b, "bbbb", "ingesting", 0.42, 777)
    lib = Library()
    # what the reader screens recorded; the cache knows better
    lib.touch(str(a), title="A", state="paused", progress=0.5, tokens=10, cache_key="aaaa",
              doc_hash=store.document_hash(a), read_s=19 * 60 + 10)
    lib.add_qa(str(a), QA("Who?", "Ilse."))
    lib.touch(str(b), title="B", state="ready", tokens=10, cache_key="bbbb")
    lib.touch(str(c), title="C", state="ready", tokens=10, cache_key="cccc")  # its state was cleared

    async def go():
        app = BookpotApp(session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#books")
            rows = {str(table.get_row(str(p))[0]): table.get_row(str(p))[1:4] for p in (a, b, c)}
            size_a = sum(f.stat().st_size for d in (a_state, a_other) for f in d.rglob("*") if f.is_file())
            assert rows == {"A": ["ready", "2,345", f"{size_a // 1024} KiB"],  # disk: both of A's states
                            "B": ["ingesting 42%", "777", "–"],  # no hash recorded: not guessed
                            "C": ["new", "–", "–"]}
            table.move_cursor(row=table.get_row_index(str(a)))
            await pilot.press("delete")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog) and Library().get(str(a)) is not None
            body = str(dialog.query_one(".confirm-body").render())
            size = sum(f.stat().st_size for d in (a_state, a_other) for f in d.rglob("*") if f.is_file())
            assert f"{size // 1024:,} KiB on disk" in body and "about 19 min of reading" in body, body
            assert "2,345 tokens" in body and "1 question" in body
            await pilot.click("#confirm")
            await pilot.pause()
            assert Library().get(str(a)) is None
            assert not a_state.exists() and not a_other.exists() and b_state.exists()
            assert any("2 saved states" in m for m in notifications(app))
            # a state in use by a reader is kept, and the user is told
            import fcntl
            fd = os.open(b_state / "lock", os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                table.move_cursor(row=table.get_row_index(str(b)))
                await pilot.press("delete")
                await pilot.pause()
                await pilot.press("y")
                await pilot.pause()
            finally:
                os.close(fd)
            assert Library().get(str(b)) is None and b_state.exists()
            assert any("was kept" in m for m in notifications(app, "warning"))

    run(go())


def test_waiting_for_another_reader_and_closing_meanwhile(tmp_path, monkeypatch):
    """Another process holds the book's lock: the reader says it waits, and closing
    the app then does not hang on that lock. The gauge shows the plan's cap."""
    from bookpot.engine.bookcache import BookCache

    pdf = make_book_pdf(tmp_path / "book.pdf", pages=2)
    cache = BookCache(tmp_path / "cache", doc_path=str(pdf), doc_hash="h", model="m", settings={})
    sessions = []

    def factory(request):
        sessions.append(FakeSession())
        return Built(sessions[-1], cache=cache, ram_cap=2048 * 1024 * 1024)

    import fcntl
    cache.dir.mkdir(parents=True)
    fd = os.open(cache.dir / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        async def go():
            app = BookpotApp(str(pdf), session_factory=factory, rss=lambda: 300 * 1024 * 1024)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: reader(app).state == "waiting", 10, "the wait")
                assert "another bookpot is reading this book" in status_text(app)
                assert str(app.screen.query_one("#ram").render()) == "RAM 300/2,048 MB"
                assert app.screen.query_one("#ram-bar").display
                engine = reader(app).engine
                await pilot.pause(0.3)
                assert sessions[0].ingested == []  # nothing read without the lock
            t0 = time.monotonic()
            app.close_engines(wait=10)
            assert engine.done.is_set() and time.monotonic() - t0 < 5

        run(go())
    finally:
        os.close(fd)


def test_encrypted_pdf_asks_for_the_password_and_browse_opens(tmp_path):
    locked = docgen.make_pdf(tmp_path / "locked.pdf", ["secret page one", "secret page two"],
                             password="pw")
    plain = make_book_pdf(tmp_path / "plain.pdf", pages=2)

    async def go():
        app = BookpotApp(str(locked), session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, PromptDialog)
            await pilot.press("x", "enter")  # wrong
            await pilot.pause()
            assert isinstance(app.screen, PromptDialog) and "Wrong password" in app.screen.title_text
            await pilot.press("p", "w", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen), 5, "the reader")
            await wait_for(pilot, lambda: len(app.screen.query_one(BookText).blocks) == 2, 5, "text")
            await pilot.press("ctrl+l")
            await pilot.press("ctrl+b")
            await pilot.pause()
            assert isinstance(app.screen, FileBrowser)
            app.screen.dismiss(str(plain))  # what choosing a file in the tree does
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen)
                           and app.screen.path == str(plain), 5, "the chosen book")

    run(go())


def test_open_with_a_folder_shows_the_file_browser_there(tmp_path):
    """`bookpot open FOLDER`: the file browser at that folder (before: "Cannot open the book"),
    and the book chosen in it opens."""
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    book = make_book_pdf(shelf / "a.pdf", pages=2)

    async def go():
        app = BookpotApp(str(shelf), session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, FileBrowser) and app.screen.root == shelf
            assert not notifications(app, "error")
            app.screen.dismiss(str(book))  # what choosing a file in the tree does
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen) and app.screen.path == str(book),
                           5, "the chosen book")

    run(go())


def test_getting_to_a_file_parent_folder_pasted_quotes_home_and_variables(tmp_path, monkeypatch):
    """Issue #22 item 7: the browser goes up to the parent folder (Backspace); the path
    box takes a pasted quoted or shell-escaped path, ``~``, ``$VARS`` and file:// URLs."""
    shelf = tmp_path / "shelf"
    (shelf / "sub").mkdir(parents=True)
    spaced = make_book_pdf(shelf / "My Book.pdf", pages=2)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHELF", str(shelf))
    monkeypatch.chdir(shelf / "sub")

    async def go():
        app = BookpotApp(session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+b")
            await pilot.pause()
            browser = app.screen
            assert isinstance(browser, FileBrowser) and browser.root == shelf / "sub"
            await pilot.press("backspace")
            await pilot.pause()
            tree = browser.query_one("#browser-tree")
            assert Path(tree.path) == shelf and str(shelf) in str(browser.query_one("#browser-title").render())
            await wait_for(pilot, lambda: any(n.data and n.data.path == spaced for n in tree.root.children),
                           5, "the parent folder's books in the tree")
            await pilot.press("escape")
            for typed in (f"'{spaced}'", f'"{spaced}"', str(spaced).replace(" ", "\\ "),
                          "~/shelf/My Book.pdf", "$SHELF/My Book.pdf", "${SHELF}/My Book.pdf",
                          "file://" + str(spaced).replace(" ", "%20")):
                box = app.screen.query_one("#path")
                box.focus()
                box.value = typed
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen), 5, f"the book from {typed!r}")
                assert app.screen.path == str(spaced), typed
                await pilot.press("ctrl+l")
                await pilot.pause()
            assert not notifications(app, "error")

    run(go())


def test_settings_are_validated_and_persisted(tmp_path):
    async def go():
        app = BookpotApp(session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            assert isinstance(app.screen, SettingsScreen)
            app.screen.query_one("#model").value = "no-such-model"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, SettingsScreen)
            assert any("neither a known name" in m for m in notifications(app, "error"))
            app.screen.query_one("#model").value = "smollm2-135m"
            app.screen.query_one("#threads").value = "3"
            app.screen.query_one("#ram").value = "2048"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert not isinstance(app.screen, SettingsScreen)
            assert app.settings.threads == 3
        saved, _ = config.load()
        assert (saved.model, saved.threads, saved.ram_cap_mb) == ("smollm2-135m", 3, 2048)

    run(go())


def test_help_screen_and_palette_commands(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=2)

    async def go():
        app = BookpotApp(str(pdf), session_factory=fake_factory())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause()
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for t in ("Library", "Settings", "Help", "Search the text", "Go to page", "Summarize this book",
                      "Pause or resume reading", "Save notes as Markdown", "Stop the answer or summary"):
                assert t in titles
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Go to page")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert app.screen.query_one("#goto").display

    run(go())


def test_reopened_at_the_same_place_copy_an_answer_and_focus_shows(tmp_path):
    """Issue #22 item 10: a book reopens where it was left (in this app and the next);
    Ctrl+Y copies an answer with its quotes and pages; the focused pane stands out;
    Help says Esc closes it and opens at the reader's keys."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=8)
    factory = quoting_factory([quote_of(pdf, 1, SENTENCE), {"locator": "p. 4", "page": "4", "page_index": 3}])

    async def go():
        app = BookpotApp(str(pdf), session_factory=factory)
        async with app.run_test(size=SIZE) as pilot:
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: len(text.blocks) == 8 and reader(app).state == "ready", 10, "the text")
            await pilot.press("ctrl+g", "6", "enter")
            await pilot.pause()
            text.scroll_relative(y=3, animate=False, immediate=True)  # a few lines into page 6
            await pilot.pause()
            where = text.position()
            assert where[0] == 5 and where[1] > 0
            # The focused pane has the heavy border, the other one not.
            text.focus()
            await pilot.pause()
            panes = {p: app.screen.query_one(f"#{p}-pane") for p in ("text", "chat")}
            assert panes["text"].styles.border_top[0] == "heavy" and panes["chat"].styles.border_top[0] != "heavy"
            ex = await ask(pilot, app, "Who keeps the lighthouse?")
            await wait_for(pilot, lambda: ex.done, 10, "the answer")
            assert panes["chat"].styles.border_top[0] == "heavy" and panes["text"].styles.border_top[0] != "heavy"
            await pilot.press("ctrl+y")
            await pilot.pause()
            assert app.clipboard == ("Q: Who keeps the lighthouse?\nThe keeper is called Ilse Varga.\n"
                                     f"> “{SENTENCE}” — p. 2\nSources: p. 4\n")
            text.focus()  # from the text pane, Ctrl+Y copies the page on top with its place
            await pilot.press("ctrl+y")
            await pilot.pause()
            assert app.clipboard.startswith("p. 6\nThis is page 6 of the test book.")
            await pilot.press("f1")
            await pilot.pause(0.3)
            box = app.screen.query_one("#help-box")
            assert isinstance(app.screen, HelpScreen) and box.scroll_y > 0  # at the reader's keys
            assert "Esc" in str(app.screen.query_one("Markdown").source.split("## Library")[0])
            await pilot.press("escape")
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert Library().get(str(pdf)).position == list(where)
            app.open_book(str(pdf))
            await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen) and app.screen.query(BookText),
                           5, "the reader again")
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: text.position() == where, 10, f"the same place {where}, not {text.position()} {reader(app)._restore}")
        app.close_engines(wait=10)
        app = BookpotApp(str(pdf), session_factory=factory)  # the next time bookpot runs
        async with app.run_test(size=(80, 24)) as pilot:  # another width: the same place still
            text = app.screen.query_one(BookText)
            await wait_for(pilot, lambda: text.top_block() == 5, 10, "the same page")
            bi, off = text.position()
            assert bi == 5 and off <= where[1] < off + text._wrap_width + 1

    run(go())


def test_changing_the_model_asks_before_downloading_shows_progress_and_cancels(tmp_path, monkeypatch):
    """Issue #22 item 4: a model that is not on this machine is never fetched silently:
    Settings asks (size, where, free space), the download shows its progress and
    Esc cancels it; opening a book with it asks too, and "no" leaves the book closed."""
    from bookpot import models
    from bookpot.app.tui.dialogs import ModelDownload

    monkeypatch.setenv("BOOKPOT_MODELS_DIR", str(tmp_path / "models"))  # nothing fetched here
    book = make_book_pdf(tmp_path / "book.pdf", pages=2)
    calls, release = [], threading.Event()

    def fake_fetch(name, progress=None):
        calls.append(name)
        for i in range(1, 1000):
            progress(f"downloading {name} (241 MB)", i / 1000)  # raises once cancelled
            if i == 300 and not release.wait(10):
                raise AssertionError("the test never let the download go on")
            time.sleep(0.002)
        return tmp_path / "models" / "x.gguf"

    monkeypatch.setattr(models, "fetch", fake_fetch)
    size = f"{models.REGISTRY['gemma3-270m'].size / 2**20:,.0f} MB"

    async def go():
        app = BookpotApp()  # the real session factory: it would fetch models
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            app.screen.query_one("#model").value = "gemma3-270m"
            await pilot.click("#save")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog) and calls == []  # asked, nothing fetched
            body = str(app.screen.query_one(".confirm-body").render())
            assert size in body and "PyPI" in body and "free" in body, body
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelDownload)
                           and app.screen.query_one("#download-bar").progress >= 29, 10, "the progress")
            dialog = app.screen
            assert calls == ["gemma3-270m"] and dialog.steps[-1].startswith("downloading gemma3-270m")
            await pilot.press("escape")
            release.set()
            await wait_for(pilot, lambda: not isinstance(app.screen, ModelDownload), 10, "the cancel")
            assert any("download cancelled" in m for m in notifications(app, "warning"))
            assert app.settings.model == "gemma3-270m"  # the choice is saved; the download was not made
            # Opening a book with it asks again; "n" leaves the book unopened.
            assert app.open_book(str(book)) is False
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("n")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen) and calls == ["gemma3-270m"]
            assert any("choose a downloaded model in Settings" in m for m in notifications(app, "warning"))
            # And once said yes to, a download that finishes says so.
            release.set()
            app.ask_download("gemma3-270m")
            await pilot.pause()
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen) and len(calls) == 2, 20,
                           "the download to finish")
            assert any("downloaded and checked" in m for m in notifications(app))

    run(go())


def test_engine_errors_name_the_setting_not_the_flag():
    from bookpot.app.tui.reader import reader_terms

    assert reader_terms("the window is too small to summarize in; use a larger --ram-cap") == \
        "the window is too small to summarize in; raise the RAM cap in Settings (F2)"
    swa = reader_terms("memory units are off: this model has sliding-window attention layers "
                       "(use --mode truncate, streaming or full)")
    assert "--" not in swa and "Settings, F2" in swa
    assert "--" not in reader_terms("exceed the model's trained window (8192); use fewer --units or a smaller pot")


def test_usable_at_80x24_in_light_theme(tmp_path):
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=3)

    async def go():
        app = BookpotApp(str(pdf), Settings(theme="textual-light"), session_factory=fake_factory())
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
            assert app.theme == "textual-light"
            for wid in ("#text", "#chat", "#question", "#status"):
                w = app.screen.query_one(wid)
                assert w.region.width > 0 and w.region.height > 0, wid
            assert app.screen.query_one("#question").region.bottom <= 24

    run(go())


# ----------------------------------------------------------------- snapshots
try:
    import pytest_textual_snapshot  # noqa: F401
    HAVE_SNAPSHOTS = True
except ImportError:  # pragma: no cover - the plugin is a test-only extra
    HAVE_SNAPSHOTS = False
needs_snapshots = pytest.mark.skipif(not HAVE_SNAPSHOTS, reason="pytest-textual-snapshot not installed")


def steady_cursors(app) -> None:
    """A blinking cursor would make every snapshot a coin toss."""
    from textual.widgets import Input

    for box in app.screen.query(Input):
        box.cursor_blink = False


def _fixed_library(tmp_path) -> None:
    lib = Library()
    records = [
        BookRecord("/books/moby-dick.epub", "Moby-Dick", "epub", None, "ready", 1.0, 281_345, "smollm2-135m", "", 3.0),
        BookRecord("/books/report.pdf", "Annual report", "pdf", 212, "ingesting", 0.42, 51_200, "smollm2-135m", "", 2.0),
        BookRecord("/books/scan.pdf", "scan.pdf", "pdf", 12, "failed", 0.0, 0, "gemma3-270m", "no text", 1.0),
    ]
    for r in records:
        lib.upsert(r)


def _snapshot_book(tmp_path) -> Path:
    return docgen.make_pdf(tmp_path / "snapshot-book.pdf", [
        "Call me Ishmael. Some years ago, never mind how long precisely, having little money in my purse.",
        "The lighthouse keeper is called Ilse Varga. She lives on the cliff above the harbour.",
        "The pass key is 73914. Remember it.",
    ])


THEMES = ["textual-dark", "textual-light"]


@needs_snapshots
@pytest.mark.parametrize("theme", THEMES)
def test_snapshot_library(snap_compare, tmp_path, theme):
    _fixed_library(tmp_path)
    assert snap_compare(BookpotApp(settings=Settings(theme=theme)), terminal_size=(80, 24))


@needs_snapshots
@pytest.mark.parametrize("theme", THEMES)
def test_snapshot_settings(snap_compare, tmp_path, theme):
    app = BookpotApp(settings=Settings(ram_cap_mb=1024, threads=2, theme=theme))

    async def before(pilot):
        await pilot.press("f2")
        await pilot.pause()
        steady_cursors(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@needs_snapshots
@pytest.mark.parametrize("theme,size", [("textual-dark", (100, 30)), ("textual-light", (80, 24))])
def test_snapshot_reader(snap_compare, tmp_path, theme, size):
    """An answer with its quote and a locator-only source under it."""
    pdf = _snapshot_book(tmp_path)
    quote = quote_of(pdf, 1, "The lighthouse keeper is called Ilse Varga.")
    app = BookpotApp(str(pdf), Settings(theme=theme, ram_cap_mb=1024),
                     session_factory=quoting_factory([quote, {"locator": "p. 3", "page": "3", "page_index": 2}]),
                     rss=lambda: 300 * 1024 * 1024)

    async def before(pilot):
        await wait_for(pilot, lambda: reader(app).state == "ready", 10, "fake ingestion")
        ex = await ask(pilot, app, "Who keeps the lighthouse?")
        await wait_for(pilot, lambda: ex.done, 10, "the answer")
        app.clear_notifications()
        steady_cursors(app)
        await pilot.pause(0.2)
        # Drawn to its end (under load the last lines came a refresh after ``done``).
        await wait_for(pilot, lambda: all(w in app.export_screenshot() for w in ("Varga.", "p.&#160;3")), 10,
                       "the whole answer on screen")

    assert snap_compare(app, terminal_size=size, run_before=before)


class HeldSession(FakeSession):
    """Reads ``read`` segments, then holds (a snapshot's steady state) until interrupted;
    an answer gives ``words`` pieces, then holds until stopped. Deterministic status lines:
    one progress message (no ETA yet, the message's tok/s), two answer tokens (no rate yet)."""

    read = 1
    words = 2

    def ingest(self, segments, *, progress=None, cancel=None, after_chunk=None):
        if len(self.ingested) < self.read:
            n = self.read - len(self.ingested)
            it = iter(segments)
            super().ingest((next(it) for _ in range(n)), progress=progress)
            self.finished = False
        while not cancel():
            time.sleep(0.01)
        return self.stats

    def ask_stream(self, question, *, max_tokens=200, cancel=None):
        yield "The keeper is"
        yield " called"
        while not cancel():
            time.sleep(0.01)
        self.last_answer = Answer("The keeper is called", [], self.stats, partial=True)


def _held_app(pdf, theme):
    return BookpotApp(str(pdf), Settings(theme=theme, ram_cap_mb=1024),
                      session_factory=lambda request: Built(HeldSession()), rss=lambda: 300 * 1024 * 1024)


@needs_snapshots
@pytest.mark.parametrize("theme", THEMES)
def test_snapshot_reader_reading_80x24(snap_compare, tmp_path, theme):
    """While reading: the footer whole, the status with tokens, tok/s and ETA."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=5)
    app = _held_app(pdf, theme)

    async def before(pilot):
        await wait_for(pilot, lambda: "tok/s" in status_text(app), 10, "the first progress")
        await wait_for(pilot, lambda: len(app.screen.query_one(BookText).blocks) == 5, 10, "the text")
        # Numbers that do not depend on this machine's speed: 150 tok/s on average so far.
        screen = reader(app)
        screen._eta.seconds_per_unit, screen._eta._last = 1 / 150, None
        screen.on_ingest_progress(IngestProgress(48_000, 0.4, 0.0, None, "p. 2"))
        assert "reading 40% · 48,000 tok · 150 tok/s · ETA 8:00" in status_text(app)
        app.clear_notifications()
        steady_cursors(app)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@needs_snapshots
@pytest.mark.parametrize("theme", THEMES)
def test_snapshot_reader_answering_80x24(snap_compare, tmp_path, theme):
    """While answering: the status says reading is paused, Stop is in the footer."""
    pdf = make_book_pdf(tmp_path / "book.pdf", pages=5)
    app = _held_app(pdf, theme)

    async def before(pilot):
        await wait_for(pilot, lambda: "tok/s" in status_text(app), 10, "the first progress")
        ex = await ask(pilot, app, "Who keeps the lighthouse?")
        await wait_for(pilot, lambda: "answering · 2 tok" in status_text(app), 10, "the answer's tokens")
        await wait_for(pilot, lambda: len(app.screen.query_one(BookText).blocks) == 5, 10, "the text")
        assert ex.text == "The keeper is called"
        app.clear_notifications()
        steady_cursors(app)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
