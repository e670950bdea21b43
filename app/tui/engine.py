"""The one thread that owns a book's Session, and the messages it sends.

A ``Session`` is not thread-safe, so everything that touches it -- loading
the model, ingesting, answering -- runs in the single loop of
``BookEngine.run`` (started as a Textual thread worker). The UI talks to it
only through flags and a question queue, and hears back only through
messages posted to the screen (``post_message`` is thread-safe).

Ingestion is interruptible at *segment* boundaries: the segments iterator
handed to ``Session.ingest`` is a wrapper that simply stops yielding when a
question, a pause or a close is pending. Stopping there (rather than through
``ingest``'s ``cancel``) loses nothing: every segment pulled so far is fully
in the cache, and the next ``ingest`` call continues with the same reader
iterator. ``cancel`` is only used when closing, where losing a chunk is fine.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from textual.message import Message

from ...engine.errors import BookpotError
from ...engine.readers.base import Segment

# ---------------------------------------------------------------- messages


class EngineMessage(Message):
    """Base for everything the engine thread tells the reader screen."""


class ModelLoading(EngineMessage):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model


class ModelReady(EngineMessage):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model


class EngineFailed(EngineMessage):
    """The model could not be loaded: nothing can be asked."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class IngestProgress(EngineMessage):
    def __init__(self, tokens: int, progress: float, tokens_per_s: float, eta_s: float | None,
                 locator: str) -> None:
        super().__init__()
        self.tokens = tokens
        self.progress = progress
        self.tokens_per_s = tokens_per_s
        self.eta_s = eta_s
        self.locator = locator


class IngestState(EngineMessage):
    """Ingestion changed state: "reading", "paused", "ready" or "failed"."""

    def __init__(self, state: str, tokens: int, progress: float, error: str = "") -> None:
        super().__init__()
        self.state = state
        self.tokens = tokens
        self.progress = progress
        self.error = error


class AnswerStarted(EngineMessage):
    def __init__(self, qid: int, question: str) -> None:
        super().__init__()
        self.qid = qid
        self.question = question


class AnswerPiece(EngineMessage):
    def __init__(self, qid: int, text: str) -> None:
        super().__init__()
        self.qid = qid
        self.text = text


class AnswerDone(EngineMessage):
    def __init__(self, qid: int, question: str, text: str, citations: list[dict], partial: bool,
                 cancelled: bool, error: str = "") -> None:
        super().__init__()
        self.qid = qid
        self.question = question
        self.text = text
        self.citations = citations
        self.partial = partial
        self.cancelled = cancelled
        self.error = error


# ---------------------------------------------------------------- sessions

_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def default_session_factory(model_name: str, threads: int | None):
    """Resolve (fetching if needed) and load the model; make a Session.

    Loaded models are kept for the life of the process so opening a second
    book does not load the weights again; each book gets its own context.
    """
    from ...engine.llm import Model
    from ...engine.session import Session
    from ...models import REGISTRY, resolve

    path = str(resolve(model_name))
    with _MODELS_LOCK:
        model = _MODELS.get(path)
        if model is None:
            model = _MODELS[path] = Model(path)
    entry = REGISTRY.get(model_name)
    style = entry.default_prompt_style if entry else "completion"
    return Session(model, prompt_style=style, threads=threads)


