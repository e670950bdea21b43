"""The reader screen: the book's text, the chat, and the engine behind them.

Two readers of the same file run side by side: a fast one fills the text
pane (so the whole book is readable and searchable at once), and the
engine's one feeds the model, which is much slower. The engine lives in a
thread worker (see ``worker.py``); this screen only reacts to its messages
and keeps the library record and the Q&A history up to date.

A book not read whole is first indexed (the engine's text pass: reader and
tokenizer only, seconds for a text file), and from then on a question is
answered at once from the whole book while reading goes on behind; the
answer says when it drew on pages not read yet (issue #19).

"Summarize this book" (Ctrl+R, or the command palette) queues a summary on
the engine thread; its sections stream into the chat as they are written,
and the finished summary joins the book's history (and so the exported
notes) as an entry of its own.
"""
from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input

from ...engine import store
from ...engine.readers import DocumentInfo, Reader, open_document
from ..library import QA, Library, export_notes, default_notes_path
from .booktext import Block, BookText
from .chat import SUMMARY_QUESTION, ChatLog, CitationButton, Exchange, QuoteLink, SummaryExchange, exchange_text
from .dialogs import PromptDialog
from .messages import (AnswerDone, AnswerPiece, AnswerStarted, BookIndexed, BookOpened, DocBlocks, EngineFailed,
                       EngineNote, IndexProgress, IngestProgress, IngestState, ModelLoading, ModelReady, SummaryDone, SummarySection,
                       SummaryStarted, SummaryStatus)
from .library import fmt_bytes
from .status import Eta, StatusBar, fmt_eta, fmt_progress
from .worker import BookEngine, BookRequest, default_summary_runner, one_line

LIBRARY_SAVE_EVERY_S = 3.0
DISK_NOTE_BYTES = 100 * 2**20  # a read that keeps this much on disk is announced


# The engine's errors name the CLI's options; the reader has Settings (F2) instead.
_READER_TERMS = [
    (re.compile(r"use a larger --ram-cap"), "raise the RAM cap in Settings (F2)"),
    (re.compile(r"\(?use --mode [\w ,]+\)?"),
     "(for whole books choose a model without them, such as smollm2-135m, in Settings, F2)"),
    (re.compile(r"use --mode auto"), "choose another model in Settings (F2)"),
    (re.compile(r"use a (smaller|larger) --pot-tokens( or fewer --units)?"),
     "change the RAM cap in Settings (F2)"),
    (re.compile(r"use fewer --units or a smaller pot"), "lower the RAM cap or choose another model in Settings (F2)"),
    (re.compile(r"use --prompt-style completion"), "choose another model in Settings (F2)"),
    (re.compile(r"--ram-cap"), "the RAM cap (Settings, F2)"),
    (re.compile(r"(run )?`?bookpot models fetch [\w.-]+`?"), "choose it in Settings (F2) and say yes to the download"),
]


def reader_terms(error: str) -> str:
    """An engine error in the reader's words: which setting to change, not which flag."""
    for pattern, words in _READER_TERMS:
        error = pattern.sub(words, error)
    return error


def existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
MB = 1024 * 1024


