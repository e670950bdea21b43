"""The terminal reader: ``bookpot open BOOK`` and plain ``bookpot`` (the library).

``run()`` is the one entry point the CLI calls; ``python -m bookpot.app.tui
[BOOK]`` calls it too, so the TUI can be started without the CLI.
"""
from __future__ import annotations

MB = 1024 * 1024

__all__ = ["run"]


def run(book_path: str | None = None, model: str | None = None, threads: int | None = None,
        ram_cap: int | None = None) -> int:
    """Run the TUI until the user quits; return the exit code.

    ``model`` (registry name or .gguf path), ``threads`` and ``ram_cap``
    override the saved settings for this run only. ``ram_cap`` is in bytes;
    a value below 1 MiB is taken as megabytes.
    """
    from .. import config
    from .app import BookpotApp

    settings, problem = config.load()
    if model:
        settings.model = model
    if threads:
        settings.threads = threads
    if ram_cap:
        settings.ram_cap_mb = ram_cap if ram_cap < MB else max(1, ram_cap // MB)
    app = BookpotApp(book_path, settings, startup_warning=problem)
    try:
        app.run()
    finally:
        # A session must be closed by its own thread before the interpreter
        # tears llama.cpp down, and a book closed half-way is checkpointed
        # first (after the chunk being read): give running engines time.
        app.close_engines(wait=30.0)
    return app.return_code or 0
