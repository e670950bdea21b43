"""The library screen: recent books, and the ways to open another one.

Books are listed from the on-disk library (``bookpot.app.library``) with the
state their last reader screen left them in. Opening is delegated to the
app (``BookpotApp.open_book``), which validates the file and reports any
problem as a notification, so this screen never has to handle errors.
"""
from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label

from .dialogs import FileBrowser


class LibraryScreen(Screen):
    """Recently opened books; open by path or by browsing."""

    AUTO_FOCUS = "#books"

    BINDINGS = [
        Binding("ctrl+o", "focus_path", "Open path", priority=True),
        Binding("ctrl+b", "browse", "Browse", priority=True),
        Binding("delete", "remove", "Remove"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="library-box"):
            yield Label("Recent books", id="library-title")
            yield DataTable(id="books", cursor_type="row", zebra_stripes=True)
            yield Label("No books yet: type a path below, or press Ctrl+B to browse.", id="empty")
            with Horizontal(id="open-row"):
                yield Input(placeholder="Path to a PDF, EPUB, .txt, .md or .html; Enter opens", id="path")
                yield Button("Browse…", id="browse", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "library"
        table = self.query_one("#books", DataTable)
        table.add_column("Book", key="title", width=24)
        table.add_column("State", key="state", width=13)
        table.add_column("Tokens", key="tokens", width=9)
        table.add_column("Model", key="model", width=12)
        table.add_column("Format", key="format", width=8)
        self.refresh_books()

    def on_screen_resume(self) -> None:
        self.refresh_books()

    def refresh_books(self) -> None:
        table = self.query_one("#books", DataTable)
        row = table.cursor_row
        table.clear()
        books = self.app.library.books()
        for rec in books:
            pages = f"{rec.format} {rec.pages}p" if rec.pages else rec.format
            missing = "" if os.path.exists(rec.path) else " (missing)"
            table.add_row(rec.display_title + missing, rec.state_text(),
                          f"{rec.tokens:,}" if rec.tokens else "–", rec.model or "–", pages,
                          key=rec.path)
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
        path = os.path.expanduser(event.value.strip())
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
        def chosen(path: str | None) -> None:
            if path:
                self.app.open_book(path)

        self.app.push_screen(FileBrowser(os.getcwd()), chosen)

    def action_remove(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        rec = self.app.library.get(path)
        try:
            self.app.library.remove(path)
        except OSError as e:
            self.notify(f"could not update the library: {e.strerror or e}", severity="error")
            return
        name = rec.display_title if rec else os.path.basename(path)
        self.notify(f"removed {name} from the library (the file is untouched)")
        self.refresh_books()
