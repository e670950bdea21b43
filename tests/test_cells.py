"""CellMap against llama.cpp itself (real model, LLAMA_KV_CACHE_DEBUG=3).

1. A scripted history of the operations the pot uses (fill, remove middle
   ranges, shift ranges down, decode chunks into the holes, copy a range to a
   scratch sequence and drop it, restore a saved sequence) is replayed on the
   mirror, and before every slot search the mirror must equal llama.cpp's own
   dump: each cell's position and sequences, and head/used/n.
2. End to end: a catalyst pass scored by the C tap after such a history,
   mapped to positions, equals the same pass over the same KV laid out in
   position order without holes (a second context filled from the first one's
   saved state), within float tolerance. Cells past the used ones (n_kv
   padding) and holes get exactly zero.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import pytest

from bookpot.engine.cells import CellMap, parse_kv_debug, seq_chars
from llama_helpers import MODEL, decode, load_model, tokenize
from llama_helpers import make_ctx as _make_ctx

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not os.path.exists(MODEL), reason=f"model file {MODEL} not found"),
]

llama = pytest.importorskip("llama_cpp.llama_cpp")

N_CTX = 768
N_UBATCH = 128

TEXT = (
    "The lighthouse keeper wrote in his log every evening. On the third day of the storm "
    "the supply boat did not come, and he counted what was left: eleven tins of beans, "
    "a sack of flour, two lamps and the oil for perhaps nine nights. "
)


# ---- small llama.cpp helpers (low-level API, as in llama.cpp's examples) ----

class Log:
    """Captures llama.cpp's log messages (the KV debug dump is logged at DEBUG)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._cb = llama.llama_log_callback(self._on)
        llama.llama_log_set(self._cb, None)

    def _on(self, level, text, user_data):
        self.messages.append(text.decode("utf-8", "replace"))

    def take(self) -> list[str]:
        m, self.messages = self.messages, []
        return m


@pytest.fixture(scope="module")
def log():
    lg = Log()
    yield lg
    try:  # give the log back to llama_cpp's own handler
        from llama_cpp import _logger
        llama.llama_log_set(_logger.llama_log_callback, None)
    except Exception:
        pass


@pytest.fixture(scope="module")
def model(log):
    m = load_model()
    yield m
    llama.llama_model_free(m)


def make_ctx(model, tap=None, kv_debug=True):
    """This file's context: N_CTX cells in ubatches of N_UBATCH, 4 sequences, KV debug dumps on."""
    return _make_ctx(model, n_ctx=N_CTX, n_ubatch=N_UBATCH, n_seq_max=4, tap=tap, kv_debug=kv_debug)


# ---- the scripted history --------------------------------------------------

class Script:
    """Runs each KV operation on llama.cpp and on the CellMap side by side,
    and compares the mirror with every dump llama.cpp prints."""

    def __init__(self, ctx, log, tokens):
        self.ctx, self.log, self.src = ctx, log, tokens
        self.mem = llama.llama_get_memory(ctx)
        self.map = CellMap(N_CTX, N_UBATCH)
        self.tok_at: dict[int, int] = {}  # seq 0: position -> token id
        self.next_src = 0
        self.dumps_checked = 0

    def _compare(self, dump, state, what):
        pos, seqs, head = state
        bad = np.flatnonzero(dump["pos"] != pos)
        assert bad.size == 0, f"{what}: cell {bad[0]} llama.cpp pos {dump['pos'][bad[0]]}, map {pos[bad[0]]}"
        assert dump["seq"] == seq_chars(seqs), f"{what}: sequences differ"
        assert dump["head"] == head, f"{what}: head llama.cpp {dump['head']}, map {head}"
        assert dump["used"] == int(np.count_nonzero(pos >= 0))
        used = np.flatnonzero(pos >= 0)
        assert dump["n"] == (used[-1] + 1 if used.size else 0)
        self.dumps_checked += 1

    def decode(self, n, what="decode"):
        p0 = llama.llama_memory_seq_pos_max(self.mem, 0) + 1
        toks = self.src[self.next_src : self.next_src + n]
        assert len(toks) == n, "test text too short"
        self.next_src += n
        positions = np.arange(p0, p0 + n)
        self.log.take()
        decode(self.ctx, toks, positions, logits="none")
        trace = []
        self.map.decode(positions, 0, trace=trace)
        dumps = parse_kv_debug(self.log.take())
        assert len(dumps) == len(trace), f"{what}: {len(dumps)} dumps for {len(trace)} ubatches"
        for d, st in zip(dumps, trace):
            self._compare(d, st, what)
        self.tok_at.update(zip(positions.tolist(), toks.tolist()))

    def rm(self, p0, p1):
        llama.llama_memory_seq_rm(self.mem, 0, p0, p1)
        self.map.seq_rm(0, p0, p1)
        for p in range(p0, p1):
            self.tok_at.pop(p, None)

    def shift(self, p0, delta):
        """Close a gap: every position >= p0 moves by delta (< 0)."""
        llama.llama_memory_seq_add(self.mem, 0, p0, -1, delta)
        self.map.seq_add(0, p0, -1, delta)
        self.tok_at = {(p + delta if p >= p0 else p): t for p, t in self.tok_at.items()}

    def check(self, seqs=(0,)):
        self.map.check(self.mem, llama, seqs)


