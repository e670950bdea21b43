"""Small modal dialogs: pick a file, choose where to export, type a password, confirm.

Each returns its result through ``dismiss`` (``None`` when cancelled), so the
screens that open them stay free of dialog plumbing.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlparse

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


def typed_path(text: str) -> str:
    """A path as people paste it, made usable: surrounding quotes or shell
    escapes removed (``'/home/me/My Book.pdf'``, ``My\\ Book.pdf``), a
    ``file://`` URL decoded, ``~`` and ``$VARS`` expanded. Text that already
    names an existing file is taken as it is."""
    text = text.strip()
    if not text or os.path.exists(os.path.expanduser(text)):
        return os.path.expanduser(text)
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    else:
        try:
            parts = shlex.split(text)
        except ValueError:  # an unbalanced quote: "O'Brien.txt"
            parts = [text]
        if len(parts) == 1:
            text = parts[0]
    return os.path.expanduser(os.path.expandvars(text))


class FileBrowser(ModalScreen[str | None]):
    """Choose a book from the file system; Backspace goes up to the parent folder."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("backspace", "parent", "Parent folder")]

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__()
        self.root = Path(root or Path.home()).resolve()

    def compose(self) -> ComposeResult:
        with Vertical(id="browser-box", classes="dialog"):
            yield Label(self._title(), id="browser-title")
            yield BookTree(self.root, id="browser-tree")
            yield Label("Enter opens · Backspace: parent folder · Esc cancels", classes="hint")

    def _title(self) -> str:
        return f"Choose a book under {self.root}"

    def action_parent(self) -> None:
        """Show the folder above the one shown (stays at the file system's root)."""
        parent = self.root.parent
        if parent == self.root:
            self.notify("this is the top folder", severity="warning")
            return
        self.root = parent
        self.query_one("#browser-title", Label).update(self._title())
        self.query_one(BookTree).path = parent

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
