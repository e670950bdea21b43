"""The Python face of ``bookpot.native._hot``; importing it checks the ABI.

The C extension never links against llama.cpp: it gets the three ggml
functions it calls as addresses from the libggml-base.so that llama_cpp
loaded, and checks its copy of ``struct ggml_tensor`` against a real tensor
made here. Any mismatch (another llama-cpp-python, a changed ggml) raises
ImportError with one sentence; ``bookpot.native.available()`` reports it.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from ..engine.version import LLAMA_CPP_PYTHON

try:
    import llama_cpp
    import llama_cpp.llama_cpp as llama
except Exception as e:  # pragma: no cover - depends on the install
    raise ImportError(f"llama_cpp cannot be imported ({e}).") from e

if llama_cpp.__version__ != LLAMA_CPP_PYTHON:
    raise ImportError(
        f"bookpot.native needs llama-cpp-python {LLAMA_CPP_PYTHON}, found {llama_cpp.__version__}."
    )

from . import _hot  # noqa: E402  (C extension; ImportError if it was not built)


class _GgmlInitParams(ctypes.Structure):
    # struct ggml_init_params in ggml.h of llama-cpp-python 0.3.36
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def _ggml_base() -> ctypes.CDLL:
    """The libggml-base.so llama_cpp already loaded (dlopen returns the same object)."""
    lib_dir = os.path.dirname(llama._lib._name)
    return ctypes.CDLL(os.path.realpath(os.path.join(lib_dir, "libggml-base.so")))


def _init() -> None:
    g = _ggml_base()
    g.ggml_init.argtypes = [_GgmlInitParams]
    g.ggml_init.restype = ctypes.c_void_p
    g.ggml_new_tensor_3d.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    g.ggml_new_tensor_3d.restype = ctypes.c_void_p
    g.ggml_set_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    g.ggml_set_name.restype = ctypes.c_void_p
    g.ggml_free.argtypes = [ctypes.c_void_p]
    g.ggml_free.restype = None

    addr = lambda f: ctypes.cast(f, ctypes.c_void_p).value  # noqa: E731
    ctx = g.ggml_init(_GgmlInitParams(1 << 16, None, True))  # metadata only, no tensor data
    if not ctx:
        raise ImportError("ggml_init() failed while checking the ggml ABI.")
    try:
        probe = g.ggml_new_tensor_3d(ctx, 0, 7, 5, 3)  # GGML_TYPE_F32
        g.ggml_set_name(probe, b"bookpot-probe")
        _hot.init(addr(g.ggml_get_name), addr(g.ggml_nelements), addr(g.ggml_backend_tensor_get), probe)
    finally:
        g.ggml_free(ctx)


_init()


def eval_callback() -> "llama.ggml_backend_sched_eval_callback":
    """The C callback as the ctypes type llama_context_params.cb_eval expects."""
    return ctypes.cast(_hot.eval_callback(), llama.ggml_backend_sched_eval_callback)


class Tap:
    """Per-context attention tap for catalyst scoring (see native/hot.c).

    Install before creating the context::

        tap = Tap()
        tap.install(cparams)          # cb_eval + cb_eval_user_data
        cparams.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_DISABLED

    Keep ``tap`` alive as long as the context: the context holds a raw
    pointer to its state.
    """

    def __init__(self) -> None:
        self._c = _hot.Tap()
        self._cb = eval_callback()
        self._n_layers = 0

    def install(self, cparams) -> None:
        cparams.cb_eval = self._cb
        cparams.cb_eval_user_data = ctypes.c_void_p(self._c.user_data)

    def arm(self, out: np.ndarray, layers, n_query: int) -> None:
        """Score the next decode into ``out`` (float32, one slot per KV cell; added to).

        The catalyst rows are the last ``n_query`` tokens of that decode's
        batch, and the batch must fit in one ubatch (n_tokens <= n_ubatch).
        """
        if out.dtype != np.float32 or not out.flags.c_contiguous:
            raise TypeError("out must be a contiguous float32 array")
        layers = sorted(set(int(l) for l in layers))
        self._c.arm(out, layers, int(n_query))
        self._n_layers = len(layers)

    def disarm(self) -> dict:
        """Stop scoring; return the counters.

        Raises RuntimeError when the callback saw an unexpected tensor, or did
        not read each chosen layer exactly once (flash attention on, a batch
        split into several ubatches, or a graph without kq_soft_max-<l>).
        """
        self._c.disarm()
        st = self._c.stats()
        if st["error"]:
            raise RuntimeError(f"attention tap: {st['error']}")
        if st["read"] != self._n_layers:
            raise RuntimeError(
                f"attention tap read {st['read']} kq_soft_max tensors for {self._n_layers} layers "
                "(flash attention must be off and the scored batch must fit one ubatch)"
            )
        return st

    def stats(self) -> dict:
        return self._c.stats()

    def capture(self, out: np.ndarray, layers, which: str, n_tokens: int) -> None:
        """Copy the next decode's pre-RoPE Q or K rows of ``layers`` into ``out``.

        ``out``: float32 (len(layers), n_tokens, dim); the decode must be one
        ubatch of exactly ``n_tokens`` tokens. Pre-RoPE, so q.k compares
        content as if both tokens sat at the same position (memory-unit
        lookup). ``end_capture()`` checks every layer was copied.
        """
        if out.dtype != np.float32 or not out.flags.c_contiguous or out.ndim != 3:
            raise TypeError("out must be a contiguous float32 (layers, n_tokens, dim) array")
        layers = [int(l) for l in layers]
        if out.shape[0] != len(layers) or out.shape[1] != n_tokens:
            raise ValueError("out must have shape (len(layers), n_tokens, dim)")
        self._c.capture(out, layers, which, out.shape[2], int(n_tokens))
        self._n_capture = len(layers)

    def end_capture(self) -> None:
        """Stop capturing; RuntimeError unless each layer's rows were copied."""
        n = self._c.end_capture()
        st = self._c.stats()
        if st["error"]:
            raise RuntimeError(f"capture: {st['error']}")
        if n < getattr(self, "_n_capture", 0):
            raise RuntimeError(f"capture copied {n} tensors for {self._n_capture} layers "
                               "(the decode must be one ubatch of the given size)")

    @property
    def armed(self) -> bool:
        return self._c.armed


def nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """nll[i] = logsumexp(logits[i]) - logits[i, targets[i]] (C, float64 sums)."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    targets = np.ascontiguousarray(targets, dtype=np.int32)
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError("logits must be (n_tokens, n_vocab) with one target per row")
    out = np.empty(targets.shape[0], dtype=np.float32)
    _hot.nll(logits, targets, out)
    return out


def nll_numpy(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The same in numpy (the reference tests/test_native.py holds nll() to)."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return (lse - x[np.arange(x.shape[0]), np.asarray(targets)]).astype(np.float32)


def logits_view(ctx, n_rows: int, n_vocab: int) -> np.ndarray:
    """llama_get_logits(ctx) as an (n_rows, n_vocab) float32 array, no copy.

    Valid until the next llama_decode on ctx.
    """
    ptr = llama.llama_get_logits(ctx)
    return np.ctypeslib.as_array(ptr, shape=(n_rows, n_vocab))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, ascending index order.

    numpy's argpartition is used: for a pot of 2K-8K cells it takes tens of
    microseconds, so a C version would not pay for itself.
    """
    scores = np.asarray(scores)
    if k >= scores.shape[0]:
        return np.arange(scores.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    return np.sort(np.argpartition(scores, -k)[-k:])
