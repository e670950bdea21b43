"""User settings (model, RAM cap, threads, theme), persisted as TOML.

The file lives in ``platformdirs.user_config_dir("bookpot")/config.toml``
(``BOOKPOT_CONFIG_DIR`` overrides the folder, so tests never touch a real
home). It is read with the standard library's ``tomllib``; writing needs
only flat ``key = value`` lines of strings, integers and booleans, so a
tiny writer here avoids a dependency. A damaged file never stops the app:
the defaults are used and the reason is returned for a notification.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from ..engine import store

CONFIG_NAME = "config.toml"
THEMES = ("textual-dark", "textual-light")


@dataclass
class Settings:
    """What the settings screen edits; ``None`` means "choose for me"."""

    model: str = ""            # registry name or path to a .gguf; "" = default model
    ram_cap_mb: int | None = None
    threads: int | None = None
    theme: str = "textual-dark"

    def model_name(self) -> str:
        from ..models import DEFAULT_MODEL

        return self.model.strip() or DEFAULT_MODEL


def config_dir() -> Path:
    env = os.environ.get("BOOKPOT_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir("bookpot"))


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


def load() -> tuple[Settings, str | None]:
    """The saved settings, and a one-line problem if the file was unusable."""
    path = config_path()
    if not path.exists():
        return Settings(), None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError) as e:
        return Settings(), f"settings file {path} is unreadable ({e}); using defaults"
    settings = Settings()
    for fld in fields(Settings):
        if fld.name not in data:
            continue
        value = data[fld.name]
        if fld.name in ("ram_cap_mb", "threads"):
            value = value if isinstance(value, int) and value > 0 else None
        elif not isinstance(value, str):
            continue
        setattr(settings, fld.name, value)
    if settings.theme not in THEMES:
        settings.theme = Settings.theme
    return settings, None


def save(settings: Settings) -> Path:
    """Write the settings atomically (a crash never leaves half a file)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# bookpot settings\n" + dumps(asdict(settings))
    store.replace_file(path, text.encode("utf-8"))
    return path


def dumps(data: dict) -> str:
    """Flat TOML: ``key = value`` per line; ``None`` values are left out."""
    lines = []
    for key, value in data.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04X}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