def run_history(s: Script):
    s.decode(300, "fill")                      # cells 0..299, three ubatches
    s.rm(40, 100); s.shift(100, -60)           # compaction: positions 0..239
    s.rm(150, 170); s.shift(170, -20)          # a second gap: 0..219
    s.check()
    s.decode(100, "fill holes")                # 60 + 20 holes, then 20 at the end
    # scratch sequence: copy a chunk, save it, drop it (the unit pattern)
    llama.llama_memory_seq_cp(s.mem, 0, 1, 10, 50)
    s.map.seq_cp(0, 1, 10, 50)
    s.check((0, 1))
    s.rm(0, 0)                                 # empty range: no-op on both
    s.shift(5, 0)                              # zero shift: no-op on both
    llama.llama_memory_seq_rm(s.mem, 1, -1, -1)
    s.map.seq_rm(1, -1, -1)
    s.decode(1, "after scratch")
    for round_ in range(3):                    # the pot's steady state
        hi = llama.llama_memory_seq_pos_max(s.mem, 0)
        a = 16 + 7 * round_
        s.rm(a, a + 50); s.shift(a + 50, -50)
        b = hi - 50 - 90
        s.rm(b, b + 30); s.shift(b + 30, -30)
        s.decode(N_UBATCH + 37, f"round {round_}")  # two ubatches, second one small
    # a shared cell moves for both sequences when seq 0 is shifted
    llama.llama_memory_seq_cp(s.mem, 0, 2, 100, 120)
    s.map.seq_cp(0, 2, 100, 120)
    s.rm(60, 70); s.shift(70, -10)
    s.check((0, 2))
    llama.llama_memory_seq_rm(s.mem, 2, -1, -1)
    s.map.seq_rm(2, -1, -1)
    s.decode(3, "end")
    s.check()


def test_cellmap_matches_llama_debug_dump(model, log):
    ctx = make_ctx(model)
    try:
        s = Script(ctx, log, tokenize(model, TEXT * 80))
        run_history(s)
        assert s.dumps_checked >= 10
        cells, pos = s.map.cells_of(0)
        assert not np.all(np.diff(cells) > 0), "history should leave cells out of position order"
        assert np.array_equal(pos, np.arange(len(pos)))  # positions compact after the shifts
    finally:
        llama.llama_free(ctx)


def _holed_script(ctx, log, model):
    """Sequence 0 with a removed range and a shift: cells out of position order."""
    s = Script(ctx, log, tokenize(model, TEXT * 80))
    s.decode(200)
    s.rm(30, 90); s.shift(90, -60)
    s.decode(80)
    return s


def test_state_restore_matches(model, log):
    """llama_state_seq_set_data places the saved cells like a decode does."""
    ctx = make_ctx(model)
    try:
        s = _holed_script(ctx, log, model)
        order = s.map.positions_in_cell_order(0)
        size = llama.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        assert llama.llama_state_seq_get_data(ctx, buf, size, 0) == size
        s.rm(100, 140)                           # make holes below head, then restore into seq 3
        s.log.take()
        assert llama.llama_state_seq_set_data(ctx, buf, size, 3) == size
        before = (s.map.pos.copy(), s.map.seqs.copy(), s.map.head)  # seq 3 is empty
        cells = s.map.state_seq_set(3, order)
        dumps = parse_kv_debug(s.log.take())
        assert len(dumps) == 1
        s._compare(dumps[0], before, "state_seq_set_data")
        s.decode(1, "after restore")             # dump now shows seq 3's cells too
        _, p3 = s.map.cells_of(3)
        assert np.array_equal(np.sort(p3), np.sort(order))
        assert len(cells) == len(order)
        s.check((0, 3))
    finally:
        llama.llama_free(ctx)


