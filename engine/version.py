"""bookpot's version and the llama-cpp-python it is pinned to.

Both are written once, in ``pyproject.toml`` (``version`` and the
``llama-cpp-python==X`` dependency), and read here from the installed
package's metadata: ``bookpot`` is importable only once installed (its
packages are mapped from the repository's top-level folders), editable or
not, so the metadata is always there.

``VERSION``: e.g. ``"0.1.0"``. ``LLAMA_CPP_PYTHON``: the exact
llama-cpp-python version ``native/`` and ``engine/llm.py`` talk to through
its ctypes ABI, e.g. ``"0.3.36"``. Importing this module raises
``ImportError`` with one sentence when the metadata is missing or carries
no exact pin.
"""
from __future__ import annotations

import re
from importlib import metadata

try:
    VERSION: str = metadata.version("bookpot")
    _requires = metadata.requires("bookpot") or []
except metadata.PackageNotFoundError as e:  # pragma: no cover - only without an install
    raise ImportError("bookpot is not installed (run `bash packaging/setup.sh`)") from e


def _pin(requirements: list[str], name: str) -> str:
    """The exact version in ``name==X`` among ``requirements`` (PEP 508 strings)."""
    pattern = re.compile(rf"^{re.escape(name)}\s*==\s*([0-9][0-9A-Za-z.+!-]*)\s*(;|$)", re.IGNORECASE)
    for req in requirements:
        m = pattern.match(req.strip())
        if m:
            return m.group(1)
    raise ImportError(f"bookpot's metadata pins no exact {name} version (see pyproject.toml)")


LLAMA_CPP_PYTHON: str = _pin(_requires, "llama-cpp-python")
