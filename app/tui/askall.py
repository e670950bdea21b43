"""Ask the library: one question across every book of the library screen (issue #24 part 1).

Opened from the library screen (Ctrl+F). The question goes to the engine's
collection door (``engine.collection.open_collection``, as ``bookpot ask
PATH…``) on a worker thread: books not indexed yet get their text pass
(the status line counts them), the book holding the best passage answers,
streamed here, and its quotes are listed as ``“…” — BOOK, p. 12``.
Choosing a quote opens that book in the reader at that page, with the
sentence highlighted. Esc stops an answer; a second Esc (or Ctrl+L) goes
back to the library. Every engine failure is one line on the screen.
"""
from __future__ import annotations

import os
import threading

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from ...engine.errors import BookpotError
from .chat import QuoteLink, quote_line
from .worker import engine_options, loaded_model, one_line


class BookQuoteLink(QuoteLink):
    """A quote under a library answer: its line names the book before the page."""

    @property
    def line(self) -> str:
        c = self.citation
        where = f"{c.get('book_name', '?')}, {c.get('locator', '?')}"
        return quote_line(dict(c, locator=where), self.content_region.width or 200)


class AskLibraryScreen(Screen):
    """One question to all ``paths``; see the module docstring."""

    AUTO_FOCUS = "#library-question"
    BINDINGS = [
        Binding("escape", "stop_or_back", "Stop / back", priority=True),
        Binding("ctrl+l", "back", "Library", priority=True),
    ]

    def __init__(self, paths: list[str], *, model_name: str, threads: int | None, ram_cap_mb: int | None) -> None:
        super().__init__()
        self.paths = list(paths)
        self.model_name, self.threads, self.ram_cap_mb = model_name, threads, ram_cap_mb
        self.answer_text = ""
        self.answer = None  # engine.collection.CollectionAnswer of the last question
        self.error = ""
        self.busy = False
        self.done = threading.Event()  # the last question is finished (answered, stopped or failed)
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="askall-box"):
            n = len(self.paths)
            yield Label(f"Ask the library: {n} book{'s' if n != 1 else ''}", id="askall-title")
            yield Input(placeholder="A question about any of the books… (Enter)", id="library-question")
            yield Static("", id="askall-answer")
            with VerticalScroll(id="askall-quotes"):
                pass
            yield Label("", id="askall-status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = "ask the library"
        if not self.paths:
            self._status("The library has no books yet: open one first.")

    def _status(self, text: str) -> None:
        self.query_one("#askall-status", Label).update(Text(text))

    # -- asking --------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        question = event.value.strip()
        if not question or self.busy or not self.paths:
            return
        self.busy, self.error, self.answer, self.answer_text = True, "", None, ""
        self.done.clear()
        self._stop.clear()
        self.query_one("#askall-answer", Static).update("")
        self.query_one("#askall-quotes").remove_children()
        self._status("looking through the books…")
        self.run_worker(lambda: self._ask(question), thread=True, exit_on_error=False, name="askall",
                        group="askall")

    def _ask(self, question: str) -> None:
        """On the worker thread: the collection's answer, told to the screen piece by piece."""
        from ...engine.build import resolve_model
        from ...engine.collection import open_collection

        call = self.app.call_from_thread
        skipped: list[str] = []
        try:
            model = loaded_model(str(resolve_model(self.model_name)[0]))
            opts = engine_options(self.model_name, self.threads, self.ram_cap_mb)
            def skip(path: str, why: str) -> None:
                name = os.path.basename(path)
                skipped.append(why if name in why else f"{name}: {why}")

            with open_collection(self.paths, opts, model=model, on_skip=skip) as shelf:
                def progress(i: int, n: int, path: str, fraction: float) -> None:
                    call(self._status, f"indexing {i + 1}/{n}: {os.path.basename(path)} {fraction:.0%}")

                shelf.prepare(progress=progress, cancel=self._stop.is_set)
                call(self._status, "answering…")
                for piece in shelf.ask_stream(question, cancel=self._stop.is_set):
                    call(self._piece, piece)
                call(self._answered, shelf.last_answer, skipped)
        except BookpotError as e:
            call(self._failed, str(e), skipped)
        except Exception as e:  # noqa: BLE001 - an engine bug is a line on the screen, never a crash
            call(self._failed, one_line(e), skipped)

    def _piece(self, piece: str) -> None:
        if not self.is_attached:  # left while the answer was coming: nothing to show it on
            return
        self.answer_text += piece
        self.query_one("#askall-answer", Static).update(Text(self.answer_text))

    def _answered(self, answer, skipped: list[str]) -> None:
        self.answer = answer
        if not self.is_attached:
            self.busy = False
            self.done.set()
            return
        self.query_one("#askall-answer", Static).update(Text(answer.text))
        box = self.query_one("#askall-quotes")
        links = [BookQuoteLink(c) for c in answer.citations if c.get("quote")]
        if links:
            box.mount(*links)
        where = f"answered from {answer.book_name}" if answer.book else "no book matched the question's words"
        if answer.runners_up:
            where += "; next best: " + ", ".join(r["book_name"] for r in answer.runners_up)
        self._finish(where, skipped)

    def _failed(self, error: str, skipped: list[str]) -> None:
        self.error = error
        if not self.is_attached:
            self.busy = False
            self.done.set()
            return
        self._finish(error, skipped)
        self.notify(error, title="Cannot ask the library", severity="error", timeout=8)

    def _finish(self, status: str, skipped: list[str]) -> None:
        if skipped:
            status += f" · skipped {len(skipped)}: " + "; ".join(skipped)
        self._status(status)
        self.busy = False
        self.done.set()

    # -- choosing a quote ----------------------------------------------------
    def on_quote_link_chosen(self, event: QuoteLink.Chosen) -> None:
        event.stop()
        c = event.citation
        self.app.open_book(c["book"], at_quote=c)

    def action_stop_or_back(self) -> None:
        if self.busy:
            self._stop.set()
            self._status("stopping…")
        else:
            self.action_back()

    def action_back(self) -> None:
        self._stop.set()
        self.app.pop_screen()
