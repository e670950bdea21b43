"""Memory units (InfLLM): every chunk's KV on disk, the relevant ones back per question.

The pot keeps the gist of a book; units keep the rest within reach. While a
chunk is prefilled, the native tap copies its pre-RoPE keys (K projection
rows of a few layers) and the attention each of its tokens receives from
the chunk's own queries. The chunk is then cut into units of
``unit_tokens`` tokens, and for each unit:

- its KV goes to disk: ``seq_cp`` the unit's positions into scratch sequence
  1, ``llama_state_seq_save_file(1)`` into memory, ``seq_rm(1)``; the file's
  token list holds the positions. kvpack.py re-encodes its f16 K rows as
  ggml q8_0 blocks and V rows as q4_0 blocks, zstd on top: ~7.3 KB per
  token for the default model instead of ~23 KB (bench/RESULTS.md). Files
  of the previous format (llama.cpp's own, f16) still load as they are;
- its ``repr_tokens`` most-attended tokens' keys are its representative
  keys (InfLLM's r_k), f16: 4 tokens x 3 layers x 192 values = 4.6 KB per
  unit, 36 MB for a 1M-token book in 128-token units. They and the units'
  tokens live in files, not in RAM: a lookup streams the keys in blocks of
  ``KEY_BLOCK`` units, so the process's memory does not grow with the book
  (only the small per-unit index does, ~0.2 KB per 128 tokens).

At question time the question's pre-RoPE queries score every unit
(sum over layers, heads and representative keys of q.k, each layer
z-normalised across units), and the top ``k`` are restored into scratch
sequence 1, shifted to the positions right after the pot, copied into
sequence 0, and removed again with the question (``Session.ask_stream``).
Pre-RoPE vectors compare content as if query and key sat at the same
position, which is where the loaded unit is placed: next to the question.

Files (all under the book's cache directory, see bookcache.py):

    units/u0000042.kv   the unit's KV: kvpack's compact file (or llama.cpp's f16 file)
    units.jsonl         one line per unit: token range, locator, checksum
    keys.f16            representative keys, one fixed-size record per unit
    tokens.i32          every unit's tokens (rebuild and citations)

Lines and records past the count in the last checkpoint are ignored, so a
run killed between a unit write and the checkpoint never leaves a unit the
index trusts but the disk lacks. A unit whose file is missing or fails its
checksum is rebuilt from its tokens (decoded again in place) and rewritten.
Beyond ``disk_cap`` units keep tokens and keys only: they are still found
by lookup and recomputed when loaded (slower), and stats say how many.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import kvpack, store
from .errors import ModelError

KEY_BLOCK = 1024  # units' keys read per step of a lookup (4.6 MB)
SCRATCH_SEQ = 1


@dataclass
class UnitConfig:
    k: int = 4  # units loaded per question, at most (0: lookup off)
    min_ratio: float = 0.5  # load a unit only if its score is >= this share of the best one's
    unit_tokens: int = 128
    repr_tokens: int = 4
    layers: tuple[int, ...] | None = None  # None: key_layers(model)
    disk_cap: int | None = None  # bytes of unit KV per book; None = no limit
    # How unit files store K and V (kvpack.FORMATS; "f16": llama.cpp's own file). Default:
    # DEFAULT_FORMAT, or the developer setting BOOKPOT_UNIT_FORMAT (benchmarks compare formats).
    kv_format: str = field(default_factory=lambda: default_format())

    def room(self) -> int:
        """KV positions the loaded units need beside the pot."""
        return self.k * self.unit_tokens


DEFAULT_FORMAT = "k8v4+zstd"  # chosen by bench/unit_formats.py (bench/RESULTS.md)


def default_format() -> str:
    """The unit file format new units get: ``BOOKPOT_UNIT_FORMAT`` if set, else DEFAULT_FORMAT."""
    fmt = os.environ.get("BOOKPOT_UNIT_FORMAT") or DEFAULT_FORMAT
    try:
        kvpack.format_types(fmt)
    except ValueError:
        from .errors import BookpotError

        raise BookpotError(f"BOOKPOT_UNIT_FORMAT: unknown unit format {fmt!r} "
                           f"(one of {', '.join(kvpack.FORMATS)}, optionally with +zstd)") from None
    return fmt


KEY_LAYER_DEPTHS = (0.27, 0.30, 0.60)


def key_layers(n_layer: int) -> tuple[int, ...]:
    """Layers whose keys find the right unit, as fractions of the stack.

    Measured on SmolLM2-135M (30 layers; pass-key documents with the key
    at 10/50/80%, 14 units of 128 tokens, bench/unit_layers.py): with
    attention-picked representative keys, layers 8, 9 and 18 ranked the
    key's unit first in every trial; layers 0-2 never did, and the
    middle-late layers 10-13 were erratic.
    """
    return tuple(sorted({min(n_layer - 1, max(0, round(f * n_layer))) for f in KEY_LAYER_DEPTHS}))


@dataclass
class Unit:
    uid: int
    tok0: int  # offset into tokens.i32
    n: int
    loc_id: int
    kv: bool  # KV on disk (False: beyond the disk cap, recomputed when loaded)
    digest: str
    nbytes: int

    def line(self) -> str:
        return json.dumps({"id": self.uid, "tok0": self.tok0, "n": self.n, "loc": self.loc_id,
                           "kv": self.kv, "digest": self.digest, "bytes": self.nbytes})


class UnitIndex:
    """Every unit's record, in numpy columns: ~57 bytes a unit instead of ~310
    as ``Unit`` objects, so a million-token book's index costs ~0.5 MiB of RAM
    (the soak saw the object list grow the process by ~2.5 MiB per 1M tokens).
    Reads as a list of ``Unit`` (the uid is the row)."""

    DTYPE = np.dtype([("tok0", "<i8"), ("n", "<i4"), ("loc", "<i4"), ("kv", "?"), ("nbytes", "<i8"),
                      ("digest", "S32")])

    def __init__(self, units=()) -> None:
        self._rows = np.zeros(64, self.DTYPE)
        self._len = 0
        for u in units:
            self.append(u)

    def __len__(self) -> int:
        return self._len

    def append(self, u: Unit) -> None:
        if u.uid != self._len:
            raise ValueError(f"unit {u.uid} appended as row {self._len}")
        if self._len == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros(len(self._rows), self.DTYPE)])
        self._len += 1
        self[u.uid] = u

    def __setitem__(self, uid: int, u: Unit) -> None:
        self._rows[self._row(uid)] = (u.tok0, u.n, u.loc_id, u.kv, u.nbytes, u.digest.encode("ascii"))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        i = self._row(int(i))
        r = self._rows[i]
        return Unit(i, int(r["tok0"]), int(r["n"]), int(r["loc"]), bool(r["kv"]), r["digest"].decode("ascii"),
                    int(r["nbytes"]))

    def __iter__(self):
        return (self[i] for i in range(self._len))

    def _row(self, i: int) -> int:
        j = i + self._len if i < 0 else i
        if not 0 <= j < self._len:
            raise IndexError(f"no unit {i}")
        return j

    def kv_tokens(self) -> int:
        """Tokens of the units whose KV is on disk."""
        rows = self._rows[: self._len]
        return int(rows["n"][rows["kv"]].sum())


class UnitStore:
    """One book's units: KV, keys and tokens on disk; the index in RAM.

    Larger than ~250 lines: writing, committing, loading, looking up and
    placing units all keep one crash-safety rule (nothing past the last
    checkpoint is trusted) over the same four files; the byte format of a
    unit's KV is apart, in kvpack.py.
    """

    def __init__(self, root: Path, model, cfg: UnitConfig, lexicon=None) -> None:
        self.root = Path(root)
        self.cfg = cfg
        self.model = model
        self.lexicon = lexicon  # engine.lexicon.Lexicon: each unit's text goes into its BM25 index
        self.layers = tuple(cfg.layers or key_layers(model.n_layer))
        self.n_head, self.n_head_kv, self.head_dim = model.n_head, model.n_head_kv, model.head_dim
        self.kv_dim = self.n_head_kv * self.head_dim
        self.rec_shape = (len(self.layers), cfg.repr_tokens, self.kv_dim)
        self.units = UnitIndex()
        # Written since the last commit; the committed ones are in the files.
        self._keys_pending: list[np.ndarray] = []  # per unit (L, r, kv_dim) f16
        self._tokens_pending: list[int] = []
        self.n_tokens = 0
        self._kv_tokens = 0  # tokens of the units whose KV is on disk
        self.kv_bytes = 0
        self.without_kv = 0
        self.rebuilt = 0
        self._pending: list[Path] = []  # written since the last commit (fsync at commit)
        self._committed = 0
        self._committed_tokens = 0
        store.ensure_dir(self.root / "units")

    # ---------------------------------------------------------------- write
    def add_chunk(self, ctx, pos0: int, tokens: list[int], loc_id: int,
                  attention: np.ndarray, keys: np.ndarray, skip: int = 0) -> None:
        """Cut a just-prefilled chunk (positions pos0..) into units and save them.

        ``attention[i]``: attention token i received from the chunk's queries;
        ``keys``: (layers, len(tokens), kv_dim) pre-RoPE keys. The first
        ``skip`` tokens (the document's attention sinks) go into no unit:
        the pot always keeps them, and a second copy placed next to the
        question draws the attention of every query, whatever it asks
        (measured: with the book's first unit loaded beside the right one,
        the default model stopped answering the pass key).
        """
        for a, b, rec in self.cut(attention, keys, skip):
            self._save(ctx, pos0 + a, tokens[a:b], loc_id, rec)

    def cut(self, attention: np.ndarray, keys: np.ndarray, skip: int = 0) -> list[tuple[int, int, np.ndarray]]:
        """A chunk's units: [(a, b, representative keys (layers, repr_tokens, kv_dim) f16)].

        Units are ``unit_tokens`` long from ``skip`` on (the last one may be
        shorter); their keys are those of the tokens the chunk's queries
        attended most (``attention`` per token, ``keys`` as in ``add_chunk``).
        textpass.py cuts the same ranges without the model.
        """
        n_all = len(attention)
        # Later tokens are seen by fewer of the chunk's (causal) queries.
        seen_by = np.arange(n_all, 0, -1, dtype=np.float32)
        att = attention / seen_by
        step = self.cfg.unit_tokens
        out = []
        for a in range(min(skip, n_all), n_all, step):
            b = min(n_all, a + step)
            r = min(self.cfg.repr_tokens, b - a)
            top = a + np.argsort(-att[a:b], kind="stable")[:r]
            rec = np.zeros(self.rec_shape, dtype=np.float16)
            rec[:, :r, :] = keys[:, np.sort(top), :]
            out.append((a, b, rec))
        return out

    def _save(self, ctx, p0: int, tokens: list[int], loc_id: int, rec: np.ndarray) -> None:
        uid = len(self.units)
        n = len(tokens)
        kv, digest, nbytes = False, "", 0
        per_token = self.kv_bytes / max(1, self._kv_tokens) if self.kv_bytes else 0
        over_cap = self.cfg.disk_cap is not None and self.kv_bytes + per_token * n > self.cfg.disk_cap
        if not over_cap:
            digest, nbytes = self._write_kv(ctx, uid, p0, n)
            kv = True
            self.kv_bytes += nbytes
            self._kv_tokens += n
        else:
            self.without_kv += 1
        if self.lexicon is not None:
            self.lexicon.add_unit(uid, self.text_for_index(uid, tokens))
        self.units.append(Unit(uid, self.n_tokens, n, loc_id, kv, digest, nbytes))
        self.n_tokens += n
        self._tokens_pending.extend(tokens)
        self._keys_pending.append(rec)

    def _write_kv(self, ctx, uid: int, p0: int, n: int, path: Path | None = None) -> tuple[str, int]:
        """Save positions p0..p0+n of sequence 0 as unit ``uid``'s file (or ``path``); (digest, bytes).

        In ``cfg.kv_format`` (kvpack.py): llama.cpp writes the sequence into
        memory, its K and V rows are re-encoded and only the compact file
        reaches the disk (temporary name, then renamed; fsynced at commit).
        A sequence kvpack cannot parse is stored as llama.cpp wrote it.
        """
        path = path or self.path(uid)
        ctx.seq_rm(SCRATCH_SEQ, -1, -1)
        ctx.seq_cp(0, SCRATCH_SEQ, p0, p0 + n)
        try:
            if self.cfg.kv_format == "f16":
                return self._write_f16(ctx, path)
            raw = ctx.state_seq_save_bytes(SCRATCH_SEQ)
        finally:
            ctx.seq_rm(SCRATCH_SEQ, -1, -1)
        if raw is None:
            raise store.CacheError(f"llama.cpp could not save memory unit {path.name}")
        try:
            data = kvpack.pack(raw, self.cfg.kv_format)
        except kvpack.PackError:
            data = raw
        store.atomic_write(path, data, sync=False)
        self._pending.append(path)
        return store.digest(data), len(data)

    def _write_f16(self, ctx, path: Path) -> tuple[str, int]:
        """llama_state_seq_save_file of the scratch sequence, straight to ``path`` (the f16 format)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        ok = ctx.state_seq_save(SCRATCH_SEQ, tmp) is not None
        try:
            if not ok:
                raise store.write_failed(tmp)
            digest, nbytes = store.file_digest(tmp), tmp.stat().st_size
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._pending.append(path)
        return digest, nbytes

    def path(self, uid: int) -> Path:
        return unit_path(self.root, uid)

    # ---------------------------------------------------------- early units
    def early_path(self, uid: int) -> Path:
        """The KV file of unit ``uid`` prefilled on demand before reading reached it (textpass.py)."""
        return unit_path(self.root, uid, early=True)

    def write_early(self, ctx, uid: int, p0: int, n: int) -> tuple[str, int]:
        """Save positions p0..p0+n of sequence 0 as early unit ``uid`` (durable at once); (digest, bytes)."""
        digest, nbytes = self._write_kv(ctx, uid, p0, n, self.early_path(uid))
        self._pending.pop()
        store.fsync_file(self.early_path(uid))
        return digest, nbytes

    def early_room(self, n_tokens: int, early_bytes: int) -> bool:
        """Whether ``n_tokens`` more tokens of early units stay under ``disk_cap``
        beside the units' KV and the early units already on disk (``early_bytes``).
        Bytes per token: the units' so far, else ``kvpack.bytes_per_token``."""
        if self.cfg.disk_cap is None:
            return True
        return self.kv_bytes + early_bytes + self.kv_bytes_for(n_tokens) <= self.cfg.disk_cap

    def kv_bytes_for(self, n_tokens: int) -> int:
        """Expected disk bytes of ``n_tokens`` tokens of unit KV: the units' so far
        per token, else ``kvpack.bytes_per_token`` of the format (before zstd)."""
        if self._kv_tokens:
            return round(self.kv_bytes / self._kv_tokens * n_tokens)
        return kvpack.bytes_per_token(self.cfg.kv_format, self.model.n_layer, self.kv_dim) * n_tokens

    def remove_early(self, uid: int) -> None:
        """Delete early unit ``uid``'s file (an adopted unit keeps its own name, a hard link)."""
        with contextlib.suppress(FileNotFoundError):
            self.early_path(uid).unlink()

    def early_ok(self, uid: int, digest: str, nbytes: int) -> bool:
        """Early unit ``uid``'s file is there, of its size and checksum."""
        return _file_ok(self.early_path(uid), nbytes, digest)

    def load_early(self, ctx, uid: int, n: int, pos: int) -> bool:
        """Put early unit ``uid`` (``n`` tokens) into sequence 0 at pos..; False if its file would not load
        (its checksum was checked by ``early_ok``)."""
        return self._load_file(ctx, self.early_path(uid), n, pos)

    def adopt(self, uid: int, tokens: list[int], loc_id: int, digest: str, nbytes: int, rec: np.ndarray) -> None:
        """Reading reached early unit ``uid``: it becomes an ordinary unit, its KV file reused.

        The file gets the ordinary name as a hard link (a copy where the
        file system has none), so the early row stays valid until the next
        checkpoint vouches for the unit.
        """
        if uid != len(self.units):
            raise ValueError(f"unit {uid} adopted as row {len(self.units)}")
        src, dst = self.early_path(uid), self.path(uid)
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:
            import shutil

            shutil.copyfile(src, dst)
            self._pending.append(dst)
        if self.lexicon is not None:
            self.lexicon.add_unit(uid, self.text_for_index(uid, tokens))
        self.units.append(Unit(uid, self.n_tokens, len(tokens), loc_id, True, digest, nbytes))
        self.kv_bytes += nbytes
        self._kv_tokens += len(tokens)
        self.n_tokens += len(tokens)
        self._tokens_pending.extend(tokens)
        self._keys_pending.append(np.asarray(rec, np.float16).reshape(self.rec_shape))

    def _load_file(self, ctx, path: Path, n: int, pos: int, data: bytes | None = None) -> bool:
        """Restore unit file ``path`` (``n`` tokens) into sequence 0 at pos.. (``load_file``)."""
        return load_file(ctx, path, n, pos, data)

    def text_for_index(self, uid: int, tokens: list[int] | None = None) -> str:
        """What the lexicon indexes for unit ``uid``: the end of the unit before
        it (``lexicon.OVERLAP`` tokens) and its own text, so a sentence the
        unit boundary cuts is found whole in the later unit."""
        from .lexicon import OVERLAP

        own = tokens if tokens is not None else self.unit_tokens(uid)
        prev = self.unit_tokens(uid - 1)[-OVERLAP:] if uid > 0 else []
        return self.model.detokenize(list(prev) + list(own))

    def commit(self) -> dict:
        """Make every unit so far durable; returns the counts a checkpoint records."""
        for p in self._pending:
            with contextlib.suppress(OSError):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._pending.clear()
        new = self.units[self._committed:]
        if new:
            lines = "".join(u.line() + "\n" for u in new).encode()
            keys = np.stack(self._keys_pending).astype(np.float16).tobytes()
            toks = np.asarray(self._tokens_pending, dtype=np.int32).tobytes()
            for name, data in (("units.jsonl", lines), ("keys.f16", keys), ("tokens.i32", toks)):
                store.append_durable(self.root / name, data)
        self._keys_pending.clear()
        self._tokens_pending.clear()
        if self.lexicon is not None:
            self.lexicon.commit()
        self._committed = len(self.units)
        self._committed_tokens = self.n_tokens
        return {"n_units": len(self.units), "n_tokens": self.n_tokens,
                "kv_bytes": self.kv_bytes, "without_kv": self.without_kv}

    # ----------------------------------------------------------------- read
    def load(self, counts: dict) -> None:
        """Read the index a checkpoint vouches for; cut anything written after it."""
        n_units, n_tokens = int(counts["n_units"]), int(counts["n_tokens"])
        units, index_bytes = read_index(self.root, n_units)
        if len(units) < n_units:
            raise ValueError("the unit index is shorter than the checkpoint says")
        self.units = UnitIndex(units)
        key_bytes = n_units * self._rec_bytes
        for name, size in (("keys.f16", key_bytes), ("tokens.i32", 4 * n_tokens)):
            have = (self.root / name).stat().st_size if (self.root / name).exists() else 0
            if have < size:
                raise ValueError("the unit keys or tokens are shorter than the checkpoint says")
        self._keys_pending.clear()
        self._tokens_pending.clear()
        self.n_tokens = n_tokens
        self._kv_tokens = self.units.kv_tokens()
        self.kv_bytes = int(counts.get("kv_bytes", 0))
        self.without_kv = int(counts.get("without_kv", 0))
        self._committed, self._committed_tokens = n_units, n_tokens
        for name, size in (("units.jsonl", index_bytes),
                           ("keys.f16", key_bytes), ("tokens.i32", 4 * n_tokens)):
            store.truncate(self.root / name, size)
        for p in (self.root / "units").glob("u*.kv"):  # files of units past the checkpoint
            with contextlib.suppress(ValueError, OSError):
                if int(p.stem[1:]) >= n_units:
                    p.unlink()

    @property
    def _rec_bytes(self) -> int:
        return int(np.prod(self.rec_shape)) * 2

    def key_blocks(self):
        """Every unit's representative keys, in order, as (b, L, r, kv_dim) f16 blocks.

        Committed keys are read from keys.f16 a block at a time (never the
        whole file), then the pending ones follow.
        """
        rec = self._rec_bytes // 2
        path = self.root / "keys.f16"
        for a in range(0, self._committed, KEY_BLOCK):
            b = min(self._committed, a + KEY_BLOCK)
            arr = np.fromfile(path, dtype=np.float16, count=(b - a) * rec, offset=a * self._rec_bytes)
            if arr.size != (b - a) * rec:  # cut on disk after load(): score those units 0
                arr = np.concatenate([arr, np.zeros((b - a) * rec - arr.size, np.float16)])
            yield arr.reshape((b - a, *self.rec_shape))
        if self._keys_pending:
            yield np.stack(self._keys_pending)

    def unit_tokens(self, uid: int) -> list[int]:
        u = self.units[uid]
        if u.tok0 >= self._committed_tokens:
            a = u.tok0 - self._committed_tokens
            return self._tokens_pending[a : a + u.n]
        return np.fromfile(self.root / "tokens.i32", dtype=np.int32, count=u.n, offset=4 * u.tok0).tolist()

    # --------------------------------------------------------------- lookup
    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Relevance of every unit to the question.

        ``queries``: (layers, n_q, n_head * head_dim) pre-RoPE question rows.
        Per layer: the mean query of each head, summed within its KV group
        (GQA), dotted with the unit's representative keys and summed; each
        layer's scores are z-normalised across units, then added.
        """
        n_units = len(self.units)
        total = np.zeros(n_units, dtype=np.float32)
        if n_units == 0:
            return total
        g = self.n_head // self.n_head_kv
        qbar = queries.mean(axis=1).reshape(len(self.layers), self.n_head_kv, g, self.head_dim).sum(axis=2)
        per_layer = np.zeros((len(self.layers), n_units), dtype=np.float32)
        a = 0
        for block in self.key_blocks():
            b = a + len(block)
            for li in range(len(self.layers)):
                k = block[:, li].astype(np.float32).reshape(b - a, -1, self.n_head_kv, self.head_dim)
                per_layer[li, a:b] = np.einsum("urgd,gd->u", k, qbar[li])
            a = b
        for s in per_layer:
            sd = s.std()
            total += (s - s.mean()) / (sd if sd > 0 else 1.0)
        return total

    def top(self, queries: np.ndarray, k: int, min_ratio: float = 0.0) -> list[tuple[int, float]]:
        """Up to k best units as (uid, score), best first.

        With ``min_ratio``, a unit scoring below that share of the best
        unit's score is left out: a small model is easily distracted, and
        measured on pass-key books the default model answered with the right
        unit alone (or with one or two near-ties) but not with it plus three
        unrelated pages of filler.
        """
        s = self.scores(queries)
        if k <= 0 or s.size == 0:
            return []
        idx = np.argsort(-s, kind="stable")[:k]
        best = float(s[idx[0]])
        return [(int(i), float(s[i])) for i in idx
                if not (min_ratio > 0 and best > 0 and float(s[i]) < min_ratio * best)]

    # ---------------------------------------------------------------- swap-in
    def place(self, ctx, uid: int, pos: int) -> str:
        """Put unit ``uid`` into sequence 0 at positions pos.. ; return how.

        "disk": restored from its file; "rebuilt": its file was missing or
        damaged, so its tokens were decoded again and the file rewritten;
        "recomputed": a unit beyond the disk cap, decoded from its tokens.
        """
        u = self.units[uid]
        if u.kv:
            data = read_ok(self.path(uid), u.nbytes, u.digest)
            if data is not None and self._load_file(ctx, self.path(uid), u.n, pos, data):
                return "disk"
        ctx.decode(self.unit_tokens(uid), pos, logits="none")
        if not u.kv:
            return "recomputed"
        with contextlib.suppress(store.CacheError):  # a read-only or full disk: still answer
            digest, nbytes = self._write_kv(ctx, uid, pos, u.n)
            self._pending.clear()
            self.units[uid] = Unit(u.uid, u.tok0, u.n, u.loc_id, True, digest, nbytes)
            self._rewrite_index()
        self.rebuilt += 1
        return "rebuilt"

    def _file_ok(self, u: Unit) -> bool:
        return _file_ok(self.path(u.uid), u.nbytes, u.digest)

    def _rewrite_index(self) -> None:
        lines = "".join(u.line() + "\n" for u in self.units[: self._committed]).encode()
        store.atomic_write(self.root / "units.jsonl", lines)

    def disk_bytes(self) -> int:
        return store.dir_size(self.root)


def unit_path(root: Path, uid: int, *, early: bool = False) -> Path:
    """Unit ``uid``'s KV file under a book's units folder ``root`` (``early``: prefilled on demand)."""
    return Path(root) / "units" / f"{'e' if early else 'u'}{uid:07d}.kv"


def read_index(root: Path, n_units: int) -> tuple[list[Unit], int]:
    """The first ``n_units`` units of ``root``/units.jsonl (fewer when the file is shorter or a
    line is damaged) and the bytes of their lines. No file: ([], 0)."""
    units: list[Unit] = []
    size = 0
    if n_units <= 0:
        return units, size
    try:
        f = open(Path(root) / "units.jsonl", "rb")
    except OSError:
        return units, size
    with f:
        for line in f:
            if len(units) >= n_units:
                break
            try:
                d = json.loads(line)
                units.append(Unit(d["id"], d["tok0"], d["n"], d["loc"], d["kv"], d["digest"], d["bytes"]))
            except (ValueError, KeyError, TypeError):
                break
            size += len(line.rstrip(b"\r\n")) + 1
    return units, size


def load_file(ctx, path: Path, n: int, pos: int, data: bytes | None = None,
              part: tuple[int, int] | None = None) -> bool:
    """Restore a unit file into the scratch sequence, shift it (llama_memory_seq_add) and copy
    its tokens ``part`` = [a, b) (all ``n`` by default) into sequence 0 at pos..pos+b-a.

    False when the file does not load (no free cells, a damaged file) or does
    not hold ``n`` consecutive positions; sequence 0 is then as before. A
    compact file (kvpack.py; ``data``: its bytes if already read) is decoded
    to llama.cpp's f16 file in memory first, its own checksum checked there;
    a file without kvpack's magic is llama.cpp's (the f16 format) and loads
    as it is. The scratch sequence is empty again afterwards.
    """
    a, b = part or (0, n)
    try:
        if data is None:
            with open(path, "rb") as f:
                if kvpack.is_packed(f.read(len(kvpack.MAGIC))):
                    data = path.read_bytes()
        if data is not None and kvpack.is_packed(data):
            positions = ctx.state_seq_load_bytes(lambda write: kvpack.unpack_to(data, write), SCRATCH_SEQ)
        else:
            positions = ctx.state_seq_load(path, SCRATCH_SEQ)
        p0 = int(positions.min())
        if positions.size == n and int(positions.max()) == p0 + n - 1 and 0 <= a < b <= n:
            ctx.seq_add(SCRATCH_SEQ, p0, p0 + n, pos - a - p0)
            ctx.seq_cp(SCRATCH_SEQ, 0, pos, pos + b - a)
            return True
    except (ModelError, kvpack.PackError, OSError):
        pass
    finally:
        ctx.seq_rm(SCRATCH_SEQ, -1, -1)
    return False


def read_ok(path: Path, nbytes: int, digest: str) -> bytes | None:
    """The file's bytes if it is there, of its size and checksum; else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if len(data) == nbytes and store.digest(data) == digest else None


def _file_ok(path: Path, nbytes: int, digest: str) -> bool:
    try:
        return path.stat().st_size == nbytes and store.file_digest(path) == digest
    except OSError:
        return False
