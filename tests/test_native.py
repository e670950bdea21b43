"""bookpot.native against slow references, on the real default model.

- The C tap accumulates the same per-cell catalyst scores as numpy over whole
  kq_soft_max tensors copied by a (slow) Python eval callback.
- nll() equals a float64 numpy reference computed from llama_get_logits.
- Unarmed, the tap never says "yes" to a node (so the graph is never split).

What the tap costs (decode tok/s with cb_eval=NULL vs the unarmed tap, and
scoring a 2K pot) is measured by bench/native_costs.py, not here.
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np
import pytest

import bookpot.native as native
from bookpot.engine.cells import CellMap
from llama_helpers import MODEL, decode, load_model, tokenize
from llama_helpers import make_ctx as _make_ctx

llama = pytest.importorskip("llama_cpp.llama_cpp")

needs_native = pytest.mark.skipif(not native.available(), reason=native.reason() or "native missing")

N_LAYER, N_HEAD = 30, 9
TEXT = (
    "Chapter one. The lighthouse keeper wrote in his log every evening. On the third day of "
    "the storm the supply boat did not come, and he counted what was left: eleven tins of "
    "beans, a sack of flour, two lamps and the oil for perhaps nine nights. "
)


def test_available_and_reason():
    assert native.available(), native.reason()
    assert native.reason() == ""
    import llama_cpp

    from bookpot.engine.version import LLAMA_CPP_PYTHON
    assert llama_cpp.__version__ == LLAMA_CPP_PYTHON


# ---- low-level llama.cpp helpers --------------------------------------------

@pytest.fixture(scope="module")
def model():
    if not os.path.exists(MODEL):
        pytest.skip(f"model file {MODEL} not found")
    m = load_model()
    yield m
    llama.llama_model_free(m)


def make_ctx(model, n_ctx=1024, tap=None, cb=None, n_ubatch=512):
    """This file's context: 2 sequences, one batch of up to ``n_ctx`` tokens."""
    return _make_ctx(model, n_ctx=n_ctx, n_ubatch=n_ubatch, n_seq_max=2, tap=tap, cb=cb)


def history(ctx, toks, cmap: CellMap):
    """Fill, punch two holes, compact, refill: cells end up out of position order."""
    mem = llama.llama_get_memory(ctx)
    decode(ctx, toks[:300], 0); cmap.decode(np.arange(300))
    llama.llama_memory_seq_rm(mem, 0, 50, 90); cmap.seq_rm(0, 50, 90)
    llama.llama_memory_seq_add(mem, 0, 90, -1, -40); cmap.seq_add(0, 90, -1, -40)
    decode(ctx, toks[300:360], 260); cmap.decode(np.arange(260, 320))
    return 320


# ---- the reference: a Python eval callback copying whole tensors -----------

class _Tensor(ctypes.Structure):
    # prefix of struct ggml_tensor (ggml.h, llama-cpp-python 0.3.36), written independently of hot.c
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p),
                ("ne", ctypes.c_int64 * 4), ("nb", ctypes.c_size_t * 4)]


class SlowReference:
    """Copies every kq_soft_max-<l> tensor of a decode into numpy (slow; tests only)."""

    def __init__(self):
        lib_dir = os.path.dirname(llama._lib._name)
        g = ctypes.CDLL(os.path.realpath(os.path.join(lib_dir, "libggml-base.so")))
        g.ggml_get_name.restype = ctypes.c_char_p
        g.ggml_get_name.argtypes = [ctypes.c_void_p]
        g.ggml_nbytes.restype = ctypes.c_size_t
        g.ggml_nbytes.argtypes = [ctypes.c_void_p]
        g.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        self.g = g
        self.tensors: dict[int, np.ndarray] = {}
        self.cb = llama.ggml_backend_sched_eval_callback(self._on)

    def _on(self, t, ask, user_data):
        name = self.g.ggml_get_name(t).decode()
        if not name.startswith("kq_soft_max-"):
            return not ask  # "no" when asked; "continue" otherwise
        if ask:
            return True
        ts = _Tensor.from_address(t)
        assert ts.type == 0  # F32
        a = np.empty(ts.ne[2] * ts.ne[1] * ts.ne[0], dtype=np.float32)
        self.g.ggml_backend_tensor_get(t, a.ctypes.data, 0, self.g.ggml_nbytes(t))
        self.tensors[int(name.split("-")[1])] = a.reshape(ts.ne[2], ts.ne[1], ts.ne[0])  # [head, token, cell]
        return True


@needs_native
@pytest.mark.model
def test_tap_matches_whole_tensor_reference(model):
    from bookpot.native.kernels import Tap

    toks = tokenize(model, TEXT * 20)
    query = tokenize(model, " Who kept the log, and what was left?")
    extra = toks[400:410]                       # batch = 10 context tokens + Q catalyst rows
    q = len(query)
    layers = [0, 3, 17, 29]

    tap = Tap()
    ctx_t = make_ctx(model, tap=tap)
    ref = SlowReference()
    ctx_r = make_ctx(model, cb=ref.cb)
    try:
        maps = []
        for ctx in (ctx_t, ctx_r):
            cm = CellMap(1024, 512)
            p = history(ctx, toks, cm)
            maps.append(cm)
        assert np.array_equal(maps[0].pos, maps[1].pos)
        ref.tensors.clear()

        out = np.zeros(1024, dtype=np.float32)
        tap.arm(out, layers, q)
        decode(ctx_t, np.concatenate([extra, query]), p)
        st = tap.disarm()
        decode(ctx_r, np.concatenate([extra, query]), p)

        assert st["read"] == len(layers) and st["error"] == ""
        assert (st["n_kv"], st["n_tokens"], st["n_head"]) == (512, 10 + q, N_HEAD)
        want = np.zeros(1024, dtype=np.float64)
        for l in layers:
            a = ref.tensors[l]
            assert a.shape == (N_HEAD, 10 + q, 512)
            want[:512] += a[:, -q:, :].sum(axis=(0, 1), dtype=np.float64)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
        assert out[512:].sum() == 0.0
        np.testing.assert_allclose(out.sum(), len(layers) * N_HEAD * q, rtol=1e-4)
    finally:
        llama.llama_free(ctx_t)
        llama.llama_free(ctx_r)