def one_line(exc: BaseException) -> str:
    """A message for a person: BookpotErrors already are; others get their type."""
    if isinstance(exc, BookpotError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- engine

PIECE_CHARS = 1200  # ~300 tokens: how long a question may wait for ingestion to yield


def small_pieces(segments: Iterable, max_chars: int = PIECE_CHARS) -> Iterator:
    """Split long segments at whitespace into pieces of at most ``max_chars``.

    Ingestion can only stop between segments without losing text (see the
    module docstring), and a plain-text segment can be thousands of tokens,
    so a question could wait many seconds. Pieces keep their segment's
    locator (citations stay right) and get progress interpolated by
    characters (the bar moves smoothly). The model sees the prompt's
    separator where a space was -- a newline in a paragraph, harmless.
    """
    prev = 0.0
    for seg in segments:
        text = seg.text
        if len(text) <= max_chars:
            prev = seg.progress
            yield seg
            continue
        start, n = 0, len(text)
        while start < n:
            end = min(n, start + max_chars)
            if end < n:
                # Prefer a paragraph or sentence end in the second half of the
                # window (a newline there reads naturally), else any space.
                half = start + max_chars // 2
                cut = text.rfind("\n", half, end)
                if cut < 0:
                    cut = max(text.rfind(". ", half, end) + 1, text.rfind("? ", half, end) + 1,
                              text.rfind("! ", half, end) + 1, 0) or -1
                if cut <= start:
                    cut = text.rfind(" ", start, end)
                if cut > start:
                    end = cut
            frac = end / n
            yield Segment(text[start:end], seg.locator, prev + (seg.progress - prev) * frac)
            start = end
        prev = seg.progress


@dataclass
class _Question:
    qid: int
    text: str


@dataclass
class _Clock:
    """Tokens per second and ETA over *active* ingestion time only."""

    active_s: float = 0.0
    started: float | None = None
    tokens_at_start: int = 0
    samples: deque = field(default_factory=lambda: deque(maxlen=32))

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
    """Load, ingest and answer for one book, in one thread."""

    def __init__(self, segments: Iterator, model_name: str, threads: int | None,
                 post: Callable[[Message], object],
                 session_factory: Callable = default_session_factory,
                 max_answer_tokens: int = 200) -> None:
        self.model_name = model_name
        self.threads = threads
        self._post = post
        self._factory = session_factory
        self._segments = iter(small_pieces(segments))
        self.max_answer_tokens = max_answer_tokens
        self.session = None
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

    def close(self, wait: float = 0.0) -> None:
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
                self.session = self._factory(self.model_name, self.threads)
            except Exception as e:  # noqa: BLE001 - shown to the user, never a crash
                self._post(EngineFailed(one_line(e)))
                return
            self._post(ModelReady(self.model_name))
            self._loop()
        finally:
            if self.session is not None:
                try:
                    self.session.close()
                except Exception:  # pragma: no cover - best effort
                    pass
            self.done.set()

    def _loop(self) -> None:
        while not self.closing:
            question = None
            with self._lock:
                if self._questions:
                    question = self._questions.popleft()
            if question is not None:
                self._answer(question)
                continue
            if not self.exhausted and not self.paused:
                self._ingest()
                continue
            self._wake.wait(0.5)
            self._wake.clear()

    def _pending_segments(self) -> Iterator:
        while not self._interrupt.is_set():
            try:
                seg = next(self._segments)
            except StopIteration:
                self.exhausted = True
                return
            yield seg

    def _ingest(self) -> None:
        session = self.session
        self._interrupt.clear()
        if self._questions or self.paused or self.closing:
            return
        self._post(IngestState("reading", self.tokens, self.progress))
        self._clock.start()
        try:
            session.ingest(self._pending_segments(), progress=self._on_progress,
                           cancel=self._closing.is_set)
        except Exception as e:  # noqa: BLE001 - a bad page stops reading, not the app
            self._clock.stop()
            self.exhausted = True
            session.finished = False
            self._post(IngestState("failed", self.tokens, self.progress, one_line(e)))
            return
        self._clock.stop()
        # ingest() marks itself finished whenever its iterator ends; only
        # the reader running out really finishes the book.
        session.finished = self.exhausted
        if self.exhausted:
            self.progress = 1.0
            self.tokens = session.stats.doc_tokens
            self._post(IngestState("ready", self.tokens, 1.0))
        elif self.paused and not self.closing:
            self._post(IngestState("paused", self.tokens, self.progress))

    def _on_progress(self, p) -> None:
        self.tokens = p.tokens
        self.progress = max(self.progress, min(1.0, p.progress))
        elapsed = self._clock.elapsed()
        tps = p.tokens / elapsed if elapsed > 0 else 0.0
        eta = elapsed * (1 - self.progress) / self.progress if self.progress > 0 else None
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
            self._post(AnswerDone(q.qid, q.text, ans.text, list(ans.citations), ans.partial,
                                  cancelled, error))
