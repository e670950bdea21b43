"""The library screen: recent books, and the ways to open another one.

Books are listed from the on-disk library (``bookpot.app.library``). A
book's state comes from the book cache when its reader linked it to a saved
state (``cache_key``): "ready" when the state holds the whole book (it
reopens with no prefill), "ingesting n%" / "paused n%" at its last
checkpoint, "new" when there is none (cleared, or never saved); otherwise
from what its last reader screen recorded. Removing a book also removes its
saved states (all models and settings) from the cache. Ctrl+F asks one question
to all the books (askall.py). Opening is delegated
to the app (``BookpotApp.open_book``), which validates the file and reports
any problem as a notification, so this screen never has to handle errors.
"""
from __future__ import annotations

import os

from rich.text import Text

from ...engine import bookcache, store
from ..library import BookRecord

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label

from .dialogs import ConfirmDialog, FileBrowser, typed_path


class PathInput(Input):
    """The path box: Delete at its end says what Delete does instead of nothing."""

    def action_delete_right(self) -> None:
        if self.selection.is_empty and self.cursor_position >= len(self.value):
            self.notify("Delete removes the character after the cursor here; to remove a book, "
                        "choose it in the list (Tab) and press Delete", severity="warning", timeout=6)
            return
        super().action_delete_right()


