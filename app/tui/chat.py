"""The chat pane: one ``Exchange`` per question, answers streamed in.

An answer is a Textual ``Markdown`` fed through ``MarkdownStream``, which
*appends* fragments (and batches them when tokens arrive faster than the
screen refreshes) instead of re-parsing the whole answer for every token.
Under the answer come its quotes (issue #18), one per line, ``“…” — p. 12``
cut to the pane's width: each is focusable (Tab) and chosen with Enter or a
click (``QuoteLink.Chosen``), and the reader screen jumps the text pane to
the quoted sentence, highlighted. When the model said nothing usable the
answer reads "The book does not seem to say." and the quotes are the
passages nearest the question. The other citations sit under them as
compact buttons (in as many rows as the pane needs; memory-unit sources
first, marked ``-unit``); pressing one posts ``CitationButton.Pressed``
with the citation, and the reader screen jumps the text pane there.

A book is answered before it is read (issue #19): a quote or source from a
part not read yet (``source`` "unread": prefilled for this question) is
marked "· unread" (class ``-unread``), and the note under the answer says
so with how much of the book was read ("answered from pages not read yet
(34% of the book read)").
"""
from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ..library import scope_note


_OL_MARKER = re.compile(r"(\n {0,3}\d{1,9})([.)])")
_OL_PENDING = re.compile(r"\n {0,3}\d{1,9}$")


class ListGuard:
    """Keep model text from turning into Markdown ordered lists.

    A completion model answers "The pass key is" with "48213. Remember
    it." -- which Markdown reads as item 48213 of a list. Streaming makes
    it harder: "48213" and "." arrive as separate tokens, so digits at the
    start of a line are held back until the next character decides.
    """

    def __init__(self) -> None:
        self.held = ""
        self.at_line_start = True

    def feed(self, piece: str) -> str:
        s = ("\n" if self.at_line_start else " ") + self.held + piece
        self.held = ""
        s = _OL_MARKER.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
        m = _OL_PENDING.search(s)
        if m:
            self.held = s[m.start() + 1:]
            s = s[: m.start() + 1]
        out = s[1:]
        if out:
            self.at_line_start = out.endswith("\n")
        return out

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out


def markdown_safe(text: str) -> str:
    guard = ListGuard()
    return guard.feed(text) + guard.flush()


class CitationButton(Button):
    """A citation under an answer; its ``citation`` dict is Locator.to_dict().

    ``source`` says where the cited text was in front of the model: "unit"
    (a memory unit brought back for this question; listed first), "unread"
    (a part of the book not read yet, prefilled for this question) or "pot".
    """

    def __init__(self, citation: dict, **kw) -> None:
        source = citation.get("source")
        classes = "citation -unit" if source == "unit" else "citation -unit -unread" if source == "unread" \
            else "citation"
        super().__init__(citation.get("locator", "?"), compact=True, classes=classes, **kw)
        self.citation = citation
        if source == "unit":
            self.tooltip = "from a memory unit brought back for this question"
        elif source == "unread":
            self.tooltip = "from a part of the book not read yet (prefilled for this question)"


NOT_SAID = "The book does not seem to say."
NEAREST = "The passages nearest your question:"


UNREAD_MARK = " · unread"


def quote_line(citation: dict, width: int) -> str:
    """``“quote” — p. 12`` in at most ``width`` cells: white space folded, the
    quote cut with "…" so its page always shows (and `` · unread`` after it
    for a quote from a part of the book not read yet)."""
    quote = " ".join(str(citation.get("quote", "")).split())
    mark = UNREAD_MARK if citation.get("source") == "unread" else ""
    tail = f"” — {citation.get('locator', '?')}{mark}"
    room = width - 1 - len(tail)
    if len(quote) > room:
        quote = quote[:max(0, room - 1)].rstrip() + "…"
    return f"“{quote}{tail}"[:max(1, width)] if width > 0 else f"“{quote}{tail}"


class QuoteLink(Widget, can_focus=True):
    """One quote under an answer, on one line; Enter or a click chooses it."""

    BINDINGS = [Binding("enter,space", "choose", "Show in the text", show=False)]
    DEFAULT_CSS = """
    QuoteLink { height: 1; width: 1fr; color: $text; }
    QuoteLink:hover { background: $boost; }
    QuoteLink:focus { background: $accent 40%; text-style: bold; }
    QuoteLink.-unit { color: $text-accent; }
    QuoteLink.-unread { color: $text-warning; }
    """

    class Chosen(Message):
        def __init__(self, link: QuoteLink) -> None:
            super().__init__()
            self.link = link
            self.citation = link.citation

    def __init__(self, citation: dict, **kw) -> None:
        source = citation.get("source")
        super().__init__(classes={"unit": "quote -unit", "unread": "quote -unread"}.get(source, "quote"), **kw)
        self.citation = citation
        self.tooltip = (" ".join(str(citation.get("quote", "")).split()) + f" — {citation.get('locator', '?')}"
                        + (" (from a part of the book not read yet)" if source == "unread" else ""))

    @property
    def line(self) -> str:
        return quote_line(self.citation, self.content_region.width or 200)

    def render(self) -> Text:
        return Text(self.line, no_wrap=True, overflow="crop")

    def action_choose(self) -> None:
        self.post_message(self.Chosen(self))

    def on_click(self) -> None:
        self.action_choose()


