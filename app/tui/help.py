"""The help screen: every key, in one place (also reachable with F1)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# bookpot

Read a book in the terminal and ask a small local model about it.
Everything runs on this machine. **Esc** (or F1, or q) closes this help.

## Library
| Key | Action |
|---|---|
| Enter | open the selected book, or the path typed below (quotes, `~` and `$VARS` are fine) |
| Ctrl+B | browse for a file (Backspace: the parent folder) |
| Delete | forget the selected book and its saved reading (asks first; the file stays) |
| Ctrl+F | ask the library: one question to all its books; the best book answers, each quote names its book and page (Enter on a quote opens the book there; Esc stops the answer, then goes back) |

## Reader
| Key | Action |
|---|---|
| Enter (in the question box) | ask the question |
| Esc | stop the answer or summary being written / close search |
| Ctrl+R | summarize the book: a summary per chapter, then the overview |
| Ctrl+F | search the text (Enter: next match, Shift+Enter: previous) |
| Ctrl+G | go to a page (or line number, or chapter name or heading) |
| Ctrl+T | pause / resume reading the book into the model |
| Ctrl+S | export the questions and answers (and summaries) to Markdown |
| Ctrl+L | back to the library |
| Ctrl+Y | copy the answer (the one with the focus, else the last) with its quotes and pages; in the text, the page on top |
| Tab | move between the text, the chat and the question box |

A new book is first indexed (its text only, no model work: seconds for a
text file, longer for a big PDF). Questions can then be asked at once,
while the book is still being read: reading pauses, the answer is found
anywhere in the book, and the passages it needs that were not read yet
are read for it now (the chat says "answered from pages not read yet",
and marks those quotes "· unread"), then reading resumes. Under an answer come its quotes from the book: choose one (Tab,
then Enter, or click) to see it highlighted on its page. Press a source
to jump to that page. The focused pane has the heavy border.

A summary is written chapter by chapter into the chat. Reading the book
for questions waits meanwhile (the summary uses the same memory), and
carries on afterwards. A book summarized once (here or with `bookpot
summarize`, same settings) gets its summary back at once.

## Everywhere
| Key | Action |
|---|---|
| F1 | this help |
| F2 | settings (model, RAM cap, threads, theme) |
| Ctrl+P | command palette |
| Ctrl+Q | quit |
"""


class HelpScreen(ModalScreen[None]):
    """The keys; ``section`` ("library", "reader") is the heading shown first."""

    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close"),
    ]

    def __init__(self, section: str | None = None) -> None:
        super().__init__()
        self.section = section

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)

    def on_mount(self) -> None:
        if self.section:
            self.call_after_refresh(self._show_section)

    def _show_section(self) -> None:
        self.query_one(Markdown).goto_anchor(self.section)

    def action_dismiss(self) -> None:
        self.dismiss(None)
