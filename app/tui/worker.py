"""The one thread that owns a book's Session (``BookEngine``; the messages it
sends are in messages.py).

A ``Session`` is not thread-safe, so everything that touches it -- loading
the model, ingesting, answering -- runs in the single loop of
``BookEngine.run`` (started as a Textual thread worker). The UI talks to it
only through flags and a question queue, and hears back only through
messages posted to the screen (``post_message`` is thread-safe).

The session is built as the CLI builds it (``engine/build.py``): sized by the
RAM plan, with memory units, the generic catalyst and the book's cache, so
a book read once -- here or by ``bookpot ask``/``ingest`` with the same
settings -- reopens with no prefill, and one closed half-way resumes from
its last checkpoint (``engine.book.Reading``).

Ingestion is interruptible between *chunks*: ``Session.ingest`` checks its
``cancel`` callback before each chunk, and stopping there loses nothing --
the next call carries on with the same segments iterator. That iterator is
the reader's own, so the TUI cuts the book into exactly the chunks the CLI
does and both share saved states (a question waits for at most one chunk,
``n_batch`` tokens). A question, a pause or a close sets the interrupt.
The lock on the book's state is held from opening to the end of reading
(or to closing), questions in between included. Checkpoints are written
every ``BOOKPOT_CHECKPOINT_S`` seconds (30) while reading, on pause, and
when the book is closed before it was read to the end.

**Summaries** (issue #6) run on this same thread, as a job between chunks,
like a question: the summarizer (``app/summarize.py``, the CLI's, so both
share the summary cache) builds its own fresh session, and a second
context beside the reader's would need a second KV cache, compute buffer
and logits under one RAM cap that the plan already fills. So when the
cache misses, the reader's session is *released* first: checkpointed to
the book cache (the lock let go) and closed; after the summary (finished,
stopped or failed) it is built again and reopened from that checkpoint --
a read book with no prefill, a half-read one resumes where it stopped.
Only the weights are shared (the same loaded ``Model``). Reading waits
meanwhile, and questions asked meanwhile wait in the queue. A cached
summary comes back at once, without touching the reader's session.

**Questions before the book is read** (issue #19): right after
``Reading.open`` (the lock held, before the first chunk) a book that is
not read whole gets its *text pass* (``Session.text_pass``,
engine/textpass.py): the reader and the tokenizer only, no decode, over
a second, fresh segments iterator (``open_segments()``, the one summaries
reopen with; the first stays the reading's). It cuts the whole book into
the chunks and units reading will make and indexes them, in seconds for
a text file (longer for a big PDF), posting ``IndexProgress`` and then
``BookIndexed``; closing the book stops it between chunks (it resumes
next time). From then on a question is answered at once from the whole
book -- the chunks holding its passages are prefilled on demand -- and
reading goes on behind after the answer, reusing those chunks.
``AnswerDone`` says whether the answer drew on parts not read yet and
how much of the book was read then. Questions asked during the pass
wait for it; without ``open_segments`` (or memory units) there is no
pass, and answers come from the part read, as before.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from textual.message import Message

from ...engine.errors import BookpotError
from .messages import (AnswerDone, AnswerPiece, AnswerStarted, BookIndexed, BookOpened, EngineFailed, EngineNote,
                       IndexProgress, IngestProgress, IngestState, ModelLoading, ModelReady, SummaryDone, SummarySection,
                       SummaryStarted, SummaryStatus)

MB = 1024 * 1024

# ---------------------------------------------------------------- sessions


@dataclass
class BookRequest:
    """What the session factory needs to know about the book and the settings."""

    path: str
    model_name: str
    threads: int | None = None
    ram_cap_mb: int | None = None  # None: engine.plan.default_cap()
    doc_info: dict = field(default_factory=dict)  # title, format, size_bytes (the cache's manifest)
    password: str | None = None


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def loaded_model(path: str):
    """The ``engine.llm.Model`` of the GGUF file ``path``, loaded once for the life of
    the process (every book's context, and the library's questions, share it)."""
    from ...engine.llm import Model

    with _MODELS_LOCK:
        model = _MODELS.get(path)
        if model is None:
            model = _MODELS[path] = Model(path)
    return model


def engine_options(model_name: str, threads: int | None, ram_cap_mb: int | None, *, pot_tokens: int | None = None,
                   units: int = 4, cache: bool = True):
    """The engine ``Options`` of the TUI's settings (the CLI's defaults: units on, cached)."""
    from ...engine.build import Options

    return Options(model=model_name, threads=threads, ram_cap=ram_cap_mb * MB if ram_cap_mb else None,
                   pot_tokens=pot_tokens, units=units, use_units=units > 0, catalyst="generic", cache=cache)


def default_session_factory(request: BookRequest, *, pot_tokens: int | None = None, units: int = 4,
                            cache: bool = True):
    """Resolve (fetching if needed) and load the model; build the book's Session.

    Returns an ``engine.build.Built`` (session, cache, plan). Loaded models are kept
    for the life of the process so opening a second book does not load the
    weights again; each book gets its own context. The RAM plan comes from
    the settings' cap (default: ``engine.plan.default_cap()``); memory units
    (``units`` per question) and the book cache are on, as in the CLI's
    defaults. ``pot_tokens`` overrides the plan's pot, like ``--pot-tokens``:
    tests use it (``functools.partial``) to read a small document past the
    pot; it changes the cache key, as it does in the CLI.
    """
    from ...engine.build import build_session, resolve_model

    path, entry, meta = resolve_model(request.model_name)
    model = loaded_model(str(path))
    opts = engine_options(request.model_name, request.threads, request.ram_cap_mb, pot_tokens=pot_tokens,
                          units=units, cache=cache)
    from ...engine.readers import open_document

    # Routed like the CLI (counted before reading), so both share saved states.
    return build_session(opts, model, entry, meta, book=request.path, doc_info=request.doc_info,
                         segments=lambda: open_document(request.path, password=request.password).segments())


@dataclass
class SummaryHooks:
    """What a summary runner reports to, and asks, the engine thread."""

    section: Callable  # (engine.summarize.Section) -> None
    progress: Callable  # (engine.session.Progress) -> None
    message: Callable[[str], None]
    cancel: Callable[[], bool]
    before_session: Callable[[], None]  # the cache missed: free the reader's context now

    # The progress protocol engine/summarycache.summarize_book takes as ``bar``.
    def update(self, p) -> None:
        self.progress(p)

    def done(self) -> None:
        pass


def default_summary_runner(request: BookRequest, model, hooks: SummaryHooks):
    """``bookpot summarize BOOK`` with the reader's model, threads and RAM cap (the
    same cache key as that command line), reporting through ``hooks``."""
    from ...engine.summarycache import SummaryModel, SummaryOptions, summarize_book

    opts = SummaryOptions(model=request.model_name, threads=request.threads, quiet=True,
                          ram_cap=request.ram_cap_mb * MB if request.ram_cap_mb else None,
                          password=request.password)
    shared = SummaryModel(opts, model=model)
    return summarize_book(request.path, shared, label="summary", bar=hooks, on_section=hooks.section,
                          cancel=hooks.cancel, before_session=hooks.before_session)


def one_line(exc: BaseException) -> str:
    """A message for a person: BookpotErrors already are; others get their type."""
    if isinstance(exc, BookpotError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- engine


@dataclass
class _Question:
    qid: int
    text: str


@dataclass
class _Clock:
    """Tokens per second and ETA over *this run's* active ingestion time only."""

    active_s: float = 0.0
    started: float | None = None
    tokens0: int = 0  # tokens already read (restored from a checkpoint) when this run began
    progress0: float = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> None:
        if self.started is not None:
            self.active_s += time.perf_counter() - self.started
            self.started = None

    def elapsed(self) -> float:
        extra = time.perf_counter() - self.started if self.started is not None else 0.0
        return self.active_s + extra