class Exchange(Vertical):
    """A question and its (possibly still streaming) answer."""

    def __init__(self, question: str, qid: int | None = None, answer: str = "") -> None:
        super().__init__(classes="exchange")
        self.question = question
        self.qid = qid
        self._initial = answer
        self.answer = Markdown(markdown_safe(answer), classes="answer")
        self._guard = ListGuard()
        self.note = Static("", classes="note")
        self.quotes = Vertical(classes="quotes")
        self.citations = Vertical(classes="citations")
        self.answered = True
        self.scope = ""  # what part of the book it was answered from ("" for a read book)
        self.quoted: list[dict] = []  # the quotes shown under the answer
        self._stream: MarkdownStream | None = None
        self.text = answer
        self.done = bool(answer) or qid is None  # history entries arrive finished

    def compose(self):
        yield Static(f"[b]Q:[/b] {escape(self.question)}", classes="question")
        yield self.answer
        yield self.note
        yield self.quotes
        yield self.citations

    def on_mount(self) -> None:
        self.note.display = False
        self.quotes.display = False
        self.citations.display = False

    def start_stream(self) -> None:
        self.set_note("…looking up passages", "pending")

    def _streaming(self) -> MarkdownStream:
        # Made with the first piece, never before: a stream stopped before its
        # task first ran raises CancelledError out of ``stop()``, which stalls
        # the screen (an answer failing before its first token did).
        if self._stream is None:
            self._stream = Markdown.get_stream(self.answer)
        return self._stream

    async def write(self, piece: str) -> None:
        if not self.text:
            self.set_note("", None)
            piece = piece.lstrip()  # completion answers start with a space
            if not piece:
                return
        self.text += piece
        await self._streaming().write(self._guard.feed(piece))

    async def finish(self, citations: list[dict], partial: bool, cancelled: bool, error: str = "",
                     units: int = 0, text: str = "", answered: bool = True, *, from_unread: bool = False,
                     read_fraction: float | None = None, indexed: bool = False) -> None:
        """End the stream; ``text`` is the engine's final answer, which drops
        a repeat the stream already showed (see ``engine/loops.py``), or says
        the book does not seem to say (``answered`` False). A stopped answer
        keeps what was streamed."""
        if self._stream is not None:
            await self._stream.write(self._guard.flush())
            await self._stream.stop()
            self._stream = None
        if cancelled:
            answered = True  # stopped by the user, not judged: what came is what it is
        elif text.strip() and text.strip() != self.text.strip():
            self.text = text.strip()
            await self.answer.update(markdown_safe(self.text))
        self.show_meta(citations, partial, cancelled, error, units=units, answered=answered,
                       from_unread=from_unread, read_fraction=read_fraction, indexed=indexed)
        self.done = True

    def show_meta(self, citations: list[dict], partial: bool, cancelled: bool, error: str = "",
                  units: int = 0, answered: bool = True, *, from_unread: bool = False,
                  read_fraction: float | None = None, indexed: bool = False) -> None:
        """The note, quotes and source buttons under a finished answer; the note says
        what part of the book it came from (``library.scope_note``)."""
        self.answered = answered
        notes = []
        if error:
            notes.append(f"[b]error:[/b] {escape(error)}")
        if cancelled and not self.text.strip() and not error:
            # Stopped before its first word: nothing was answered, so nothing is cited.
            self.set_note("stopped (Esc) before anything was written", None)
            return
        if not self.text and not error:
            notes.append("(no answer)")
        if cancelled:
            notes.append("stopped (Esc)")
        self.scope = scope_note(partial, from_unread, read_fraction, indexed)
        if self.scope:
            notes.append(self.scope)
        if units:
            notes.append(f"{units} unit{'s' if units != 1 else ''} loaded")
        self.set_note(" · ".join(notes), "error" if error else None)
        self.quoted = [c for c in citations if c.get("quote")]
        citations = [c for c in citations if not c.get("quote")]
        if self.quoted:
            self.quotes.display = True
            lines: list[Widget] = [] if answered else [Static(NEAREST, classes="nearest")]
            lines += [QuoteLink(c) for c in self.quoted]
            self.quotes.mount(*lines)
        if citations:
            self.citations.display = True
            # A row of buttons does not wrap: lay them out in rows that fit the pane.
            width = self.size.width or (self.parent.size.width if self.parent else 0) or 36
            rows: list[list] = [[Static("sources:", classes="sources-label")]]
            used = len("sources:") + 2
            for c in citations:
                button = CitationButton(c)
                w = max(6, len(str(button.label)) + 2) + 1
                if used + w > width - 2 and len(rows[-1]) > 1:
                    rows.append([])
                    used = len("sources:") + 2
                rows[-1].append(button)
                used += w
            self.citations.mount(*[Horizontal(*row, classes="citation-row") for row in rows])

    def set_note(self, text: str, kind: str | None) -> None:
        self.note.update(text)
        self.note.display = bool(text)
        self.note.set_class(kind == "error", "-error")
        self.note.set_class(kind == "pending", "-pending")


