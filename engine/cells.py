"""Which KV cell holds which position: a mirror of llama.cpp's cell bookkeeping.

llama.cpp keeps K/V per *cell*. Attention read during a decode
(``kq_soft_max-<l>``) is indexed by cell, but the pot keeps and drops tokens
by *position*. After removals new tokens fill the freed cells (holes), so
cell order stops being position order and the two must be mapped.

``CellMap`` replays, in numpy, exactly what llama.cpp 0.3.36 does to its
unified KV cache (one stream, ``kv_unified=True``) for the operations bookpot
uses, taken from vendor/llama.cpp/src/llama-kv-cache.cpp and
llama-kv-cells.h of the pinned sdist:

- ``decode``: the batch is split into ubatches of ``n_ubatch`` tokens; for
  each, ``find_slot(ubatch, cont=false)`` starts at ``head`` (reset to 0 when
  ``head > used + 2*n_tokens``), takes free cells one by one in index order,
  wrapping once; ``apply_ubatch`` then sets ``head = last cell + 1``.
- ``seq_rm``: frees the cells of the range; ``head`` moves down to the first
  freed cell if that is below it.
- ``seq_add``: shifts the cell's single position (a cell shared with a
  scratch sequence moves for both); a cell pushed below 0 is freed; ``head``
  becomes the first freed cell, or 0 when none was freed.
- ``seq_cp`` (same stream): only adds the sequence to the cells.
- ``state_seq_set``: ``llama_state_seq_set_data`` = ``seq_rm(seq)`` then one
  ``find_slot`` for all saved cells, in the order they were saved (cell order).

Mirroring was chosen over reading llama.cpp's state at run time because it
costs nothing per operation (no state copy of 23 KB per token, no KQ-mask
tap). It is checked against llama.cpp's own ``LLAMA_KV_CACHE_DEBUG=3`` dump
in tests/test_cells.py (cells, positions, sequences, head), and ``check()``
gives a cheap run-time cross-check against ``llama_memory_seq_pos_min/max``.
Nothing here frees a cell llama.cpp would keep; defragmentation does not
exist in this llama.cpp (cells never move). SWA caches are not mirrored.
"""

from __future__ import annotations

import re

import numpy as np

_I32_MAX = np.iinfo(np.int32).max
N_KV_PAD = 256  # llama_kv_cache::get_n_kv pads n_kv to max(n_pad, 256)


class CellMapError(RuntimeError):
    """The mirror and llama.cpp disagree, or an operation llama.cpp would refuse."""


