"""Small modal dialogs: pick a file, choose where to export, type a password, confirm.

Each returns its result through ``dismiss`` (``None`` when cancelled), so the
screens that open them stay free of dialog plumbing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label

BOOK_SUFFIXES = frozenset((".pdf", ".epub", ".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml"))


class BookTree(DirectoryTree):
    """A directory tree that shows folders and the files bookpot can read."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for p in paths:
            if p.name.startswith("."):
                continue
            try:
                if p.is_dir() or p.suffix.lower() in BOOK_SUFFIXES:
                    out.append(p)
            except OSError:
                continue
        return out


class FileBrowser(ModalScreen[str | None]):
    """Choose a book from the file system."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__()
        self.root = Path(root or Path.home())

    def compose(self) -> ComposeResult:
        with Vertical(id="browser-box", classes="dialog"):
            yield Label(f"Choose a book under {self.root} (Enter opens, Esc cancels)")
            yield BookTree(self.root, id="browser-tree")

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(str(event.path))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptDialog(ModalScreen[str | None]):
    """One line of input: a path to export to, a password, ..."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", password: bool = False, placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.password = password
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog prompt-box"):
            yield Label(self.title_text)
            yield Input(self.value, password=self.password, placeholder=self.placeholder, id="prompt-input")
            yield Label("Enter confirms · Esc cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question about something that cannot be undone; "no" has the focus.

    Dismisses with True (the confirm button, or ``y``) or False (the other
    button, ``n`` or Esc)."""

    BINDINGS = [Binding("escape,n", "answer(False)", "Keep"), Binding("y", "answer(True)", "Confirm")]

    def __init__(self, title: str, body: str, confirm: str = "Remove") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm-box"):
            yield Label(self.title_text, classes="confirm-title")
            yield Label(self.body, classes="confirm-body")
            with Horizontal(classes="confirm-buttons"):
                yield Button(f"{self.confirm} (y)", id="confirm", variant="error", compact=True)
                yield Button("Keep (n, Esc)", id="keep", compact=True)

    def on_mount(self) -> None:
        self.query_one("#keep").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