def test_state_file_restore_matches(model, log, tmp_path):
    """The file route bookpot saves checkpoints and units with places cells the same way,
    and the positions stored as the file's tokens come back in cell order."""
    ctx = make_ctx(model)
    try:
        s = _holed_script(ctx, log, model)
        order = np.ascontiguousarray(s.map.positions_in_cell_order(0), dtype=np.int32)
        path = str(tmp_path / "seq0.bin").encode()
        tok_p = ctypes.POINTER(llama.llama_token)
        assert llama.llama_state_seq_save_file(ctx, path, 0, order.ctypes.data_as(tok_p), len(order)) > 0
        s.rm(100, 140)
        s.log.take()
        back = np.zeros(4096, dtype=np.int32)
        n_out = ctypes.c_size_t(0)
        assert llama.llama_state_seq_load_file(ctx, path, 3, back.ctypes.data_as(tok_p), len(back),
                                               ctypes.byref(n_out)) > 0
        assert np.array_equal(back[: n_out.value], order)
        before = (s.map.pos.copy(), s.map.seqs.copy(), s.map.head)
        s.map.state_seq_set(3, back[: n_out.value])
        dumps = parse_kv_debug(s.log.take())
        assert len(dumps) == 1
        s._compare(dumps[0], before, "state_seq_load_file")
        s.decode(1, "after restore")
        s.check((0, 3))
    finally:
        llama.llama_free(ctx)


# ---- end to end: catalyst scores by position, with and without holes --------

CATALYST = " Summarize the previous context highlighting the most important parts."


def catalyst_scores(ctx, model, cmap: CellMap, tap, p0: int, layers):
    """Decode the catalyst at p0.. with the tap armed, then remove it again.

    Returns the per-cell scores, the cells the catalyst used, and the tap's stats.
    """
    cat = tokenize(model, CATALYST)
    out = np.zeros(N_CTX, dtype=np.float32)
    tap.arm(out, layers, len(cat))
    decode(ctx, cat, np.arange(p0, p0 + len(cat)), logits="none")
    st = tap.disarm()
    cat_cells = cmap.decode(np.arange(p0, p0 + len(cat)))
    assert st["read"] == len(layers)
    assert st["n_kv"] == cmap.n_kv(), "n_kv padding rule differs"
    llama.llama_memory_seq_rm(llama.llama_get_memory(ctx), 0, p0, -1)
    cmap.seq_rm(0, p0, -1)
    return out, cat_cells, st


