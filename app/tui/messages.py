"""What the reader screen hears from the threads that work for it.

``BookEngine`` (worker.py) posts the ``EngineMessage``s: the model loading,
the book opened, ingestion progress and state, answers and summaries as
they stream. ``DocBlocks`` carries the text pane's blocks from the thread
that reads the document. ``post_message`` is thread-safe; each message is
handled on the UI thread by the screen's ``on_<snake_case_name>`` method.
(``BookText.Located`` stays inside its widget, as Textual's idiom is for a
widget's own messages.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from .booktext import Block


class DocBlocks(Message):
    """A batch of text blocks read for the text pane."""

    def __init__(self, blocks: list[Block], done: bool = False, error: str = "") -> None:
        super().__init__()
        self.blocks = blocks
        self.done = done
        self.error = error


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


class BookOpened(EngineMessage):
    """The session is built: where its state is cached, and the RAM cap it was planned for."""

    def __init__(self, cache_key: str | None, doc_hash: str | None, ram_cap: int | None,
                 plan: str | None) -> None:
        super().__init__()
        self.cache_key = cache_key
        self.doc_hash = doc_hash
        self.ram_cap = ram_cap
        self.plan = plan


class EngineNote(EngineMessage):
    """Something the user should know (resuming, waiting for a lock, a damaged state)."""

    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


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


class IndexProgress(EngineMessage):
    """The text pass (engine/textpass.py) over the whole book, before reading: ``tokens`` cut
    so far, ``progress`` 0..1 by the reader's pages or bytes, ``tokens_per_s`` of this pass."""

    def __init__(self, tokens: int, progress: float, tokens_per_s: float) -> None:
        super().__init__()
        self.tokens = tokens
        self.progress = progress
        self.tokens_per_s = tokens_per_s


class BookIndexed(EngineMessage):
    """The text pass reached the end: ``tokens`` in the book, ``seconds`` it took; questions
    are answered from the whole book from now on. ``quiet``: it was done before (resumed,
    or reopened after a summary): nothing new to announce."""

    def __init__(self, tokens: int, seconds: float, quiet: bool = False) -> None:
        super().__init__()
        self.tokens = tokens
        self.seconds = seconds
        self.quiet = quiet


class IngestState(EngineMessage):
    """Ingestion changed state: "waiting", "indexing" (the text pass, before reading),
    "reading", "paused", "ready" or "failed".

    ``cached``: "ready" straight from the book's saved state, no prefill.
    ``quiet``: the reader's session was reopened after a summary: nothing new to announce.
    """

    def __init__(self, state: str, tokens: int, progress: float, error: str = "",
                 cached: bool = False, quiet: bool = False) -> None:
        super().__init__()
        self.state = state
        self.tokens = tokens
        self.progress = progress
        self.error = error
        self.cached = cached
        self.quiet = quiet


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
                 cancelled: bool, error: str = "", units: int = 0, answered: bool = True,
                 from_unread: bool = False, read_fraction: float | None = None, indexed: bool = False) -> None:
        """``citations``: the answer's quotes first (dicts with ``quote``, ``start``,
        ``end``: offsets in the cited page's text), then locator-only ones;
        ``source`` "unread" marks one from a part of the book not read yet.
        ``answered`` False: the model said nothing usable (``text`` says so).
        ``from_unread``: passages not read yet were prefilled for it (issue #19);
        ``read_fraction``: 0..1 of the book read when it was answered (None: not known);
        ``indexed``: the whole book was searched (its text pass was done)."""
        super().__init__()
        self.qid = qid
        self.question = question
        self.text = text
        self.citations = citations
        self.partial = partial
        self.cancelled = cancelled
        self.error = error
        self.units = units  # memory units loaded for this answer
        self.answered = answered
        self.from_unread = from_unread
        self.read_fraction = read_fraction
        self.indexed = indexed


class SummaryStarted(EngineMessage):
    def __init__(self, qid: int) -> None:
        super().__init__()
        self.qid = qid


class SummarySection(EngineMessage):
    """One section summary, as soon as it is written (``engine.summarize.Section``)."""

    def __init__(self, qid: int, section) -> None:
        super().__init__()
        self.qid = qid
        self.section = section


class SummaryStatus(EngineMessage):
    """What the summarizer is doing, for the status line (``progress`` 0..1, or None)."""

    def __init__(self, text: str, progress: float | None = None) -> None:
        super().__init__()
        self.text = text
        self.progress = progress


class SummaryDone(EngineMessage):
    """The summary (``engine.summarize.BookSummary``; None when stopped or failed)."""

    def __init__(self, qid: int, summary, cancelled: bool = False, error: str = "") -> None:
        super().__init__()
        self.qid = qid
        self.summary = summary
        self.cancelled = cancelled
        self.error = error
