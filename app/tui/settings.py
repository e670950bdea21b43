"""The settings screen: model, RAM cap, threads and theme, saved as TOML.

Values are checked before saving (an unknown model name or a zero thread
count is a notification, not a saved mistake). Model, RAM cap and threads
apply to the next book opened: a running book keeps the session it has.
The RAM cap sizes the session's plan (the pot) as ``--ram-cap`` does, and
the memory gauge shows it; empty means ``engine.plan.default_cap()``.
"""
from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static

from ...models import DEFAULT_MODEL, REGISTRY
from .. import config
from ..config import Settings


def check(model: str, ram: str, threads: str) -> tuple[Settings | None, str]:
    """Parse the form; (settings, "") or (None, what is wrong)."""
    model = model.strip()
    if model and model not in REGISTRY:
        path = os.path.expanduser(model)
        if not os.path.isfile(path):
            return None, f"model {model!r} is neither a known name ({', '.join(REGISTRY)}) nor a file"
        model = path
    values = {}
    for name, raw, low in (("ram_cap_mb", ram, 64), ("threads", threads, 1)):
        raw = raw.strip()
        if not raw:
            values[name] = None
            continue
        try:
            n = int(raw)
        except ValueError:
            return None, f"{name.replace('_', ' ')} must be a whole number"
        if n < low:
            return None, f"{name.replace('_', ' ')} must be at least {low}"
        values[name] = n
    return Settings(model=model, **values), ""


class SettingsScreen(ModalScreen[Settings | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        s = self.settings
        models = ", ".join(REGISTRY)
        with VerticalScroll(id="settings-box", classes="dialog"):
            yield Label("Settings", id="settings-title")
            yield Static(f"Model ({models} or a .gguf path)")
            yield Input(s.model, placeholder=DEFAULT_MODEL, id="model", compact=True,
                        suggester=SuggestFromList(list(REGISTRY), case_sensitive=False))
            yield Static("RAM cap in MB (empty: half the available RAM, at most 4096)")
            yield Input("" if s.ram_cap_mb is None else str(s.ram_cap_mb), type="integer",
                        placeholder="auto", id="ram", compact=True)
            yield Static("Threads (empty: all cores this process may use)")
            yield Input("" if s.threads is None else str(s.threads), type="integer",
                        placeholder="auto", id="threads", compact=True)
            yield Static("Theme")
            yield Select([("dark", "textual-dark"), ("light", "textual-light")], value=s.theme,
                         allow_blank=False, id="theme", compact=True)
            with Horizontal(id="settings-buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static("Model, RAM cap and threads apply to the next book opened.", classes="hint")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        new, problem = check(self.query_one("#model", Input).value, self.query_one("#ram", Input).value,
                             self.query_one("#threads", Input).value)
        if new is None:
            self.notify(problem, title="Settings not saved", severity="error")
            return
        theme = self.query_one("#theme", Select).value
        new.theme = theme if theme in config.THEMES else self.settings.theme
        try:
            path = config.save(new)
        except OSError as e:
            self.notify(f"could not save settings: {e.strerror or e}", severity="error")
            return
        self.notify(f"settings saved to {path}")
        self.dismiss(new)

    def action_cancel(self) -> None:
        self.dismiss(None)