@needs_native
@pytest.mark.model
def test_unarmed_tap_never_says_yes(model):
    from bookpot.native.kernels import Tap

    tap = Tap()
    ctx = make_ctx(model, tap=tap)
    try:
        toks = tokenize(model, TEXT * 4)
        decode(ctx, toks[:100], 0)
        for i in range(5):
            decode(ctx, toks[100 + i : 101 + i], 100 + i)
        st = tap.stats()
        assert st["asked"] > 0 and st["yes"] == 0 and st["read"] == 0
        out = np.zeros(1024, dtype=np.float32)
        tap.arm(out, range(N_LAYER), 4)
        decode(ctx, toks[105:109], 105)
        st = tap.disarm()
        assert st["yes"] == N_LAYER and st["read"] == N_LAYER
        decode(ctx, toks[109:110], 109)
        assert tap.stats()["yes"] == N_LAYER  # disarmed again: no more yes
    finally:
        llama.llama_free(ctx)


@needs_native
@pytest.mark.model
def test_tap_refuses_a_split_batch(model):
    """A scored batch split into two ubatches would mix non-catalyst rows in."""
    from bookpot.native.kernels import Tap

    tap = Tap()
    ctx = make_ctx(model, tap=tap, n_ubatch=32)
    try:
        toks = tokenize(model, TEXT * 4)
        out = np.zeros(1024, dtype=np.float32)
        tap.arm(out, [0, 1], 4)
        decode(ctx, toks[:40], 0)               # 32 + 8 tokens: two ubatches
        with pytest.raises(RuntimeError, match="one ubatch"):
            tap.disarm()
    finally:
        llama.llama_free(ctx)


@needs_native
@pytest.mark.model
def test_nll_matches_numpy_reference(model):
    from bookpot.native.kernels import logits_view, nll, nll_numpy

    ctx = make_ctx(model)
    try:
        toks = tokenize(model, TEXT * 3)[:120]
        decode(ctx, toks, 0, logits="all")
        n_vocab = llama.llama_vocab_n_tokens(llama.llama_model_get_vocab(model))
        logits = logits_view(ctx, len(toks), n_vocab)
        # spot-check the view against llama_get_logits_ith
        row = np.ctypeslib.as_array(llama.llama_get_logits_ith(ctx, 37), shape=(n_vocab,))
        assert np.array_equal(logits[37], row)
        targets = toks[1:]
        got = nll(logits[:-1], targets)
        want = nll_numpy(logits[:-1], targets)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        assert 0.0 <= got.min() and np.median(got) < 10  # a repeated text is well predicted
        with pytest.raises(ValueError):
            nll(logits[:2], np.array([0, n_vocab], dtype=np.int32))
    finally:
        llama.llama_free(ctx)


def test_top_k_uses_argpartition():
    from bookpot.native.kernels import top_k

    rng = np.random.default_rng(0)
    s = rng.random(2048).astype(np.float32)
    k = 512
    assert np.array_equal(top_k(s, k), np.sort(np.argsort(s)[-k:]))
    t0 = time.perf_counter()
    for _ in range(100):
        top_k(s, k)
    print(f"\ntop_k(2048 scores, k=512) via argpartition: {(time.perf_counter() - t0) * 10:.3f} ms")


@pytest.mark.model
def test_capture_copies_pre_rope_keys_and_queries(model_path):
    """Memory-unit keys: layer 0's pre-RoPE K depends on the token only, so the
    same text at positions 0.. and 100.. gives the same rows; Q rows are
    copied for the asked layers and are not zero."""
    import numpy as np

    from bookpot.engine.llm import Context, Model
    from bookpot.native.kernels import Tap

    model = Model(model_path)
    tap = Tap()
    ctx = Context(model, n_ctx=512, n_batch=128, n_seq_max=2, tap=tap)
    toks = model.tokenize("The pass key for the red door is 12345.")
    n, kd = len(toks), model.n_head_kv * model.head_dim
    at0, at100 = (np.zeros((2, n, kd), np.float32) for _ in range(2))
    tap.capture(at0, [0, 15], "K", n)
    ctx.decode(toks, 0, logits="none")
    tap.end_capture()
    tap.capture(at100, [0, 15], "K", n)
    ctx.decode(toks, 100, seq=1, logits="none")
    tap.end_capture()
    assert np.abs(at0).max() > 0
    assert np.allclose(at0[0], at100[0], atol=1e-3)
    q = np.zeros((1, n, model.n_embd), np.float32)
    ctx.seq_rm(1, -1, -1)
    tap.capture(q, [10], "Q", n)
    ctx.decode(toks, 200, seq=1, logits="none")
    tap.end_capture()
    assert (np.linalg.norm(q[0], axis=1) > 1).all()
    q2 = np.zeros((1, n + 1, model.n_embd), np.float32)
    tap.capture(q2, [10], "Q", n + 1)  # a decode of another size copies nothing: an error, not garbage
    ctx.decode(toks, 200 + n, seq=1, logits="none")
    with pytest.raises(RuntimeError):
        tap.end_capture()
    ctx.close()
