"""Install bookpot as a user would: sdist and wheel, pipx, use, uninstall.

Runs ``packaging/pipx_check.sh`` end to end once (about a minute here with
llama-cpp-python's wheel in pip's cache; see the script for what it checks)
and reads its ``pipx-check:`` lines. Marked ``packaging``: it runs in CI;
``-m "not packaging"`` leaves it out of a quick local run.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.packaging

SCRIPT = ROOT / "packaging" / "pipx_check.sh"


@pytest.fixture(scope="module")
def pipx_check(model_path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHON"] = sys.executable  # the venv running the tests runs pipx and build
    env["BOOKPOT_MODELS_DIR"] = str(model_path.parent)  # the model fetched once, not again
    p = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=1800)
    print(p.stdout)
    return p


def _lines(p, prefix: str) -> list[str]:
    return [l[len(prefix):] for l in p.stdout.splitlines() if l.startswith(prefix)]


def test_pipx_install_use_and_uninstall(pipx_check):
    p = pipx_check
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    out = p.stdout
    assert "pipx-check: ok: all checks passed" in out
    # llama-cpp-python came from the wheel pip had cached, not a second build.
    assert "not rebuilt" in out and "was built now" not in out
    assert "bookpot models fetch: " in out and "nothing downloaded or rewritten" in out
    assert "Ada Brennan" in out
    assert "native/hot.c compiled there and loads" in out
    assert "pipx uninstall bookpot: no venv, command or man page left" in out


def test_bookpot_writes_only_in_its_platformdirs_folders(pipx_check):
    """HOME and TMPDIR were empty folders; the script lists what bookpot left there."""
    assert pipx_check.returncode == 0, pipx_check.stderr[-3000:]
    assert _lines(pipx_check, "pipx-check: files bookpot wrote under the empty HOME and TMPDIR: ")
    allowed = ("home/.cache/bookpot/", "home/.config/bookpot/", "home/.local/share/bookpot/")
    written = [l.strip() for l in _lines(pipx_check, "pipx-check:   ")]
    assert all(w.startswith(allowed) for w in written), written


def test_cache_clear_empties_the_cache(pipx_check):
    assert pipx_check.returncode == 0, pipx_check.stderr[-3000:]
    assert "bookpot cache clear emptied ~/.cache/bookpot" in pipx_check.stdout