class BookEngine:
    """Load, ingest and answer for one book, in one thread.

    Larger than ~250 lines on purpose: every job that touches the Session
    (open, index, read, answer, summarize, release and reopen) must run on
    this one thread, and their interleaving (a question between chunks, a
    summary that releases the session) is easier to check in one place.
    """

    def __init__(self, segments: Iterator, request: BookRequest,
                 post: Callable[[Message], object],
                 session_factory: Callable = default_session_factory,
                 max_answer_tokens: int = 200, *,
                 open_segments: Callable[[], Iterator] | None = None,
                 summary_runner: Callable = default_summary_runner) -> None:
        """``open_segments()`` gives the book's segments from the start again: the
        reader's session is reopened with them after a summary, and the text
        pass cuts the whole book from them before reading (without it,
        summaries are not offered and questions are answered from the part
        read only)."""
        self.request = request
        self.model_name = request.model_name
        self._post = post
        self._factory = session_factory
        self._segments = iter(segments)
        self._open_segments = open_segments
        self._summary_runner = summary_runner
        self.max_answer_tokens = max_answer_tokens
        self.built = None
        self.session = None
        self.reading = None
        self.cached = False  # restored finished from the cache: no prefill
        self.indexed = False  # the text pass covered the whole book: questions draw on all of it
        self.indexing = False  # the text pass is running
        self.exhausted = False
        self.paused = False
        self.answering = False
        self.tokens = 0
        self.progress = 0.0
        self._questions: deque[_Question] = deque()
        self._next_qid = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._interrupt = threading.Event()
        self._cancel_answer = threading.Event()
        self._summary: int | None = None  # the qid of the summary asked for and not finished
        self._cancel_summary = threading.Event()
        self.released = 0  # times the reader's session was freed for a summary (tests look)
        self._kept = True  # the released session's state was in the book cache
        self._closing = threading.Event()
        self.done = threading.Event()
        self._clock = _Clock()

    # -- called from the UI thread -----------------------------------------
    def ask(self, question: str) -> int:
        with self._lock:
            qid = self._next_qid
            self._next_qid += 1
            self._questions.append(_Question(qid, question))
        self._interrupt.set()
        self._wake.set()
        return qid

    def pause(self) -> None:
        self.paused = True
        self._interrupt.set()
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    def cancel_answer(self) -> bool:
        """Stop the answer being generated; False if none is."""
        if not self.answering:
            return False
        self._cancel_answer.set()
        return True

    @property
    def can_summarize(self) -> bool:
        return self._open_segments is not None

    @property
    def summarizing(self) -> bool:
        return self._summary is not None

    def summarize(self) -> int | None:
        """Queue a summary of the book; its id (the chat's), or None if one is under way."""
        with self._lock:
            if self._summary is not None:
                return None
            qid = self._summary = self._next_qid
            self._next_qid += 1
        self._cancel_summary.clear()
        self._interrupt.set()
        self._wake.set()
        return qid

    def cancel_summary(self) -> bool:
        """Stop the summary (between chunks or tokens); False if none is under way."""
        if self._summary is None:
            return False
        self._cancel_summary.set()
        return True

    def close(self, wait: float = 0.0) -> None:
        """Stop after the current chunk (or answer); an unfinished book is checkpointed first."""
        self._closing.set()
        self._interrupt.set()
        self._cancel_answer.set()
        self._wake.set()
        if wait:
            self.done.wait(wait)

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    # -- the engine thread -------------------------------------------------
    def run(self) -> None:
        try:
            self._post(ModelLoading(self.model_name))
            try:
                self.built = self._factory(self.request)
            except Exception as e:  # noqa: BLE001 - shown to the user, never a crash
                self._post(EngineFailed(one_line(e)))
                return
            self.session = self.built.session
            for note in getattr(self.built, "notes", ()):
                self._post(EngineNote(note, "warning"))
            self._post(ModelReady(self.model_name))
            if not self._open():
                return
            self._loop()
        except Exception as e:  # noqa: BLE001 - a bug here must say so, not leave "loading…"
            self._post(IngestState("failed", self.tokens, self.progress, one_line(e)))
        finally:
            if self.reading is not None:
                try:
                    self.reading.close()  # checkpoint an unfinished book, let its lock go
                except Exception as e:  # noqa: BLE001 - e.g. a full disk: the last checkpoint stays
                    self._post(EngineNote(f"could not save where reading stopped: {one_line(e)}", "error"))
            if self.built is not None:
                try:
                    self.built.close()
                except Exception:  # pragma: no cover - best effort
                    pass
            self.done.set()

    def _open(self, quiet: bool = False) -> bool:
        """Take the book's cached state: ready at once, or resumed, or a fresh start.

        ``quiet``: reopened after a summary; the user has heard it all before.
        """
        from ...engine import book
        from ...engine.store import LockCancelled

        built, session = self.built, self.session
        cache = getattr(built, "cache", None)
        note = (lambda text: None) if quiet else (lambda text: self._post(EngineNote(text)))
        self.reading = book.Reading(session, self._segments, cache, on_wait=self._on_wait, on_note=note)
        self._post(BookOpened(getattr(cache, "key", None), getattr(cache, "doc_hash", None),
                              getattr(built, "ram_cap", None), getattr(session.stats, "plan", None)))
        try:
            self.cached = self.reading.open(cancel=self._closing.is_set)
        except LockCancelled:
            return False
        except Exception as e:  # noqa: BLE001 - an unusable cache must not stop the reading
            self._post(EngineNote(f"the book's saved state is not usable ({one_line(e)}); "
                                  "reading it without saving", "warning"))
            self.reading = book.Reading(session, self._segments, None)
        self.tokens = session.stats.doc_tokens
        self.progress = 1.0 if session.finished else getattr(session, "last_progress", 0.0)
        self._clock = _Clock(tokens0=self.tokens, progress0=self.progress)
        if self.cached:
            self.exhausted = True
            self._post(IngestState("ready", self.tokens, 1.0, cached=True, quiet=quiet))
        else:
            self._index(quiet)
        return not self.closing

    def _index(self, quiet: bool = False) -> None:
        """The text pass over the whole book (see the module docstring); never fatal:
        without it questions are answered from the part read."""
        session, built = self.session, self.built
        text = getattr(session, "text", None)
        self.indexed = False
        if text is None or self._open_segments is None or getattr(built, "plain", False) \
                or getattr(built, "by_question", False):
            return
        if not text.done:
            self._post(IngestState("indexing", self.tokens, self.progress))
        t0 = time.perf_counter()
        last = [0.0]

        def progress(tokens: int, fraction: float) -> None:
            now = time.perf_counter()
            if now - last[0] >= 0.1:  # a message per chunk would flood the screen for a fast pass
                last[0] = now
                dt = now - t0
                self._post(IndexProgress(tokens, min(1.0, fraction), tokens / dt if dt > 0 else 0.0))

        self.indexing = True
        try:
            st = session.text_pass(self._open_segments(), progress=progress, cancel=self._closing.is_set)
        except Exception as e:  # noqa: BLE001 - reading goes on; questions use the part read
            self._post(EngineNote(f"could not index the whole book ({one_line(e)}); questions are "
                                  "answered from the part read so far", "warning"))
            return
        finally:
            self.indexing = False
        if not text.done:  # closed meanwhile (it resumes next time)
            return
        self.indexed = text.n_tokens > 0
        if self.indexed:
            fresh = getattr(st, "tokens", 0) > 0
            self._post(BookIndexed(text.n_tokens, time.perf_counter() - t0, quiet=quiet or not fresh))

    def _on_wait(self) -> None:
        self._post(IngestState("waiting", self.tokens, self.progress))

    def _loop(self) -> None:
        while not self.closing:
            question = None
            with self._lock:
                if self._questions:
                    question = self._questions.popleft()
            if question is not None:
                self._answer(question)
                continue
            if self._summary is not None:
                if not self._summarize(self._summary):
                    return
                continue
            if not self.exhausted and not self.paused:
                self._ingest()
                continue
            self._wake.wait(0.5)
            self._wake.clear()

    def _ingest(self) -> None:
        session = self.session
        self._interrupt.clear()
        if self._questions or self.paused or self.closing:
            return
        self._post(IngestState("reading", self.tokens, self.progress))
        self._clock.start()
        try:
            self.reading.ingest(progress=self._on_progress, cancel=self._interrupt.is_set)
        except Exception as e:  # noqa: BLE001 - a bad page stops reading, not the app
            self._clock.stop()
            self.exhausted = True
            self.reading.close(save=False)  # the last checkpoint stays as it was
            if session.finished:  # read to the end; only its final checkpoint failed
                self._post(EngineNote(f"could not save the book's state: {one_line(e)}", "error"))
                self.tokens, self.progress = session.stats.doc_tokens, 1.0
                self._post(IngestState("ready", self.tokens, 1.0))
            else:
                self._post(IngestState("failed", self.tokens, self.progress, one_line(e)))
            return
        self._clock.stop()
        if session.finished:
            self.exhausted = True
            self.progress = 1.0
            self.tokens = session.stats.doc_tokens
            self._post(IngestState("ready", self.tokens, 1.0))
        elif self.paused and not self.closing:
            try:
                self.reading.save_now()  # a paused book is a checkpointed book
            except Exception as e:  # noqa: BLE001
                self._post(EngineNote(f"could not save where reading paused: {one_line(e)}", "error"))
            self._post(IngestState("paused", self.tokens, self.progress))

    def _on_progress(self, p) -> None:
        self.tokens = p.tokens
        self.progress = max(self.progress, min(1.0, p.progress))
        c = self._clock
        elapsed = c.elapsed()
        done = self.progress - c.progress0
        tps = (p.tokens - c.tokens0) / elapsed if elapsed > 0 else 0.0
        eta = elapsed * (1 - self.progress) / done if done > 0 else None
        self._post(IngestProgress(p.tokens, self.progress, tps, eta, str(p.locator or "")))

    def _answer(self, q: _Question) -> None:
        session = self.session
        self._cancel_answer.clear()
        self.answering = True
        before = getattr(session, "last_answer", None)
        self._post(AnswerStarted(q.qid, q.text))
        error = ""
        try:
            for piece in session.ask_stream(q.text, max_tokens=self.max_answer_tokens,
                                            cancel=self._cancel_answer.is_set):
                self._post(AnswerPiece(q.qid, piece))
        except Exception as e:  # noqa: BLE001
            error = one_line(e)
        finally:
            self.answering = False
        ans = getattr(session, "last_answer", None)
        if ans is before:  # ask_stream failed before it began: no new answer
            ans = None
        cancelled = self._cancel_answer.is_set()
        if ans is None:
            self._post(AnswerDone(q.qid, q.text, "", [], not session.finished, cancelled, error))
        else:
            units = len(getattr(ans.stats, "units_loaded", None) or [])
            self._post(AnswerDone(q.qid, q.text, ans.text, list(ans.citations), ans.partial,
                                  cancelled, error, units=units,
                                  answered=getattr(ans, "answered", True),
                                  from_unread=bool(getattr(ans, "from_unread", False)),
                                  read_fraction=self.read_fraction() if ans.partial else 1.0,
                                  indexed=self.indexed))

    def read_fraction(self) -> float:
        """How much of the book is read: by tokens once the text pass counted them, else by
        the reader's progress (pages or bytes)."""
        session = self.session
        if session is not None and getattr(session, "finished", False):
            return 1.0
        stats = getattr(session, "stats", None)
        book_tokens = getattr(stats, "book_tokens", 0) or 0
        if self.indexed and book_tokens > 0:
            return min(1.0, stats.doc_tokens / book_tokens)
        return self.progress

    # -- summaries -----------------------------------------------------------
    def _summarize(self, qid: int) -> bool:
        """Run the summary job; False when the reader could not be reopened after it."""
        self._post(SummaryStarted(qid))
        released = False

        def before_session() -> None:
            nonlocal released
            released = True
            self._release()

        def progress(p) -> None:
            self._post(SummaryStatus(f"summarizing {min(1.0, p.progress):.0%} · {p.tokens:,} tok"
                                     + (f" · {p.tokens_per_s:,.0f} tok/s" if p.tokens_per_s else ""),
                                     min(1.0, p.progress)))

        def message(text: str) -> None:
            self._post(SummaryStatus(text.removeprefix("summary: ")))

        hooks = SummaryHooks(section=lambda sec: self._post(SummarySection(qid, sec)), progress=progress,
                             message=message, before_session=before_session,
                             cancel=lambda: self._cancel_summary.is_set() or self.closing)
        result, error = None, ""
        try:
            model = getattr(self.session, "model", None)
            result = self._summary_runner(self.request, model, hooks)
        except Exception as e:  # noqa: BLE001 - a failed summary is a note in the chat, not a crash
            if not self._summary_cancelled(e):
                error = one_line(e)
        cancelled = result is None and not error
        with self._lock:
            self._summary = None
        self._post(SummaryDone(qid, result, cancelled, error))
        if released and not self.closing:
            return self._reopen()
        return True

    @staticmethod
    def _summary_cancelled(e: BaseException) -> bool:
        from ...engine.store import LockCancelled
        from ...engine.summarize import Cancelled

        return isinstance(e, (Cancelled, LockCancelled))

    def _release(self) -> None:
        """Free the reader's context for the summary's: checkpoint, let the lock go, close."""
        self.released += 1
        self._clock.stop()
        self._kept = self.reading is not None and self.reading.cache is not None
        if self.reading is not None:
            try:
                self.reading.close()
            except Exception as e:  # noqa: BLE001 - the last checkpoint stays
                self._post(EngineNote(f"could not save where reading stopped: {one_line(e)}", "error"))
            self.reading = None
        built, self.built, self.session = self.built, None, None
        if built is not None:
            built.close()

    def _reopen(self) -> bool:
        """The reader's session again, from the book cache (see the module's docstring)."""
        self._post(SummaryStatus("reopening the book…"))
        try:
            self.built = self._factory(self.request)
        except Exception as e:  # noqa: BLE001
            self._post(EngineFailed(one_line(e)))
            return False
        self.session = self.built.session
        self._segments = iter(self._open_segments())
        was = self.tokens
        self.exhausted = self.cached = False
        if not self._open(quiet=True):
            return False
        if not self._kept and was:
            self._post(EngineNote("the book's state could not be kept while summarizing; "
                                  "reading it again from the start", "warning"))
        if self.paused and not self.exhausted:
            self._post(IngestState("paused", self.tokens, self.progress))  # the status line again
        return True
