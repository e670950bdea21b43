"""Documents in, answers out: readers, prefill, the KV pot, memory units.

The public doors are ``open_book(path, Options) -> Book`` (engine/api.py) and
``open_collection(paths, Options) -> Collection`` (engine/collection.py).
These names are imported on first use, so importing a small module of the
engine (``bookpot.engine.errors``) does not load llama.cpp.
"""

__all__ = ["Book", "Collection", "Options", "open_book", "open_collection"]


def __getattr__(name: str):
    if name in ("Book", "open_book"):
        from . import api

        return getattr(api, name)
    if name in ("Collection", "open_collection"):
        from . import collection

        return getattr(collection, name)
    if name == "Options":
        from .build import Options

        return Options
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
