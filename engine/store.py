"""Files on disk that must survive kill -9, full disks and a second process.

Everything bookpot saves goes through here:

- ``cache_root()``: the platformdirs user cache directory (or ``--cache-dir``
  / ``BOOKPOT_CACHE_DIR``), the only place bookpot writes besides the
  model directory and the config file.
- ``atomic_write()`` (``replace_file()`` underneath, which the library and
  the settings use too): write to a temporary file in the same directory,
  fsync, rename over the target. A reader sees the old file or the new one,
  never half of either; a failed write (ENOSPC, EFBIG) leaves the old file
  and no temporary behind, and raises ``CacheError`` with one sentence.
- ``locked()``: an exclusive ``flock`` on a lock file, so two processes on
  the same book take turns instead of corrupting it. The kernel drops the
  lock when a process dies, so a killed run never leaves a stale lock.
- ``digest()``: the checksum stored beside every unit and state file.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from .errors import CacheError

APP = "bookpot"


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """Where books' states, units and summaries live."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("BOOKPOT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"cannot create the cache directory {path}: {e.strerror or e}") from e
    return path


def digest(data: bytes | memoryview) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _disk_error(path: Path, e: OSError) -> CacheError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "file too large for this filesystem/limit" if e.errno == errno.EFBIG else "no space left on device"
        return CacheError(f"{what} while writing {path.name} in {path.parent}; "
                          "the cache was left as it was (free some space or use --cache-dir)")
    return CacheError(f"cannot write {path}: {e.strerror or e}")


def fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise _disk_error(path, e) from e


def write_failed(path: Path) -> CacheError:
    """The error for a file llama.cpp failed to write (it says only "0 bytes"): find out why."""
    import resource

    size = path.stat().st_size if path.exists() else 0
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and size + (1 << 20) >= soft:
        code = errno.EFBIG
    else:
        try:
            st = os.statvfs(path.parent)
            code = errno.ENOSPC if st.f_bavail * st.f_frsize < (64 << 20) else errno.EIO
        except OSError:
            code = errno.EIO
    return _disk_error(path, OSError(code, os.strerror(code)))


def replace_file(path: Path, data: bytes | memoryview | Callable[[object], None], *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` (bytes, or a function writing to a file) atomically.

    Written to a temporary file beside ``path`` (named for this process and
    thread, so two writers never share one), fsynced unless ``sync=False``,
    then renamed over ``path``: a reader sees the old file or the new one,
    never half of either. On any failure the temporary file is removed and
    the exception (``OSError`` for the disk's) propagates. The one atomic
    write of bookpot: the cache (``atomic_write``), the library, the
    settings and exported notes all go through it.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: Path, data: bytes | memoryview | Callable[[object], None], *, sync: bool = True) -> None:
    """``replace_file`` for the cache: a disk failure raises ``CacheError`` with one sentence.

    ``sync=False`` skips the fsync (the caller fsyncs a batch of files
    before the checkpoint that makes them count).
    """
    try:
        replace_file(path, data, sync=sync)
    except OSError as e:
        raise _disk_error(path, e) from e


def append_durable(path: Path, data: bytes) -> None:
    """Append and fsync. A torn tail is harmless: readers trust only what a checkpoint counts."""
    try:
        with open(path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _disk_error(path, e) from e


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes (what a checkpoint vouches for); create it if missing."""
    try:
        with open(path, "ab") as f:
            if f.tell() != size:
                f.truncate(size)
    except OSError as e:
        raise _disk_error(path, e) from e


def json_bytes(obj) -> bytes:
    """How bookpot writes JSON files: UTF-8, one-space indent."""
    return json.dumps(obj, ensure_ascii=False, indent=1).encode()


def atomic_write_json(path: Path, obj) -> None:
    """``atomic_write`` of ``obj``'s JSON (``CacheError`` on a disk failure)."""
    atomic_write(path, json_bytes(obj))


def read_json(path: Path):
    """The JSON in ``path``, or None when it is missing or damaged."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


class LockCancelled(Exception):
    """``locked(cancel=...)`` gave up waiting for another holder of the lock."""


@contextlib.contextmanager
def locked(path: Path, *, wait: Callable[[], None] | None = None, shared: bool = False,
           cancel: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold an flock on ``path`` (created if needed) for the ``with`` block.

    When another process holds it, ``wait()`` is called once (to tell the
    user) and we block until it is released -- or, with ``cancel``, poll
    until it is released or ``cancel()`` turns true (``LockCancelled``), so
    an app being closed never hangs on someone else's lock.
    """
    ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait is not None:
                wait()
            if cancel is None:
                fcntl.flock(fd, mode)
            else:
                while True:
                    if cancel():
                        raise LockCancelled(f"stopped waiting for {path}")
                    time.sleep(0.1)
                    try:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        continue
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def document_hash(path: str | os.PathLike) -> str:
    """Content hash of a document (streams the file: books can be large)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def once_per_file_version(memo: dict, path: str | os.PathLike, make: Callable[[], object]):
    """``make()``, computed once per version of the file at ``path`` (real path,
    size, mtime) and kept in ``memo``, which holds the last one only: a
    process uses one model at a time, as a rule. A file that cannot be
    stat'ed is not memoized (``make`` reports the problem)."""
    try:
        st = os.stat(path)
    except OSError:
        return make()
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in memo:
        value = make()
        memo.clear()
        memo[key] = value
    return memo[key]


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
