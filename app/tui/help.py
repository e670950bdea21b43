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
Everything runs on this machine.

## Library
| Key | Action |
|---|---|
| Enter | open the selected book, or the path typed below |
| Ctrl+B | browse for a file |
| Delete | forget the selected book (the file stays) |

## Reader
| Key | Action |
|---|---|
| Enter (in the question box) | ask the question |
| Esc | stop the answer or summary being written / close search |
| Ctrl+R | summarize the book: a summary per chapter, then the overview |
| Ctrl+F | search the text (Enter: next match, Shift+Enter: previous) |
| Ctrl+G | go to a page (or line number, or chapter name) |
| Ctrl+T | pause / resume reading the book into the model |
| Ctrl+S | export the questions and answers (and summaries) to Markdown |
| Ctrl+L | back to the library |
| Tab | move between the text, the chat and the question box |

Questions can be asked while the book is still being read: reading pauses,
the answer uses what was read so far (the chat says so), then reading
resumes. Press a source under an answer to jump to that page.

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
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)

    def action_dismiss(self) -> None:
        self.dismiss(None)