class ReaderScreen(Screen):
    """Read one book and ask about it.

    Larger than ~250 lines: it is the one screen that turns the worker's
    messages (messages.py) into the text view, the chat and the status
    line; the widgets themselves live in booktext.py, chat.py and status.py.
    """

    AUTO_FOCUS = "#question"

    BINDINGS = [
        # Short labels: the whole footer fits 80 columns (issue #22 item 2); Help has the long ones.
        Binding("escape", "escape", "Stop"),
        Binding("escape", "close_bar", "Close", show=False),  # the bars' placeholders say Esc closes
        Binding("ctrl+r", "summarize", "Summary", priority=True),
        Binding("ctrl+f", "search", "Find", priority=True),
        Binding("ctrl+g", "goto", "Go to", priority=True),
        Binding("ctrl+t", "toggle_pause", "Pause", priority=True),
        Binding("ctrl+s", "export", "Notes", priority=True),
        Binding("ctrl+l", "library", "Library", priority=True),
        Binding("ctrl+y", "copy_answer", "Copy", priority=True, show=False),
    ]

    def __init__(self, path: str, reader: Reader, info: DocumentInfo, *, model_name: str,
                 threads: int | None, ram_cap_mb: int | None, library: Library,
                 session_factory, rss, password: str | None = None,
                 summary_runner=default_summary_runner, at_quote: dict | None = None) -> None:
        super().__init__()
        self._at_quote = at_quote  # a citation to show once its page's text is in (asked from the library)
        self.path = path
        self.reader = reader
        self.info = info
        self.password = password
        self.model_name = model_name
        self.threads = threads
        self.ram_cap_mb = ram_cap_mb
        self.library = library
        self.session_factory = session_factory
        self.summary_runner = summary_runner
        self.rss = rss
        self.book_title = info.title or path.rsplit("/", 1)[-1]
        self.engine: BookEngine | None = None
        self.engine_error = ""
        self.state = "loading"
        self._status_before_summary: tuple[str, float | None] | None = None
        self._text_closing = threading.Event()
        self._saved_at = 0.0
        rec = library.get(path)
        self._read_s = rec.read_s if rec is not None else 0.0  # time spent reading it, all runs
        # Where the text pane was when the book was last left: restored once its text is in.
        pos = rec.position if rec is not None else []
        self._restore: tuple[int, int] | None = (int(pos[0]), int(pos[1])) if len(pos) == 2 else None
        self._text: BookText | None = None
        self._eta = Eta(horizon=2048.0)  # reading: seconds per token, averaged over tokens
        self._summary_eta = Eta(horizon=0.02)  # a summary: seconds per fraction of the job
        self._answer: tuple[int, float, int] | None = None  # (qid, first token's time, tokens) while answering
        self._status_before_answer: tuple[str, float | None] | None = None
        self._waiting: set[int] = set()  # questions asked and not started
        self._disk_told = False  # the expected disk use was said (once per reading)
        self._left = False  # leaving() ran
        self._read_mark: float | None = None  # reading since (monotonic), while it reads

    # -- layout --------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            with Vertical(id="text-pane"):
                yield Input(placeholder="search… (Enter: next match, Esc: close)", id="search",
                            classes="bar")
                yield Input(placeholder="go to page, line or chapter… (Enter; Esc: close)", id="goto", classes="bar")
                yield BookText(id="text")
            with Vertical(id="chat-pane"):
                yield ChatLog(id="chat")
                yield Input(placeholder="Ask about the book… (Enter)", id="question")
        yield StatusBar(self.rss, self.ram_cap_mb, id="status")
        yield Footer(compact=True, show_command_palette=False)  # Ctrl+P still opens it (Help says so)

    async def on_mount(self) -> None:
        self.sub_title = self.book_title
        self.query_one("#search").display = False
        self.query_one("#goto").display = False
        self.query_one("#text-pane").border_title = "text"
        self.query_one("#chat-pane").border_title = f"chat · {self.model_name}"
        self.query_one(StatusBar).set_state("loading the model…", 0)
        await self._show_history()
        self._load_text()
        self._start_engine()

    async def _show_history(self) -> None:
        chat = self.query_one(ChatLog)
        for qa in self.library.history(self.path):
            if qa.question == SUMMARY_QUESTION:
                ex = SummaryExchange(answer=qa.answer)
            else:
                ex = Exchange(qa.question, answer=qa.answer)
            await chat.mount(ex)
            ex.show_meta(qa.citations, qa.partial, qa.cancelled, units=qa.units, answered=qa.answered,
                         from_unread=qa.from_unread, read_fraction=qa.read_fraction, indexed=qa.indexed)
        chat.scroll_end(animate=False)

    def _start_engine(self) -> None:
        try:
            segments = open_document(self.path, self.password).segments()
        except Exception as e:  # noqa: BLE001
            self._engine_failed(one_line(e))
            return
        info = self.info
        request = BookRequest(self.path, self.model_name, threads=self.threads, ram_cap_mb=self.ram_cap_mb,
                              doc_info={"title": info.title, "format": info.format,
                                        "size_bytes": info.size_bytes}, password=self.password)
        self.engine = BookEngine(segments, request, self.post_message, session_factory=self.session_factory,
                                 open_segments=lambda: open_document(self.path, self.password).segments(),
                                 summary_runner=self.summary_runner)
        self.app.track_engine(self.engine)
        self.run_worker(self.engine.run, thread=True, exit_on_error=False, name="engine", group="engine")

    def on_unmount(self) -> None:
        self.leaving()

    def leaving(self) -> None:
        """The book is being left: stop the engine (it checkpoints in the background) and
        record it as paused, with its reading time and place, before the library shows it
        (otherwise the library said "ingesting" until the engine had finished closing)."""
        if self._left:
            return
        self._left = True
        self._text_closing.set()
        self._count_reading(False)
        self._remember_position()
        if self.engine is not None:
            self.engine.close()
            if self.state in ("reading", "loading", "waiting", "indexing"):
                self._save_record(state="paused")

    # -- the text pane -------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="text")
    def _load_text(self) -> None:
        """Read the whole document for display, in batches, off the UI thread."""
        batch: list[Block] = []
        last = time.monotonic()
        try:
            for seg in self.reader.segments():
                if self._text_closing.is_set():
                    return
                batch.append(Block(seg.text, seg.locator))
                if len(batch) >= 64 or time.monotonic() - last > 0.2:
                    self.post_message(DocBlocks(batch))
                    batch, last = [], time.monotonic()
        except Exception as e:  # noqa: BLE001
            self.post_message(DocBlocks(batch, done=True, error=one_line(e)))
            return
        self.post_message(DocBlocks(batch, done=True))

    def on_doc_blocks(self, msg: DocBlocks) -> None:
        text = self._text = self.query_one(BookText)
        if msg.blocks:
            text.add_blocks(msg.blocks)
        if self._at_quote is not None:
            self._restore = None  # the quote's page wins over where the book was left
            spans = text.find_quote(self._at_quote)
            if spans:
                self.call_after_refresh(text.show_quote, spans)
                self._at_quote = None
            elif msg.done:
                self.jump_to_citation(self._at_quote)
                self._at_quote = None
        self._try_restore(msg.done)
        if msg.error:
            self.notify(msg.error, title="Reading the text failed", severity="error")

    def _try_restore(self, done: bool, tries: int = 20) -> None:
        """Back to where the book was left, once that part of the text is in."""
        text, where = self._text, self._restore
        if where is None or text is None:
            return
        if text.scroll_offset.y > 0 or text.target is not None:
            self._restore = None  # the reader moved already: theirs wins
        elif text.restore(*where):
            self._restore = None
        elif where[0] >= len(text.blocks):
            if done:
                self._restore = None  # the book is shorter than it was
        elif tries > 0:  # loaded, not laid out yet
            text.scroll_home(animate=False, immediate=True)  # not the reader's move: try again
            self.set_timer(0.1, lambda: self._try_restore(done, tries - 1))
        else:
            self._restore = None

    def on_book_text_located(self, msg: BookText.Located) -> None:
        pages = f" / {self.info.pages} pages" if self.info.pages else ""
        self.query_one("#text-pane").border_title = f"{msg.label}{pages}" if msg.label else "text"
        if self._restore is None and time.monotonic() - self._saved_at > LIBRARY_SAVE_EVERY_S:
            self._remember_position()

    def _remember_position(self) -> None:
        """Keep where the text pane is in the library record (reopened there)."""
        text = self._text
        if text is None or self._restore is not None:
            return  # never read, or not restored yet: the saved place stays
        pos = text.position()
        if pos is not None:
            self._save_record(position=list(pos))

    # -- engine messages -----------------------------------------------------
    def on_model_loading(self, msg: ModelLoading) -> None:
        self.state = "loading"
        self.query_one(StatusBar).set_state(f"loading {msg.model}…")

    def on_model_ready(self, msg: ModelReady) -> None:
        self.query_one(StatusBar).set_state("model loaded; opening the book…")

    def on_book_opened(self, msg: BookOpened) -> None:
        """The session's plan and cache: the RAM gauge's cap, the library's link to the state."""
        if msg.ram_cap:
            self.query_one(StatusBar).set_cap(max(1, msg.ram_cap // MB))
        if msg.cache_key:
            self._save_record(cache_key=msg.cache_key, doc_hash=msg.doc_hash or "")

    def on_engine_note(self, msg: EngineNote) -> None:
        self.notify(reader_terms(msg.text), severity=msg.severity, timeout=8 if msg.severity == "error" else 5)

    def on_engine_failed(self, msg: EngineFailed) -> None:
        self._engine_failed(msg.error)

    def _engine_failed(self, error: str) -> None:
        error = reader_terms(error)
        self.state = "failed"
        self.engine_error = error
        self.query_one(StatusBar).set_state(f"failed: {error}")
        self.notify(error, title="Cannot ask about this book", severity="error", timeout=10)
        self._save_record(state="failed", error=error)

    def _count_reading(self, still: bool) -> None:
        """Add the time read since the last mark to the book's reading time."""
        now = time.monotonic()
        if self._read_mark is not None:
            self._read_s += now - self._read_mark
        self._read_mark = now if still else None

    def on_ingest_progress(self, msg: IngestProgress) -> None:
        self._count_reading(True)
        if not self._disk_told:
            self._disk_told = True
            self._tell_disk_use(msg.tokens, msg.progress)
        p = msg.progress
        self._eta.add(msg.tokens, time.monotonic())
        remaining = msg.tokens * (1 - p) / p if p > 0 else None  # tokens left, by the pages/bytes read
        tps = self._eta.per_second or msg.tokens_per_s
        if self._waiting:  # the chunk a question waits for
            self.query_one(StatusBar).set_state(f"question asked: reading pauses after this chunk ({p:.0%})…", p)
        else:
            self.query_one(StatusBar).set_state(
                f"reading {p:.0%} · " + fmt_progress(msg.tokens, tps, self._eta.eta(remaining)), p)
        if time.monotonic() - self._saved_at > LIBRARY_SAVE_EVERY_S:
            self._save_record(state="ingesting", progress=msg.progress, tokens=msg.tokens)

    def on_index_progress(self, msg: IndexProgress) -> None:
        """The text pass: how far the whole book has been cut and indexed (no model work)."""
        p = msg.progress
        rate = f" · {msg.tokens_per_s:,.0f} tok/s" if msg.tokens_per_s else ""
        if self._waiting:
            text = f"question asked: answered once the book is indexed ({p:.0%})…"
        else:
            text = f"indexing for questions {p:.0%} · {msg.tokens:,} tok{rate}"
        self.query_one(StatusBar).set_state(text, p)

    def on_book_indexed(self, msg: BookIndexed) -> None:
        if not msg.quiet:
            self.notify(f"{self.book_title}: indexed ({msg.tokens:,} tokens in {msg.seconds:,.1f} s); "
                        "questions are answered from the whole book while it is read")

    def _tell_disk_use(self, tokens: int, progress: float) -> None:
        """Before a long read goes far: the memory units it will keep on disk, and the free space.

        Per token as the first chunk's units were written (else f16 K and V of
        every layer), times the book's tokens as its first pages predict,
        within the units' disk cap. Said when it is ``DISK_NOTE_BYTES`` or more."""
        session = getattr(self.engine, "session", None)
        units = getattr(session, "units", None)
        if units is None or progress <= 0 or progress >= 1:
            return
        try:
            kv_tokens = units.units.kv_tokens()
            if kv_tokens:
                per_token = units.kv_bytes / kv_tokens
            else:
                model = session.model
                per_token = 4 * model.n_layer * model.n_head_kv * model.head_dim
            expected = int(tokens / progress * per_token)
            cap = units.cfg.disk_cap
            capped = bool(cap) and expected > cap
            expected = min(expected, cap) if cap else expected
            free = shutil.disk_usage(existing_parent(store.cache_root())).free
        except (AttributeError, OSError, TypeError, ZeroDivisionError):
            return
        if expected < DISK_NOTE_BYTES:
            return
        self.notify(f"Reading it keeps about {fmt_bytes(expected)} of memory units on disk"
                    + (" (the cap: half the free space)" if capped else "")
                    + f"; {fmt_bytes(free)} free. The library shows each book's share; "
                    "removing a book there frees it.", title="Disk", timeout=12)

    def on_ingest_state(self, msg: IngestState) -> None:
        self.state = msg.state
        self._eta.pause()  # the time until the next chunk's news is not reading time
        if msg.state == "reading":
            self._read_mark = time.monotonic()  # an answer in between is not reading time
        else:
            self._count_reading(False)
        bar = self.query_one(StatusBar)
        if msg.state == "waiting":
            bar.set_state("waiting: another bookpot is reading this book…", msg.progress)
        elif msg.state == "indexing":
            bar.set_state("indexing for questions…", 0)
        elif msg.state == "reading":
            bar.set_state(f"reading {msg.progress:.0%} · {msg.tokens:,} tok", msg.progress)
        elif msg.state == "paused":
            bar.set_state(f"paused at {msg.progress:.0%} · {msg.tokens:,} tok (Ctrl+T resumes)", msg.progress)
            self._save_record(state="paused", progress=msg.progress, tokens=msg.tokens)
        elif msg.state == "ready":
            cached = " · from the cache" if msg.cached else ""
            bar.set_state(f"ready · {msg.tokens:,} tokens{cached}", 1.0)
            self._save_record(state="ready", progress=1.0, tokens=msg.tokens, error="")
            how = "reopened from the cache, " if msg.cached else ""
            if not msg.quiet:
                self.notify(f"{self.book_title}: ready for questions ({how}{msg.tokens:,} tokens)")
        elif msg.state == "failed":
            error = reader_terms(msg.error)
            bar.set_state(f"stopped at {msg.progress:.0%}: {error}", msg.progress)
            self.notify(error, title="Reading stopped", severity="error", timeout=10)
            self._save_record(state="failed", progress=msg.progress, tokens=msg.tokens, error=msg.error)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The footer shows Stop only while something can be stopped, in Summary's
        place (so the footer keeps to 80 columns); both keys work whenever they mean something."""
        running = self._busy_writing()
        if action == "escape":
            return running
        if action == "close_bar":
            return not running and self._bar_open()
        return not (action == "summarize" and running)

    def _busy_writing(self) -> bool:
        engine = self.engine
        return engine is not None and (engine.answering or engine.summarizing or bool(self._waiting))

    def _bar_open(self) -> bool:
        return any(bar.display for bar in self.query(".bar"))

    def _paused_for_answer(self) -> str:
        engine = self.engine
        if engine is None or engine.exhausted or self.state in ("failed", "loading"):
            return ""
        return f" · reading paused at {engine.progress:.0%}"

    async def on_answer_started(self, msg: AnswerStarted) -> None:
        """The status says what happens now: passages looked up (and the question's
        prefill), then the answer's tokens; reading is paused meanwhile."""
        self.refresh_bindings()
        bar = self.query_one(StatusBar)
        if self._status_before_answer is None:
            self._status_before_answer = bar.state
        self._answer = (msg.qid, 0.0, 0)
        self._waiting.discard(msg.qid)
        engine = self.engine
        whole = engine is not None and engine.indexed and not engine.exhausted  # unread ones are read now
        bar.set_state(("looking up passages in the whole book…" if whole else "looking up passages for the question…")
                      + self._paused_for_answer())
        ex = self.query_one(ChatLog).exchange(msg.qid)
        if ex is not None:
            ex.start_stream()

    async def on_answer_piece(self, msg: AnswerPiece) -> None:
        if self._answer is not None and self._answer[0] == msg.qid:
            qid, t0, n = self._answer
            now = time.monotonic()
            t0 = t0 or now
            n += 1
            self._answer = (qid, t0, n)
            rate = f" · {(n - 1) / (now - t0):,.1f} tok/s" if n > 2 and now > t0 else ""
            self.query_one(StatusBar).set_state(f"answering · {n} tok{rate}" + self._paused_for_answer())
        chat = self.query_one(ChatLog)
        ex = chat.exchange(msg.qid)
        if ex is not None:
            await ex.write(msg.text)
            chat.scroll_end(animate=False)

    async def on_answer_done(self, msg: AnswerDone) -> None:
        self.call_after_refresh(self.refresh_bindings)
        self._answer = None
        engine, bar = self.engine, self.query_one(StatusBar)
        self._waiting.discard(msg.qid)
        if self._waiting:
            pass  # the next question's news comes next
        elif engine is not None and not engine.exhausted and not engine.paused and self.state == "reading":
            bar.set_state(f"reading resumes at {engine.progress:.0%}…")
            self._status_before_answer = None
        elif self._status_before_answer is not None:
            bar.set_state(*self._status_before_answer)
            self._status_before_answer = None
        chat = self.query_one(ChatLog)
        ex = chat.exchange(msg.qid)
        if ex is not None:
            await ex.finish(msg.citations, msg.partial, msg.cancelled, msg.error, units=msg.units, text=msg.text,
                            answered=msg.answered, from_unread=msg.from_unread,
                            read_fraction=msg.read_fraction if msg.partial else None, indexed=msg.indexed)
            self.call_after_refresh(self._show_answer, ex)
        if msg.error:
            self.notify(msg.error, title="The answer failed", severity="error")
            return
        answer, answered = msg.text, msg.answered
        if ex is not None:
            answer, answered = ex.text, ex.answered  # a stopped answer keeps what was streamed
        citations = msg.citations if answer.strip() else []
        qa = QA(msg.question, answer, citations, msg.partial, msg.cancelled, self.model_name, time.time(),
                units=msg.units, answered=answered, from_unread=msg.from_unread,
                read_fraction=msg.read_fraction if msg.partial else None, indexed=msg.indexed)
        try:
            self.library.add_qa(self.path, qa)
        except OSError as e:
            self.notify(f"could not save the answer: {e}", severity="warning")

    # -- the summary -----------------------------------------------------------
    async def action_summarize(self) -> None:
        engine = self.engine
        if engine is None or self.state == "failed" and self.engine_error or not engine.can_summarize:
            self.notify(self.engine_error or "the model is not loaded", title="Cannot summarize",
                        severity="error")
            return
        if engine.summarizing:
            self.notify("the book is being summarized already (Esc stops it)", severity="warning")
            return
        ex = SummaryExchange()
        chat = self.query_one(ChatLog)
        await chat.mount(ex)  # before the job starts: its first news may come at once
        ex.set_note("…waiting for the model", "pending")
        chat.scroll_end(animate=False)
        ex.qid = engine.summarize()

    def on_summary_started(self, msg: SummaryStarted) -> None:
        self.refresh_bindings()
        self._summary_eta = Eta(horizon=0.02)
        ex = self.query_one(ChatLog).exchange(msg.qid)
        if isinstance(ex, SummaryExchange):
            ex.set_note("…reading the book for its summary (Esc stops)", "pending")
        bar = self.query_one(StatusBar)
        self._status_before_summary = bar.state
        bar.set_state("summarizing…", 0)

    async def on_summary_section(self, msg: SummarySection) -> None:
        chat = self.query_one(ChatLog)
        ex = chat.exchange(msg.qid)
        if isinstance(ex, SummaryExchange):
            await ex.add_section(msg.section)
            chat.scroll_end(animate=False)

    def on_summary_status(self, msg: SummaryStatus) -> None:
        text = msg.text
        if msg.progress is not None:
            self._summary_eta.add(msg.progress, time.monotonic())
            eta = self._summary_eta.eta(1.0 - msg.progress)
            if eta is not None:
                text += f" · ETA {fmt_eta(eta)}"
        self.query_one(StatusBar).set_state(text, msg.progress)

    async def on_summary_done(self, msg: SummaryDone) -> None:
        self.call_after_refresh(self.refresh_bindings)
        chat = self.query_one(ChatLog)
        ex = chat.exchange(msg.qid)
        if isinstance(ex, SummaryExchange):
            await ex.finish_summary(msg.summary, msg.cancelled, msg.error)
            self.call_after_refresh(self._show_answer, ex)
        if msg.error:
            self.notify(msg.error, title="The summary failed", severity="error", timeout=10)
        elif msg.cancelled:
            self.notify("summary stopped; the chapters it finished are kept, and Ctrl+R goes on after them")
        if self._status_before_summary is not None:  # the reader's status line, until its next news
            self.query_one(StatusBar).set_state(*self._status_before_summary)
            self._status_before_summary = None
        if msg.summary is None or ex is None:
            return
        if any(qa.question == SUMMARY_QUESTION and qa.answer == ex.text
               for qa in self.library.history(self.path)):
            return  # the same summary again (from the cache): the history has it
        qa = QA(SUMMARY_QUESTION, ex.text, list(ex.sources), False, False, self.model_name, time.time())
        try:
            self.library.add_qa(self.path, qa)
        except OSError as e:
            self.notify(f"could not save the summary: {e}", severity="warning")

    def _show_answer(self, ex: Exchange) -> None:
        """A finished answer taller than the pane is shown from its start."""
        chat = self.query_one(ChatLog)
        if ex.outer_size.height > chat.scrollable_content_region.height:
            chat.scroll_to_widget(ex, top=True, animate=False)
        else:
            chat.scroll_end(animate=False)

    # -- the question box ----------------------------------------------------
    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "question":
            await self.ask(event.value)
        elif event.input.id == "search":
            self._search(event.value)
        elif event.input.id == "goto":
            self._goto(event.value)

    async def ask(self, question: str) -> None:
        question = question.strip()
        if not question:
            return
        if self.engine is None or self.state == "failed" and self.engine_error:
            self.notify(self.engine_error or "the model is not loaded", title="Cannot ask",
                        severity="error")
            return
        self.query_one("#question", Input).value = ""
        qid = self.engine.ask(question)
        self._waiting.add(qid)
        self.refresh_bindings()
        if self.state == "reading" and not self.engine.answering:
            bar = self.query_one(StatusBar)
            self._status_before_answer = self._status_before_answer or bar.state
            bar.set_state(f"question asked: reading pauses after this chunk ({self.engine.progress:.0%})…")
        elif self.state == "indexing":
            self.query_one(StatusBar).set_state("question asked: answered once the book is indexed…")
        ex = Exchange(question, qid=qid)
        chat = self.query_one(ChatLog)
        await chat.mount(ex)
        ex.set_note("…waiting for the summary to finish" if self.engine.summarizing else "…waiting for the model",
                    "pending")
        chat.scroll_end(animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if isinstance(event.button, CitationButton):
            event.stop()
            self.jump_to_citation(event.button.citation)

    def on_quote_link_chosen(self, event: QuoteLink.Chosen) -> None:
        event.stop()
        self.jump_to_quote(event.citation)

    def jump_to_citation(self, citation: dict) -> None:
        text = self.query_one(BookText)
        i = text.find_citation(citation)
        if i is None:
            self.notify(f"{citation.get('locator', '?')} is not loaded yet", severity="warning")
            return
        text.quote_spans = []
        text.scroll_to_block(i)

    def jump_to_quote(self, citation: dict) -> None:
        """Show a quote's page in the text pane with the quoted sentence highlighted."""
        text = self.query_one(BookText)
        spans = text.find_quote(citation)
        if not spans:
            self.jump_to_citation(citation)  # its page at least (or "not loaded yet")
            return
        text.show_quote(spans)

    def action_copy_answer(self) -> None:
        """Copy an answer with its quotes and pages: the one holding the focus, else the
        last finished one; from the text pane, the page (or part) on top with its
        locator (the terminal's clipboard, OSC 52)."""
        focused = self.focused
        if isinstance(focused, BookText):  # the text pane: the page (or part) on top, with its place
            i = focused.top_block()
            if i is None:
                self.notify("no text to copy yet", severity="warning")
                return
            block = focused.blocks[i]
            self.app.copy_to_clipboard(f"{block.label}\n{block.text.strip()}\n")
            self.notify(f"copied {block.label} ({len(block.text.split()):,} words)")
            return
        ex = next((w for w in (focused.ancestors_with_self if focused else []) if isinstance(w, Exchange)), None)
        if ex is None:
            done = [e for e in self.query(Exchange) if e.done]
            ex = done[-1] if done else None
        if ex is None:
            self.notify("no answer to copy yet", severity="warning")
            return
        text = exchange_text(ex)
        self.app.copy_to_clipboard(text)
        self.notify(f"copied the answer to “{ex.question[:40]}” ({len(text.splitlines())} lines)")

    # -- search & go to ------------------------------------------------------
    def _search(self, query: str) -> None:
        text = self.query_one(BookText)
        if not text.search(query):
            self.notify(f"“{query}” not found" + ("" if text.blocks else " (text still loading)"),
                        severity="warning")

    def _goto(self, target: str) -> None:
        text = self.query_one(BookText)
        bar = self.query_one("#goto", Input)
        found = text.find_target(target)
        if found is None:
            self.notify(f"no page, line or chapter “{target}”", severity="warning")
            bar.select_all()  # typing again replaces the failed entry
            return
        text.quote_spans = []
        text.scroll_to_block(*found)
        bar.display = False
        text.focus()
        self.refresh_bindings()

    def _open_bar(self, which: str) -> None:
        other = "goto" if which == "search" else "search"
        self.query_one(f"#{other}").display = False
        bar = self.query_one(f"#{which}", Input)
        if which == "goto":
            bar.value = ""  # a new target each time (the last one was reached or given up)
        bar.display = True
        self.set_focus(bar)  # now, not after this key: keys typed right after Ctrl+G go into the bar
        self.refresh_bindings()

    def action_search(self) -> None:
        self._open_bar("search")

    def action_goto(self) -> None:
        self._open_bar("goto")

    def action_escape(self) -> None:
        if self.engine is not None and (self.engine.cancel_answer() or self.engine.cancel_summary()):
            return
        self.action_close_bar()

    def action_close_bar(self) -> None:
        for bar_id in ("search", "goto"):
            bar = self.query_one(f"#{bar_id}", Input)
            if bar.display:
                bar.display = False
                if bar_id == "search":
                    self.query_one(BookText).clear_search()
                self.query_one("#question").focus()
                self.refresh_bindings()
                return

    def action_next_match(self, forward: bool = True) -> None:
        q = self.query_one("#search", Input).value
        if q:
            self.query_one(BookText).search(q, forward=forward)

    # -- ingestion control ---------------------------------------------------
    def action_toggle_pause(self) -> None:
        engine = self.engine
        if engine is None or self.state == "failed":
            self.notify("nothing is being read", severity="warning")
            return
        if engine.exhausted:
            self.notify("the whole book is already read")
            return
        if engine.paused:
            engine.resume()
            self.notify("reading resumed")
        else:
            engine.pause()
            self.notify("reading paused")

    # -- export & navigation -------------------------------------------------
    def action_export(self) -> None:
        def done(dest: str | None) -> None:
            if dest is None:
                return
            self.export_to(dest)

        self.app.push_screen(PromptDialog("Export the questions and answers to:",
                                          str(default_notes_path(self.path))), done)

    def export_to(self, dest: str | None = None):
        try:
            out = export_notes(self.path, self.book_title, self.library.history(self.path), dest or None)
        except OSError as e:
            self.notify(f"could not write the notes: {e.strerror or e}", severity="error")
            return None
        self.notify(f"notes written to {out}", title="Exported")
        return out

    def action_library(self) -> None:
        self.app.show_library()

    # -- library record ------------------------------------------------------
    def _save_record(self, **updates) -> None:
        self._saved_at = time.monotonic()
        updates.setdefault("read_s", round(self._read_s, 1))
        try:
            self.library.update(self.path, **updates)
        except OSError:
            pass  # the library is a convenience; reading goes on
