"""Small modal dialogs: pick a file, choose where to export, type a password, confirm.

Each returns its result through ``dismiss`` (``None`` when cancelled), so the
screens that open them stay free of dialog plumbing.
"""
from __future__ import annotations

import os
import shlex
import threading
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlparse

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, ProgressBar

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


class DownloadCancelled(Exception):
    """Raised from the fetch's progress callback: the user cancelled."""


class ModelDownload(ModalScreen[bool]):
    """Fetch a registry model (``bookpot.models.fetch``: pip, then checked and
    unpacked) with its progress shown; Esc or the button cancels (pip is stopped,
    nothing is installed). Dismisses with True once the model is installed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self._cancel = threading.Event()
        self.steps: list[str] = []  # what the fetch said, in order (tests look)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm-box"):
            yield Label(f"Downloading {self.model}", classes="confirm-title")
            yield Label("starting pip…", id="download-step")
            yield ProgressBar(total=100, show_eta=True, id="download-bar")
            with Horizontal(classes="confirm-buttons"):
                yield Button("Cancel (Esc)", id="cancel-download", compact=True)

    def on_mount(self) -> None:
        self.run_worker(self._run, thread=True, exit_on_error=False, name="model-download")

    def _run(self) -> None:
        from ... import models
        from .worker import one_line

        def progress(message: str, fraction: float | None) -> None:
            if self._cancel.is_set():
                raise DownloadCancelled()
            self._later(self._show, message, fraction)

        try:
            models.fetch(self.model, progress=progress)
        except DownloadCancelled:
            self._later(self._end, False, "download cancelled; nothing was installed")
        except Exception as e:  # noqa: BLE001 - a failed download is a notification
            self._later(self._end, False, one_line(e))
        else:
            self._later(self._end, True, "")

    def _later(self, fn, *args) -> None:
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:  # the app is closing
            pass

    def _show(self, message: str, fraction: float | None) -> None:
        self.steps.append(message)
        self.query_one("#download-step", Label).update(message[:200])
        if fraction is not None:
            self.query_one("#download-bar", ProgressBar).update(progress=round(fraction * 100, 1))

    def _end(self, ok: bool, error: str) -> None:
        if error:
            self.notify(error, title=f"{self.model} was not downloaded", severity="warning", timeout=10)
        else:
            self.notify(f"{self.model} is downloaded and checked", title="Model ready")
        self.dismiss(ok)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_cancel(self) -> None:
        self._cancel.set()
        self.query_one("#download-step", Label).update("cancelling…")