class LibraryScreen(Screen):
    """Recently opened books; open by path or by browsing."""

    AUTO_FOCUS = "#books"

    BINDINGS = [
        Binding("ctrl+o", "focus_path", "Open path", priority=True),
        Binding("ctrl+b", "browse", "Browse", priority=True),
        Binding("ctrl+f", "ask_library", "Ask library", priority=True),
        Binding("delete", "remove", "Remove"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="library-box"):
            yield Label("Recent books", id="library-title")
            yield DataTable(id="books", cursor_type="row", zebra_stripes=True)
            yield Label("No books yet: type a path below, or press Ctrl+B to browse.", id="empty")
            with Horizontal(id="open-row"):
                yield PathInput(placeholder="Path to a PDF, EPUB, .txt, .md or .html; Enter opens", id="path")
                yield Button("Browse…", id="browse", compact=True)
        yield Footer(compact=True, show_command_palette=False)  # Ctrl+P still opens it (Help says so)

    def on_mount(self) -> None:
        self.sub_title = "library"
        table = self.query_one("#books", DataTable)
        # 77 columns in all: the library fits 80 (issue #22 item 2); the format rides in the book's cell.
        table.add_column("Book", key="title", width=26)
        table.add_column("State", key="state", width=13)
        table.add_column("Tokens", key="tokens", width=8)
        table.add_column("Disk", key="disk", width=8)
        table.add_column("Model", key="model", width=12)
        self.refresh_books()
        self._busy = self._engines_busy()
        self.set_interval(1.0, self._poll)

    def on_screen_resume(self) -> None:
        self.refresh_books()

    def _engines_busy(self) -> int:
        return sum(not e.done.is_set() for e in getattr(self.app, "engines", []))

    def _poll(self) -> None:
        """A closed reader saves its book's state in the background: show it when it is done."""
        busy = self._engines_busy()
        if busy != self._busy:
            self._busy = busy
            if self.app.screen is self:
                self.refresh_books()

    def refresh_books(self) -> None:
        table = self.query_one("#books", DataTable)
        row = table.cursor_row
        table.clear()
        books = self.app.library.books()
        try:
            cached = bookcache.list_books(store.cache_root()) if books else []
        except OSError:
            cached = []
        for rec in books:
            pages = f"{rec.format} {rec.pages}p" if rec.pages else rec.format
            missing = "" if os.path.exists(rec.path) else " (missing)"
            state, tokens = book_state(rec)
            size, states = disk_use(rec.path, rec, books=cached)
            title = Text(rec.display_title + missing, overflow="ellipsis", no_wrap=True)
            if pages:
                title.append(f" {pages}", style="dim")
            table.add_row(title, state, f"{tokens:,}" if tokens else "–",
                          fmt_bytes(size) if states else "–", rec.model or "–", key=rec.path)
        table.display = bool(books)
        self.query_one("#empty").display = not books
        if books:
            table.move_cursor(row=min(row, len(books) - 1))
        else:
            self.query_one("#path").focus()

    def selected_path(self) -> str | None:
        table = self.query_one("#books", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return key.value

    # -- opening -------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.app.open_book(event.row_key.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = typed_path(event.value)
        if not path:
            return
        if self.app.open_book(path):
            event.input.value = ""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "browse":
            event.stop()
            self.action_browse()

    def action_focus_path(self) -> None:
        self.query_one("#path").focus()

    def action_browse(self) -> None:
        self.browse(os.getcwd())

    def browse(self, root: str) -> None:
        """The file browser at folder ``root``; the book chosen there opens."""
        def chosen(path: str | None) -> None:
            if path:
                self.app.open_book(path)

        self.app.push_screen(FileBrowser(root), chosen)

    def action_ask_library(self) -> None:
        """One question to every book of the library that is still on disk (askall.py)."""
        from .askall import AskLibraryScreen

        paths = [rec.path for rec in self.app.library.books() if os.path.isfile(rec.path)]
        if not paths:
            self.notify("the library has no books on disk yet: open one first", severity="warning")
            return
        settings = self.app.settings
        model = settings.model_name()
        if self.app.needs_download(model):
            self.app.ask_download(model, then=self.action_ask_library,
                                  declined="choose a downloaded model in Settings (F2) to ask the library")
            return
        self.app.push_screen(AskLibraryScreen(paths, model_name=model, threads=settings.threads,
                                              ram_cap_mb=settings.ram_cap_mb))

    def action_remove(self) -> None:
        """Ask first, saying what goes (its saved reading: size, reading time), then remove."""
        path = self.selected_path()
        if path is None:
            if isinstance(self.focused, Input):
                return
            self.notify("no book is selected", severity="warning")
            return
        rec = self.app.library.get(path)
        name = rec.display_title if rec else os.path.basename(path)
        size, states = disk_use(path, rec, current=True)
        lost = []
        if states:
            lost.append(f"{fmt_bytes(size)} on disk")
        if rec is not None and rec.read_s >= 1:
            lost.append(f"about {fmt_duration(rec.read_s)} of reading")
        tokens = book_state(rec)[1] if rec is not None else 0
        if tokens:
            lost.append(f"{tokens:,} tokens read")
        history = len(self.app.library.history(path))
        if history:
            lost.append(f"{history} question{'s' if history != 1 else ''} and answer{'s' if history != 1 else ''}")
        body = (f"Its saved reading goes with it: {', '.join(lost)}. " if lost else "Nothing of it is saved yet. ") + \
            "Reading it again takes as long. The file itself is not touched."

        def answer(yes: bool | None) -> None:
            if yes:
                self.remove_book(path)

        self.app.push_screen(ConfirmDialog(f"Remove “{name}” from the library?", body), answer)

    def remove_book(self, path: str) -> None:
        rec = self.app.library.get(path)
        try:
            self.app.library.remove(path)
        except OSError as e:
            self.notify(f"could not update the library: {e.strerror or e}", severity="error")
            return
        name = rec.display_title if rec else os.path.basename(path)
        removed, freed, busy = clear_cache(path, rec)
        cleared = (f" and {removed} saved state{'s' if removed != 1 else ''} ({freed / 2**20:,.1f} MiB) "
                   "from the cache" if removed else "")
        self.notify(f"removed {name} from the library{cleared} (the file is untouched)")
        if busy:
            self.notify(f"{name} is open in another reader: its saved state was kept "
                        "(`bookpot cache clear` removes it later)", severity="warning")
        self.refresh_books()


def fmt_bytes(n: int) -> str:
    """``"460 MiB"``, ``"4.5 GiB"``, ``"12 KiB"`` (binary units, at most 8 characters)."""
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:,.0f} MiB" if n >= 100 * 2**20 else f"{n / 2**20:,.1f} MiB"
    return f"{max(0, n) // 1024:,} KiB"


def fmt_duration(seconds: float) -> str:
    """``"19 min"``, ``"1 h 05 min"``, ``"40 s"``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m = s // 60
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _hashes(path: str, rec: BookRecord | None, current: bool) -> set[str]:
    hashes = {rec.doc_hash} if rec is not None and rec.doc_hash else set()
    if current and os.path.isfile(path):
        try:
            hashes.add(store.document_hash(path))
        except OSError:
            pass
    return {h for h in hashes if h}


def disk_use(path: str, rec: BookRecord | None, current: bool = False,
             books: list[dict] | None = None) -> tuple[int, int]:
    """(bytes, saved states) the book takes in the cache, all models and settings.

    By content hash: the one recorded when it was read, and with
    ``current`` the file's hash now (hashing reads the whole file).
    ``books``: ``bookcache.list_books`` already taken (one listing for a
    whole library)."""
    hashes = _hashes(path, rec, current)
    if not hashes:
        return 0, 0
    if books is None:
        books = bookcache.list_books(store.cache_root())
    mine = [m for m in books if (m.get("document") or {}).get("hash") in hashes]
    return sum(int(m.get("disk_bytes") or 0) for m in mine), len(mine)


def book_state(rec: BookRecord) -> tuple[str, int]:
    """(state text, tokens) of a library book, from its saved state when it has one."""
    if not rec.cache_key:
        return rec.state_text(), rec.tokens
    m = store.read_json(store.cache_root() / "books" / rec.cache_key / "manifest.json")
    if not isinstance(m, dict) or m.get("status") == "indexed":  # indexed for a question, not read
        return ("failed", rec.tokens) if rec.state == "failed" else ("new", 0)
    tokens = int(m.get("doc_tokens") or 0)
    if m.get("status") == "ready":
        return "ready", tokens
    if rec.state == "failed":
        return "failed", tokens
    progress = float(m.get("progress") or 0.0)
    return f"{'paused' if rec.state == 'paused' else 'ingesting'} {progress:.0%}", tokens


def clear_cache(path: str, rec: BookRecord | None) -> tuple[int, int, list[str]]:
    """Remove the book's saved states: (states removed, bytes freed, states in use and kept).

    By content hash: the one recorded when it was read, and the file's
    current one (it may have changed since).
    """
    hashes = _hashes(path, rec, current=True)
    removed = freed = 0
    busy: list[str] = []
    root = store.cache_root()
    for h in sorted(hashes):  # never clear(root, None): that clears every book
        try:
            n, f, b = bookcache.clear(root, h)
        except OSError:
            continue
        removed, freed, busy = removed + n, freed + f, busy + b
    return removed, freed, busy
