"""Small helpers on llama.cpp's low-level API (ctypes), for the tests that hold
bookpot's engine against plain llama.cpp (test_cells.py, test_native.py) and
for bench/native_costs.py. Written as in llama.cpp's own examples, independently
of bookpot.engine.llm, so a bug there cannot hide in the reference.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from llama_cpp import llama_cpp as llama

from bookpot.models import DEFAULT_MODEL
from bookpot.models.fetch import model_path

# The default model where `bookpot models fetch` (run by packaging/setup.sh) puts it.
MODEL = os.environ.get("BOOKPOT_TEST_MODEL") or str(model_path(DEFAULT_MODEL))


def load_model(path: str = MODEL):
    """A llama_model* with plain CPU buffers (free it with ``llama.llama_model_free``).

    The wheel built here enables ggml's AMX weight repacking, whose matmul
    dies with a general protection fault on this machine: extra buffer types
    stay off.
    """
    llama.llama_backend_init()
    mp = llama.llama_model_default_params()
    mp.use_extra_bufts = False
    m = llama.llama_model_load_from_file(path.encode(), mp)
    assert m, f"llama.cpp could not load {path}"
    return m


def tokenize(model, text: str) -> np.ndarray:
    """``text``'s tokens (no BOS, no special tokens) as int32."""
    vocab = llama.llama_model_get_vocab(model)
    raw = text.encode()
    buf = (llama.llama_token * (len(raw) + 8))()
    n = llama.llama_tokenize(vocab, raw, len(raw), buf, len(buf), False, False)
    assert n > 0
    return np.array(buf[:n], dtype=np.int32)


def make_ctx(model, *, n_ctx: int, n_ubatch: int, n_seq_max: int, tap=None, cb=None, kv_debug: bool = False):
    """A llama_context* with flash attention off (kq_soft_max-<l> exists only
    without it), one unified KV cache of ``n_ctx`` cells and 2 threads.

    ``tap``: a ``bookpot.native.kernels.Tap`` installed as the eval callback;
    ``cb``: any other eval callback. ``kv_debug``: LLAMA_KV_CACHE_DEBUG=3
    (read once, when the KV cache is built) so llama.cpp logs its cells.
    Free it with ``llama.llama_free``.
    """
    cp = llama.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = n_ctx
    cp.n_ubatch = n_ubatch
    cp.n_seq_max = n_seq_max
    cp.kv_unified = True
    cp.n_threads = cp.n_threads_batch = 2
    cp.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_DISABLED
    if tap is not None:
        tap.install(cp)  # cb_eval = the C callback, cb_eval_user_data = this tap's state
    elif cb is not None:
        cp.cb_eval = cb
    old = os.environ.get("LLAMA_KV_CACHE_DEBUG")
    if kv_debug:
        os.environ["LLAMA_KV_CACHE_DEBUG"] = "3"
    try:
        ctx = llama.llama_init_from_model(model, cp)
    finally:
        if old is None:
            os.environ.pop("LLAMA_KV_CACHE_DEBUG", None)
        else:
            os.environ["LLAMA_KV_CACHE_DEBUG"] = old
    assert ctx
    assert llama.llama_n_ctx(ctx) == n_ctx
    return ctx


def decode(ctx, tokens: Sequence[int], pos, *, seq: int = 0, logits: str = "last") -> None:
    """One llama_decode of ``tokens`` into ``seq``.

    ``pos``: the first position (int) or every token's position (a sequence).
    ``logits``: "last" (the last token's only), "all" or "none".
    """
    n = len(tokens)
    positions = range(pos, pos + n) if isinstance(pos, (int, np.integer)) else pos
    batch = llama.llama_batch_init(n, 0, 1)
    try:
        for i, (t, p) in enumerate(zip(tokens, positions)):
            batch.token[i] = int(t)
            batch.pos[i] = int(p)
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits == "all" or (logits == "last" and i == n - 1)
        batch.n_tokens = n
        rc = llama.llama_decode(ctx, batch)
        assert rc == 0, f"llama_decode returned {rc}"
    finally:
        llama.llama_batch_free(batch)