def test_catalyst_scores_by_position_match_compact_layout(model, log):
    from bookpot.native import available, reason
    if not available():
        pytest.skip(reason())
    from bookpot.native.kernels import Tap

    layers = list(range(30))
    tap_a, tap_b = Tap(), Tap()
    ctx_a = make_ctx(model, tap_a)
    ctx_b = make_ctx(model, tap_b, kv_debug=False)
    try:
        # A: a history with holes; cells end up out of position order
        s = Script(ctx_a, log, tokenize(model, TEXT * 80))
        s.decode(250)
        s.rm(20, 80); s.shift(80, -60)
        s.rm(100, 120); s.shift(120, -20)
        s.decode(90)                              # fills the 80 holes, then 10 more
        s.rm(150, 160); s.shift(160, -10)         # a last hole, left open...
        s.decode(4)                               # ...then partly filled (applies the K-shift too)
        n = llama.llama_memory_seq_pos_max(s.mem, 0) + 1
        cells_a, pos_a = s.map.cells_of(0)
        assert np.array_equal(pos_a, np.arange(n))
        assert not np.all(np.diff(cells_a) > 0)

        # B: the same KV, moved over run by run in position order -> cells 0..n-1
        mem_b = llama.llama_get_memory(ctx_b)
        map_b = CellMap(N_CTX, N_UBATCH)
        runs = np.flatnonzero(np.diff(cells_a) != 1) + 1
        for chunk in np.split(np.arange(n), runs):  # each chunk: consecutive cells in A
            p0, p1 = int(chunk[0]), int(chunk[-1]) + 1
            llama.llama_memory_seq_cp(s.mem, 0, 1, p0, p1)
            size = llama.llama_state_seq_get_size(ctx_a, 1)
            buf = (ctypes.c_uint8 * size)()
            assert llama.llama_state_seq_get_data(ctx_a, buf, size, 1) == size
            llama.llama_memory_seq_rm(s.mem, 1, -1, -1)
            assert llama.llama_state_seq_set_data(ctx_b, buf, size, 1) == size
            map_b.state_seq_set(1, np.arange(p0, p1))
            llama.llama_memory_seq_cp(mem_b, 1, 0, -1, -1)
            map_b.seq_cp(1, 0)
            llama.llama_memory_seq_rm(mem_b, 1, -1, -1)
            map_b.seq_rm(1)
        cells_b, pos_b = map_b.cells_of(0)
        assert np.array_equal(cells_b, np.arange(n)) and np.array_equal(pos_b, np.arange(n))
        map_b.check(mem_b, llama)

        # layer 0 alone: same embeddings, same K/V -> equal up to summation order
        s0a, _, _ = catalyst_scores(ctx_a, model, s.map, tap_a, n, [0])
        s0b, _, _ = catalyst_scores(ctx_b, model, map_b, tap_b, n, [0])
        np.testing.assert_allclose(s.map.by_position(s0a)[1], map_b.by_position(s0b)[1], rtol=1e-4, atol=1e-6)

        sa, cat_a, st_a = catalyst_scores(ctx_a, model, s.map, tap_a, n, layers)
        sb, cat_b, st_b = catalyst_scores(ctx_b, model, map_b, tap_b, n, layers)

        # per position, the scores agree
        p_a, by_pos_a = s.map.by_position(sa)
        p_b, by_pos_b = map_b.by_position(sb)
        assert np.array_equal(p_a, p_b)
        rel = np.abs(by_pos_a - by_pos_b) / np.maximum(np.abs(by_pos_b), 1e-3)
        print(f"\nA: n_kv {st_a['n_kv']}, cells of seq 0 up to {cells_a.max()}, catalyst cells "
              f"{cat_a.min()}..{cat_a.max()}; B: n_kv {st_b['n_kv']}, catalyst cells {cat_b.min()}..{cat_b.max()}")
        print(f"30 layers, A vs B by position: median rel diff {np.median(rel):.2g}, max {rel.max():.2g}")
        # deeper layers differ by f16 rounding of activations (K/V cache and kq are f16)
        np.testing.assert_allclose(by_pos_a, by_pos_b, rtol=1e-2, atol=1e-3)
        assert np.median(rel) < 1e-3
        # the top tokens the pot would keep are the same
        k = n // 4
        assert len(set(np.argsort(by_pos_a)[-k:]) ^ set(np.argsort(by_pos_b)[-k:])) <= 2
        # while per cell, without the map, they would not agree at all
        rel_cells = np.abs(sa[:n] - sb[:n]) / np.maximum(np.abs(sb[:n]), 1e-3)
        print(f"without the map (cell i vs cell i): median rel diff {np.median(rel_cells):.2g}")
        assert np.median(rel_cells) > 100 * np.median(rel)

        # every catalyst row's softmax sums to 1 per head: total = layers * heads * rows
        q = len(cat_a)
        for sc, cells, cat, st in ((sa, cells_a, cat_a, st_a), (sb, cells_b, cat_b, st_b)):
            assert st["n_head"] == 9 and st["n_tokens"] == q
            np.testing.assert_allclose(sc.sum(), len(layers) * 9 * q, rtol=1e-4)
            in_use = np.zeros(N_CTX, bool)
            in_use[cells] = True
            in_use[cat] = True
            assert np.all(sc[~in_use] == 0.0), "holes and padding rows must get exactly zero"
        # padding: the graph attends over n_kv cells, more than are used
        assert st_b["n_kv"] > n + q
    finally:
        llama.llama_free(ctx_a)
        llama.llama_free(ctx_b)