class CellMap:
    """Cell -> (position, sequences) for one unified llama.cpp KV cache.

    Call the method named like each llama.cpp memory operation right after
    doing it (``decode`` only after ``llama_decode`` returned 0).
    """

    def __init__(self, n_cells: int, n_ubatch: int) -> None:
        self.n_cells = int(n_cells)
        self.n_ubatch = int(n_ubatch)
        self.pos = np.full(self.n_cells, -1, dtype=np.int32)   # -1: empty cell
        self.seqs = np.zeros(self.n_cells, dtype=np.uint64)    # bit s: cell holds sequence s
        self.head = 0

    # ---- llama.cpp operations -------------------------------------------

    def clear(self) -> None:
        """llama_memory_clear."""
        self.pos[:] = -1
        self.seqs[:] = 0
        self.head = 0

    def decode(self, positions, seq: int = 0, trace: list | None = None) -> np.ndarray:
        """A llama_decode of tokens at ``positions`` for ``seq``; returns their cells.

        ``trace``, if given, receives (pos, seqs, head) copies before each
        ubatch's slot search, i.e. what llama.cpp's debug dump prints.
        """
        positions = np.asarray(positions, dtype=np.int32)
        cells = []
        for i in range(0, len(positions), self.n_ubatch):
            if trace is not None:
                trace.append((self.pos.copy(), self.seqs.copy(), self.head))
            cells.append(self._place(positions[i : i + self.n_ubatch], seq))
        return np.concatenate(cells) if cells else np.empty(0, dtype=np.intp)

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        """llama_memory_seq_rm(mem, seq, p0, p1): positions [p0, p1); seq -1 = all."""
        in_range = self._in_range(p0, p1)
        if seq >= 0:
            bit = np.uint64(1 << seq)
            hit = in_range & ((self.seqs & bit) != 0)
            self.seqs[hit] &= ~bit
            freed = hit & (self.seqs == 0)
        else:
            freed = in_range
            self.seqs[freed] = 0
        self.pos[freed] = -1
        idx = np.flatnonzero(freed)
        if idx.size and idx[0] < self.head:
            self.head = int(idx[0])

    def seq_add(self, seq: int, p0: int, p1: int, delta: int) -> None:
        """llama_memory_seq_add(mem, seq, p0, p1, delta): shift [p0, p1) by delta."""
        if delta == 0:
            return
        p0, p1 = self._clamp(p0, p1)
        if p0 == p1:
            return
        hit = self._in_range(p0, p1) & ((self.seqs & np.uint64(1 << seq)) != 0)
        self.pos[hit] += delta
        freed = hit & (self.pos < 0)
        self.pos[freed] = -1
        self.seqs[freed] = 0
        idx = np.flatnonzero(freed)
        self.head = int(idx[0]) if idx.size else 0

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        """llama_memory_seq_cp(mem, src, dst, p0, p1) in a unified cache."""
        if src == dst:
            return
        hit = self._in_range(p0, p1) & ((self.seqs & np.uint64(1 << src)) != 0)
        self.seqs[hit] |= np.uint64(1 << dst)

    def state_seq_set(self, seq: int, saved_positions) -> np.ndarray:
        """llama_state_seq_set_data(ctx, data, seq) with the positions the state holds.

        ``saved_positions`` are in the order llama_state_seq_get_data wrote
        them: the source's cell order (``positions_in_cell_order``).
        """
        self.seq_rm(seq, -1, -1)
        return self._place(np.asarray(saved_positions, dtype=np.int32), seq)

    # ---- queries --------------------------------------------------------

    @property
    def used(self) -> int:
        return int(np.count_nonzero(self.pos >= 0))

    def used_max_p1(self) -> int:
        idx = np.flatnonzero(self.pos >= 0)
        return int(idx[-1]) + 1 if idx.size else 0

    def n_kv(self) -> int:
        """Cells the next graph attends over (ne0 of kq_soft_max), as llama.cpp pads it.

        Computed after the ubatch is placed, so call it after ``decode``.
        """
        n = -(-self.used_max_p1() // N_KV_PAD) * N_KV_PAD
        return min(self.n_cells, max(N_KV_PAD, n))

    def cells_of(self, seq: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(cells, positions) of ``seq``, sorted by position."""
        cells = np.flatnonzero((self.seqs & np.uint64(1 << seq)) != 0)
        order = np.argsort(self.pos[cells], kind="stable")
        return cells[order], self.pos[cells[order]]

    def positions_in_cell_order(self, seq: int = 0) -> np.ndarray:
        cells = np.flatnonzero((self.seqs & np.uint64(1 << seq)) != 0)
        return self.pos[cells]

    def by_position(self, cell_scores: np.ndarray, seq: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell scores -> (positions, scores) of ``seq``, in position order."""
        cells, positions = self.cells_of(seq)
        return positions, np.asarray(cell_scores)[cells]

    def check(self, ctx_memory, llama, seqs=(0,)) -> None:
        """Cheap run-time cross-check against llama_memory_seq_pos_min/_max."""
        for s in seqs:
            _, p = self.cells_of(s)
            want = (int(p[0]), int(p[-1])) if p.size else (-1, -1)
            got = (llama.llama_memory_seq_pos_min(ctx_memory, s), llama.llama_memory_seq_pos_max(ctx_memory, s))
            if got != want:
                raise CellMapError(f"seq {s}: llama.cpp has positions {got}, the cell map {want}")

    # ---- internals ------------------------------------------------------

    @staticmethod
    def _clamp(p0: int, p1: int) -> tuple[int, int]:
        return (0 if p0 < 0 else p0), (_I32_MAX if p1 < 0 else p1)

    def _in_range(self, p0: int, p1: int) -> np.ndarray:
        p0, p1 = self._clamp(p0, p1)
        return (self.pos >= p0) & (self.pos < p1)   # empty cells (-1) never match

    def _place(self, positions: np.ndarray, seq: int) -> np.ndarray:
        """find_slot(ubatch, cont=false) + apply_ubatch for one ubatch."""
        n = len(positions)
        if n == 0:
            return np.empty(0, dtype=np.intp)
        head = self.head
        if head > self.used + 2 * n:
            head = 0
        free = np.flatnonzero(self.pos < 0)
        order = np.concatenate([free[free >= head], free[free < head]])
        if order.size < n:
            raise CellMapError(f"no room: {n} tokens, {order.size} free cells")
        cells = order[:n]
        self.pos[cells] = positions
        self.seqs[cells] = np.uint64(1 << seq)
        self.head = int(cells[-1]) + 1
        return cells


# ---- reading llama.cpp's own dump (LLAMA_KV_CACHE_DEBUG=3) -----------------

_HEADER = re.compile(r"find_slot: stream\[(\d+)\], n = +(\d+), used = +(\d+), head = +(\d+), size = +(\d+)")


def parse_kv_debug(messages: list[str]) -> list[dict]:
    """llama.cpp's find_slot dumps, from log messages captured with llama_log_set.

    With LLAMA_KV_CACHE_DEBUG=3 every slot search logs a header (n, used,
    head, size), then one message with a character per cell ('.' empty, a
    digit: the one sequence, 'M': several) and one with each cell's position
    (5 columns each; ' *' marks every 256 cells). Returns one dict per dump:
    head, used, n (used_max_p1), size, seq (str), pos (int32 array, -1 empty).
    """
    dumps = []
    for i, msg in enumerate(messages):
        m = _HEADER.search(msg)
        if not m or i + 2 >= len(messages):
            continue
        size = int(m.group(5))
        seq = messages[i + 1].replace(" *", "").replace("\n", "")
        toks = [t for t in messages[i + 2].split() if t != "*"]
        pos = np.array([-1 if t == "." else int(t) for t in toks], dtype=np.int32)
        if len(seq) != size or len(pos) != size:
            raise ValueError(f"unexpected KV debug dump: {len(seq)} / {len(pos)} cells, size {size}")
        dumps.append(dict(n=int(m.group(2)), used=int(m.group(3)), head=int(m.group(4)),
                          size=size, seq=seq, pos=pos))
    return dumps


def seq_chars(seqs: np.ndarray) -> str:
    """The mirror's cells in the dump's sequence notation ('.', digit, 'M')."""
    out = []
    for b in seqs.tolist():
        if b == 0:
            out.append(".")
        elif b & (b - 1):
            out.append("M")
        else:
            out.append(str(b.bit_length() - 1))
    return "".join(out)