def exchange_text(ex: Exchange) -> str:
    """A finished question and answer as plain text for the clipboard: the question,
    the answer, its quotes as ``> “…” — p. 12`` and its other sources."""
    lines = [f"Q: {ex.question}", ex.text.strip() or "(no answer)"]
    if ex.scope:
        lines.append(f"({ex.scope})")
    if ex.quoted:
        if not ex.answered:
            lines.append(NEAREST)
        lines += [f"> “{' '.join(str(c.get('quote', '')).split())}” — {c.get('locator', '?')}"
                  + (UNREAD_MARK if c.get("source") == "unread" else "") for c in ex.quoted]
    others = [b.citation.get("locator", "?") for b in ex.query(CitationButton)]
    if others:
        lines.append("Sources: " + ", ".join(others))
    return "\n".join(lines) + "\n"


SUMMARY_QUESTION = "Summarize this book"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def md_escape(text: str) -> str:
    """Document text (a chapter title) shown literally inside Markdown."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def section_markdown(heading: str, where: str, text: str) -> str:
    """One summary entry: the chapter (or "Overview") in bold and its pages, on the line
    above its text (one Markdown paragraph, so the chat pane spends no blank line on it)."""
    head = f"**{md_escape(heading)}**" + (f" · {md_escape(where)}" if where else "")
    body = markdown_safe(text)
    if text.startswith("[no usable summary"):
        body = f"*{md_escape(text)}*"  # a marker, never passed off as a summary
    return f"{head}\\\n{body}\n\n"  # a hard line break: the heading sits right above its text


def summary_markdown(summary) -> str:
    """A finished ``BookSummary``: one entry per chapter (or page range), the overview last."""
    out = []
    for part in summary.parts:
        heading = part.title if part.chapters else (part.where or part.title)
        out.append(section_markdown(heading, part.where if part.chapters else "", part.summary))
    if len(summary.parts) > 1 or summary.parts and summary.parts[0].summary != summary.overview:
        out.append(section_markdown("Overview", "", summary.overview))
    return "".join(out).rstrip("\n")


class SummaryExchange(Exchange):
    """The book's summary: section summaries streamed in as the summarizer writes
    them, replaced at the end by the finished summary (chapters made of several
    sections merged, the overview last) with a source button per chapter."""

    def __init__(self, answer: str = "") -> None:
        """``answer``: a finished summary from the history; without it, one to stream in
        (its ``qid`` is set once the engine has queued it)."""
        super().__init__(SUMMARY_QUESTION, answer=answer)
        self.done = bool(answer)
        self.add_class("-summary")
        self.sections = 0  # section summaries streamed in
        self.streamed: list[str] = []  # their Markdown, as it came
        self.summary = None  # the finished engine.summarize.BookSummary
        self.sources: list[dict] = []  # where each chapter starts (the buttons under the summary)

    async def add_section(self, section) -> None:
        from ...engine.summarize import span

        if not self.text:
            self.set_note("…summarizing the rest (Esc stops)", "pending")
        title = "; ".join(section.chapters) if section.chapters else ""
        where = span(section.first, section.last)
        piece = section_markdown(title or where or "Text", where if title else "", section.summary)
        self.text += piece
        self.sections += 1
        self.streamed.append(piece)
        await self._streaming().write(piece)

    async def finish_summary(self, summary, cancelled: bool, error: str = "") -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.summary = summary
        if summary is not None:
            self.text = summary_markdown(summary)
            await self.answer.update(self.text)
            self.sources = [p.first for p in summary.parts if p.first.get("locator")]
        self.show_meta(self.sources, False, cancelled, error)
        if summary is not None and summary.cached:
            self.set_note("from the summary cache", None)
        self.done = True


class ChatLog(VerticalScroll):
    """The scrolling list of exchanges; stays at the bottom while streaming."""

    def exchange(self, qid: int) -> Exchange | None:
        for ex in self.query(Exchange):
            if ex.qid == qid:
                return ex
        return None
