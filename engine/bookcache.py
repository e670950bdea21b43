"""A book's saved state: reopen without prefill, resume after a kill.

One directory per (document content, model, engine settings, engine
version) under ``cache_root()/books/<key>/``:

    manifest.json   what this is (document, model, settings), status, stats
    state.bin       the last checkpoint: the pot's kept tokens, locators and
                    counters, how many memory units are committed, and the
                    name and checksum of its KV file; magic + header + checksum
    kv-<n>.bin      the pot's KV (sequence 0) at checkpoint n, written by
                    llama_state_seq_save_file (streamed: no copy in RAM)
    units/ ...      the memory units (units.py)
    lock            flock'ed while a process reads or writes the book

Order of writes at a checkpoint: unit files are fsynced and the unit index
appended first, then the new ``kv-<n>.bin`` (a new name each time, fsynced),
then ``state.bin`` replaces the old one atomically, then the manifest; the
previous KV file is removed last. A run killed at any point leaves the previous checkpoint intact,
and anything written after it is cut off when the next run loads it. A
damaged ``state.bin`` (checksum) is detected, and the book is read again
from the start; it is never used.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store

ENGINE_VERSION = "bookpot-engine-4"  # bump when KV, unit or scoring formats change
MAGIC = b"BPSTATE1"


_MODEL_IDS: dict[tuple, str] = {}  # see model_id


def model_id(path: str | Path) -> str:
    """A cheap identity for a GGUF: size + hash of its first and last 4 MiB.

    Hashed once per file version in a process (``store.once_per_file_version``):
    a collection opens every book with the same model (~7 ms a book saved).
    """
    def make() -> str:
        size = os.path.getsize(path)
        h = hashlib.blake2b(digest_size=12)
        with open(path, "rb") as f:
            h.update(f.read(4 << 20))
            if size > 8 << 20:
                f.seek(size - (4 << 20))
                h.update(f.read())
        return f"{size}-{h.hexdigest()}"

    return store.once_per_file_version(_MODEL_IDS, path, make)


def book_key(doc_hash: str, model: str, settings: dict) -> str:
    """The cache folder's name for this document, model and settings; a new engine
    or a reader that now reads the document differently makes a new key."""
    from .readers import READER_VERSION

    blob = json.dumps({"doc": doc_hash, "model": model, "settings": settings, "engine": ENGINE_VERSION,
                       "reader": READER_VERSION}, sort_keys=True).encode()
    return store.digest(blob)[:20]


@dataclass
class Loaded:
    header: dict
    arrays: dict
    kv_path: Path


class BookCache:
    """The cache directory of one book under one set of settings."""

    def __init__(self, root: Path, *, doc_path: str, doc_hash: str, model: str, settings: dict,
                 doc_info: dict | None = None) -> None:
        self.root = Path(root)
        self.key = book_key(doc_hash, model, settings)
        self.dir = self.root / "books" / self.key
        self.doc_path, self.doc_hash, self.model, self.settings = doc_path, doc_hash, model, settings
        self.doc_info = doc_info or {}
        self.damaged = ""  # why a saved state was thrown away, for the user

    @property
    def units_dir(self) -> Path:
        return self.dir / "units"

    def lock(self, wait=None, cancel=None):
        store.ensure_dir(self.dir)
        return store.locked(self.dir / "lock", wait=wait, cancel=cancel)

    def manifest(self) -> dict | None:
        return store.read_json(self.dir / "manifest.json")

    # ------------------------------------------------------------- checkpoint
    def save(self, session) -> None:
        """Checkpoint ``session`` (units first, then the KV, the state, the manifest)."""
        store.ensure_dir(self.dir)
        old = self._kv_files()
        gen = 1 + max((n for n, _ in old), default=0)
        kv = self.dir / f"kv-{gen}.bin"
        tmp = self.dir / f".kv-{gen}.bin.{os.getpid()}.tmp"
        try:
            snap = session.snapshot(tmp)
            if snap is None:
                raise store.write_failed(tmp)
            store.fsync_file(tmp)
            os.replace(tmp, kv)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        header, arrays = snap
        specs, blobs, off = [], [], 0
        h = hashlib.blake2b(digest_size=16)  # = store.digest of the body, without building it
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            specs.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape), "offset": off})
            blobs.append(arr.tobytes())
            h.update(blobs[-1])
            off += len(blobs[-1])
        header = dict(header, arrays=specs, body_bytes=off, digest=h.hexdigest(), engine=ENGINE_VERSION,
                      kv_file=kv.name, kv_bytes=kv.stat().st_size, kv_digest=store.file_digest(kv))
        hbytes = json.dumps(header).encode()

        def write(f):
            f.write(MAGIC + struct.pack("<I", len(hbytes)) + hbytes)
            for b in blobs:
                f.write(b)

        try:
            store.atomic_write(self.dir / "state.bin", write)
        except BaseException:
            with contextlib.suppress(OSError):
                kv.unlink()
            raise
        for _, p in old:  # the previous checkpoint's KV: state.bin no longer names it
            with contextlib.suppress(OSError):
                p.unlink()
        session.retire_early()  # the chunks this checkpoint vouches for need no early KV
        st = session.stats
        store.atomic_write_json(self.dir / "manifest.json", {
            "key": self.key, "engine": ENGINE_VERSION, "updated": store.now(),
            "status": "ready" if session.finished else "ingesting",
            "document": dict(self.doc_info, path=self.doc_path, hash=self.doc_hash),
            "model": self.model, "settings": self.settings,
            "progress": round(session.last_progress, 4), "doc_tokens": st.doc_tokens,
            "units": st.units, "units_kv_bytes": st.units_kv_bytes,
            "units_without_kv": st.units_without_kv,
        })

    def note_indexed(self, book_tokens: int) -> None:
        """Say in the manifest that this book was indexed (textpass.py) but not read, unless a
        checkpoint already wrote one: so ``cache list`` names the book and ``cache clear BOOK``
        finds its index and early units (``status`` "indexed", ``book_tokens``)."""
        if (self.dir / "manifest.json").exists():
            return
        store.atomic_write_json(self.dir / "manifest.json", {
            "key": self.key, "engine": ENGINE_VERSION, "updated": store.now(), "status": "indexed",
            "document": dict(self.doc_info, path=self.doc_path, hash=self.doc_hash),
            "model": self.model, "settings": self.settings, "progress": 0.0, "doc_tokens": 0,
            "book_tokens": int(book_tokens),
        })

    def _kv_files(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.dir.glob("kv-*.bin"):
            with contextlib.suppress(ValueError):
                out.append((int(p.stem[3:]), p))
        return sorted(out)

    def load(self) -> Loaded | None:
        """The last checkpoint, or None (none saved, or damaged: see ``damaged``)."""
        path = self.dir / "state.bin"
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            if not raw.startswith(MAGIC):
                raise ValueError("bad magic")
            (hlen,) = struct.unpack_from("<I", raw, len(MAGIC))
            start = len(MAGIC) + 4
            header = json.loads(raw[start : start + hlen])
            body = memoryview(raw)[start + hlen :]
            if len(body) != header["body_bytes"] or store.digest(body) != header["digest"]:
                raise ValueError("checksum mismatch")
            if header.get("engine") != ENGINE_VERSION:
                raise ValueError("another engine version")
            kv = self.dir / str(header["kv_file"])
            if kv.parent != self.dir or not kv.is_file() or kv.stat().st_size != header["kv_bytes"] \
                    or store.file_digest(kv) != header["kv_digest"]:
                raise ValueError("its KV file is missing or damaged")
            arrays = {}
            for spec in header["arrays"]:
                dt = np.dtype(spec["dtype"])
                n = int(np.prod(spec["shape"])) if spec["shape"] else 1
                arrays[spec["name"]] = np.frombuffer(body, dtype=dt, count=n,
                                                     offset=spec["offset"]).reshape(spec["shape"]).copy()
            return Loaded(header, arrays, kv)
        except (ValueError, KeyError, TypeError, struct.error, OSError) as e:
            self.damaged = f"the saved state of this book was damaged ({e}); reading it again"
            self.discard()
            return None

    def discard(self) -> None:
        """Forget the saved reading state and its units (keep the lock file: another
        process may hold it). The text pass's index and the units prefilled on
        demand (textpass.py: ``units/lexicon.sqlite``, ``units/units/e*.kv``)
        stay: they depend only on the document and the settings in the key,
        and each is checked (SQLite, checksums) when used."""
        for name in ("state.bin", "manifest.json", "units.jsonl", "keys.f16", "tokens.i32"):
            try:
                (self.dir / name).unlink()
            except OSError:
                pass
        for _, p in self._kv_files():
            with contextlib.suppress(OSError):
                p.unlink()
        if self.units_dir.is_dir():
            for p in self.units_dir.iterdir():
                if p.name.startswith("lexicon.sqlite"):
                    continue
                if p.name == "units" and p.is_dir():
                    for f in p.iterdir():
                        if not (f.name.startswith("e") and f.name.endswith(".kv")):
                            with contextlib.suppress(OSError):
                                f.unlink()
                elif p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()
        store.ensure_dir(self.units_dir / "units")


# ------------------------------------------------------------------ listing
def list_books(root: Path) -> list[dict]:
    """Every cached book state: manifest plus size on disk (``disk_bytes``) and, for a book
    with memory units, their bytes per 1,000 tokens of book (``unit_bytes_per_1k_tokens``)."""
    out = []
    books = Path(root) / "books"
    if not books.is_dir():
        return out
    for d in sorted(books.iterdir()):
        m = store.read_json(d / "manifest.json") or {"key": d.name, "status": "incomplete"}
        m["dir"] = str(d)
        m["disk_bytes"] = store.dir_size(d)
        kv, n = _unit_file_bytes(d), m.get("doc_tokens")
        if kv and n:  # what this book's memory unit files cost (compact or f16, as on disk)
            m["unit_bytes_per_1k_tokens"] = round(1000 * kv / n)
        out.append(m)
    return out


def _unit_file_bytes(book_dir: Path) -> int:
    """Bytes of the unit KV files (units/units/u*.kv) of one book directory."""
    total = 0
    for p in (book_dir / "units" / "units").glob("u*.kv"):
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def clear(root: Path, doc_hash: str | None = None) -> tuple[int, int, list[str]]:
    """Remove cached books (all, or those of one document) and, for all, summaries
    and the library's shelf and merged indexes (engine/collection.py: they
    hold copies of the books' text).

    Returns (books removed, bytes freed, books skipped because in use).
    """
    import fcntl
    import os

    removed = freed = 0
    busy: list[str] = []
    for m in list_books(root):
        if doc_hash and (m.get("document") or {}).get("hash") != doc_hash:
            continue
        d = Path(m["dir"])
        fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append((m.get("document") or {}).get("path", d.name))
                continue
            size = m["disk_bytes"]
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
            freed += size
        finally:
            os.close(fd)
    if doc_hash is None:
        for extra in ("summaries", "library"):
            p = Path(root) / extra
            if p.exists():
                freed += store.dir_size(p)
                shutil.rmtree(p, ignore_errors=True)
    return removed, freed, busy
