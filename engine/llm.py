"""The model and its context, on llama-cpp-python's low-level (ctypes) API.

bookpot needs control the high-level ``Llama`` class hides: where each token
goes in the KV cache, which sequences exist, and the eval callback used for
scoring. So this module wraps only the C calls, in plain sight, in the
spirit of llama.cpp's own examples: load a model, make a context, tokenize,
decode a batch, read logits, move KV ranges.
"""
from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import llama_cpp as _lc
from llama_cpp import llama_cpp as C

from .errors import ModelError
from .version import LLAMA_CPP_PYTHON

if TYPE_CHECKING:  # numpy is imported where it is used (a vocab-only load needs none)
    import numpy as np

# ---------------------------------------------------------------- logging
# llama.cpp logs a lot to stderr. Users must see one-line errors, not walls
# of loader chatter, so the log goes to a small ring buffer (kept for error
# messages and for tests that read llama.cpp's own debug output) unless
# BOOKPOT_LLAMA_LOG=1.
LLAMA_LOG: deque[str] = deque(maxlen=2000)
_log_listeners: list = []


@C.llama_log_callback
def _log_callback(level, text, user_data):  # pragma: no cover - called from C
    try:
        s = text.decode("utf-8", "replace")
    except Exception:
        return
    LLAMA_LOG.append(s)
    for listener in list(_log_listeners):
        listener(s)
    if os.environ.get("BOOKPOT_LLAMA_LOG") == "1":
        os.write(2, text)


_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            C.llama_log_set(_log_callback, ctypes.c_void_p(0))
            C.llama_backend_init()
            _backend_ready = True


def add_log_listener(fn) -> None:
    """Call ``fn(line)`` for every llama.cpp log line (tests use this)."""
    _log_listeners.append(fn)


def remove_log_listener(fn) -> None:
    if fn in _log_listeners:
        _log_listeners.remove(fn)


def default_threads() -> int:
    """Cores this process may run on (respects taskset / cgroups cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def use_extra_buffer_types() -> bool:
    """Whether llama.cpp may use its extra CPU buffer types (weight repacking, AMX).

    On CPUs that advertise AMX, ggml routes Q4/Q8 matrix products to its AMX
    kernels, and inside VMs that do not grant AMX state those crash with a
    segfault (seen on the development machine). So extra buffer types are off
    where /proc/cpuinfo lists AMX; ``BOOKPOT_EXTRA_BUFTS=1`` or ``=0`` forces it.
    """
    forced = os.environ.get("BOOKPOT_EXTRA_BUFTS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" not in line.split()
    except OSError:
        pass
    return True


def check_pin() -> None:
    if _lc.__version__ != LLAMA_CPP_PYTHON:
        raise ModelError(
            f"bookpot needs llama-cpp-python=={LLAMA_CPP_PYTHON}, "
            f"found {_lc.__version__}; reinstall bookpot"
        )


class _Owned:
    """Frees its C object on ``close()``, and at garbage collection at the latest."""

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


# ------------------------------------------------------------------ model
class Model(_Owned):
    """A loaded GGUF: weights and vocabulary.

    ``vocab_only=True`` loads just the tokenizer (fast, a few MB) for
    ``bookpot info`` and token counting.
    """

    def __init__(self, path: str | Path, *, vocab_only: bool = False) -> None:
        check_pin()
        _init_backend()
        self.path = str(path)
        params = C.llama_model_default_params()
        params.vocab_only = vocab_only
        params.use_mmap = True
        params.use_extra_bufts = use_extra_buffer_types()
        self._ptr = C.llama_model_load_from_file(self.path.encode(), params)
        if not self._ptr:
            last = next((s.strip() for s in reversed(LLAMA_LOG) if "error" in s.lower()), "")
            raise ModelError(f"llama.cpp could not load {self.path}" + (f": {last}" if last else ""))
        self.vocab = C.llama_model_get_vocab(self._ptr)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = C.llama_model_n_ctx_train(self._ptr)
        self.n_layer = C.llama_model_n_layer(self._ptr)
        self.n_swa = C.llama_model_n_swa(self._ptr)  # > 0: sliding-window layers
        # Attention shape (memory-unit keys); llama.cpp aborts on these for a vocab-only load.
        self.n_embd = self.n_head = self.n_head_kv = self.head_dim = 0
        if not vocab_only:
            self.n_embd = C.llama_model_n_embd(self._ptr)
            self.n_head = C.llama_model_n_head(self._ptr)
            self.n_head_kv = C.llama_model_n_head_kv(self._ptr) or self.n_head
            self.head_dim = self.n_embd // max(1, self.n_head)  # Q rows: n_head * head_dim
        self.add_bos = bool(C.llama_vocab_get_add_bos(self.vocab))
        self.bos = C.llama_vocab_bos(self.vocab)
        self.eos = C.llama_vocab_eos(self.vocab)
        tmpl = C.llama_model_chat_template(self._ptr, None)
        self.chat_template = tmpl.decode("utf-8", "replace") if tmpl else None
        self._piece_cache: dict[tuple[int, bool], bytes] = {}

    # -- tokens ------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = False, add_bos: bool = False) -> list[int]:
        """Tokens of ``text``.

        ``special=False`` is how *document* text is always tokenized: a
        literal "<|im_start|>" in a book becomes ordinary text tokens and can
        never forge a template token. Only bookpot's own template strings
        are tokenized with ``special=True``.
        """
        data = text.encode("utf-8", "replace")
        n_max = len(data) + 8
        buf = (C.llama_token * n_max)()
        n = C.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_bos, special)
        if n < 0:  # buffer too small (cannot happen for n_max > bytes, but be safe)
            n_max = -n
            buf = (C.llama_token * n_max)()
            n = C.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_bos, special)
        return list(buf[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes a token stands for; control tokens render as nothing
        unless ``special`` (then as their text, e.g. b"<|im_start|>")."""
        key = (token, special)
        cached = self._piece_cache.get(key)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = C.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = C.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        out = buf.raw[:n]
        self._piece_cache[key] = out
        return out

    def is_special(self, token: int) -> bool:
        """True for control tokens (template markers, BOS/EOS)."""
        return bool(C.llama_vocab_is_control(self.vocab, token)) or bool(
            C.llama_vocab_is_eog(self.vocab, token)
        )

    def is_eog(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self.vocab, token))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def cannot_start(self, token: int) -> bool:
        """True for a token that ends generation or holds no letter or digit
        (a single space excepted: numbers begin with one).

        ``generate(must_start=True)`` keeps such tokens from being an answer's
        first: a small model's first token after a question is often a blank
        line or the end of text, and after an answer stem often a full stop
        ("Captain Vale buried the logbook."), so the answer would end before
        it starts (issue #18, bench/questions.py).
        """
        if self.is_eog(token):
            return True
        piece = self.piece(token)
        # A lone space may: SmolLM2 writes " 48213" as " " then one token a digit.
        return not self.is_special(token) and piece != b" " and not _has_word(piece)

    def close(self) -> None:
        if getattr(self, "_ptr", None):
            C.llama_model_free(self._ptr)
            self._ptr = None


FIRST_CANDIDATES = 64  # top logits checked for a token that cannot start an answer


def _ban_first(ctx, model) -> None:
    """Set the logits of the likeliest tokens that cannot start an answer to -inf.

    Only the top ``FIRST_CANDIDATES`` are checked (greedy and top-p sampling
    pick among them), not the whole vocabulary: one pass over 49K tokens
    costs ~1 s in Python, this costs ~1 ms.
    """
    import numpy as np

    logits = ctx.logits_ith(-1)
    top = np.argpartition(-logits, FIRST_CANDIDATES)[:FIRST_CANDIDATES]
    for t in top:
        if model.cannot_start(int(t)):
            logits[t] = -np.inf


def _has_word(piece: bytes) -> bool:
    """A letter or digit in a token's bytes (a split UTF-8 character counts as one)."""
    text = piece.decode("utf-8", "replace")
    return any(c.isalnum() or c == "\ufffd" for c in text)


# ---------------------------------------------------------------- context
class Context(_Owned):
    """One llama_context: a KV cache of ``n_ctx`` cells and the decode call.

    Sequence 0 holds the document (and the question while answering); other
    sequence ids are scratch space for memory units. Flash attention is off
    by default because the pot's scoring pass reads the ``kq_soft_max``
    tensors, which exist only without it.
    """

    def __init__(
        self,
        model: Model,
        *,
        n_ctx: int,
        n_batch: int = 512,
        n_threads: int | None = None,
        n_seq_max: int = 1,
        flash_attn: bool = False,
        tap=None,
    ) -> None:
        """``tap``: a ``bookpot.native.kernels.Tap`` to read attention for
        scoring (needs flash attention off); kept alive with the context."""
        from .cells import CellMap

        self.model = model
        self.tap = tap
        params = C.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = params.n_threads_batch = n_threads or default_threads()
        params.flash_attn_type = (
            C.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else C.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.kv_unified = True
        params.no_perf = True
        if tap is not None:
            tap.install(params)
        self._ptr = C.llama_init_from_model(model._ptr, params)
        if not self._ptr:
            raise ModelError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.n_ctx = C.llama_n_ctx(self._ptr)
        self.n_batch = n_batch
        self.mem = C.llama_get_memory(self._ptr)
        self._batch = C.llama_batch_init(n_batch, 0, 1)
        # The mirror of llama.cpp's cell bookkeeping: per-cell attention read
        # by the tap is turned into per-position scores with it.
        self.cells = CellMap(self.n_ctx, n_batch)

    # -- decode ------------------------------------------------------------
    def decode(self, tokens: Sequence[int], pos0: int, *, seq: int = 0, logits: str = "last",
               on_logits=None) -> None:
        """Decode ``tokens`` at positions ``pos0, pos0+1, ...`` in ``seq``.

        ``logits`` is "last" (only the final token's logits are kept: what
        prefill and generation need), "all" (every token's: NuC scoring) or
        "none". Splits into ``n_batch`` pieces; the KV cache keeps them all.
        With "all", ``on_logits(start, rows)`` gets each piece's logits as an
        (n, n_vocab) float32 view, valid only during the call.
        """
        n = len(tokens)
        b = self._batch
        for start in range(0, n, self.n_batch):
            part = tokens[start : start + self.n_batch]
            b.n_tokens = len(part)
            for i, tok in enumerate(part):
                b.token[i] = tok
                b.pos[i] = pos0 + start + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq
                if logits == "all":
                    b.logits[i] = True
                elif logits == "last":
                    b.logits[i] = start + i == n - 1
                else:
                    b.logits[i] = False
            rc = C.llama_decode(self._ptr, b)
            if rc != 0:
                raise ModelError(f"llama_decode failed (code {rc}) at position {pos0 + start}")
            self.cells.decode(range(pos0 + start, pos0 + start + len(part)), seq)
            if on_logits is not None and logits == "all":
                import numpy as np

                ptr = C.llama_get_logits(self._ptr)
                on_logits(start, np.ctypeslib.as_array(ptr, shape=(len(part), self.model.n_vocab)))

    def logits_ith(self, i: int = -1):
        """Logits of the i-th token of the last batch (-1: the last) as numpy."""
        import numpy as np

        ptr = C.llama_get_logits_ith(self._ptr, i)
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))

    # -- KV memory ---------------------------------------------------------
    def seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        """Remove positions [p0, p1) of ``seq`` (-1 = open end)."""
        ok = bool(C.llama_memory_seq_rm(self.mem, seq, p0, p1))
        if ok:
            self.cells.seq_rm(seq, p0, p1)
        return ok

    def seq_add(self, seq: int, p0: int, p1: int, delta: int) -> None:
        """Shift positions [p0, p1) of ``seq`` by ``delta`` (K re-rotated lazily)."""
        C.llama_memory_seq_add(self.mem, seq, p0, p1, delta)
        self.cells.seq_add(seq, p0, p1, delta)

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        C.llama_memory_seq_cp(self.mem, src, dst, p0, p1)
        self.cells.seq_cp(src, dst, p0, p1)

    def state_seq_get(self, seq: int) -> tuple[memoryview, np.ndarray]:
        """(llama_state_seq_get_data of ``seq``, its positions in the order written)."""
        import ctypes

        n = C.llama_state_seq_get_size(self._ptr, seq)
        buf = (ctypes.c_uint8 * n)()
        wrote = C.llama_state_seq_get_data(self._ptr, buf, n, seq)
        if wrote == 0:
            raise ModelError(f"llama.cpp could not save sequence {seq}")
        # A view on the ctypes buffer, not a copy: a pot's state is tens of MB.
        return memoryview(buf)[:wrote], self.cells.positions_in_cell_order(seq)

    def state_seq_set(self, data: bytes, seq: int, positions) -> None:
        """llama_state_seq_set_data into ``seq`` (which is emptied first).

        ``positions``: what ``state_seq_get`` returned with ``data``, so the
        cell map can place the cells as llama.cpp does.
        """
        import ctypes

        buf = (ctypes.c_uint8 * len(data)).from_buffer(data) if isinstance(data, bytearray) \
            else (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if C.llama_state_seq_set_data(self._ptr, buf, len(data), seq) == 0:
            self.cells.seq_rm(seq, -1, -1)  # llama.cpp clears the sequence on failure
            raise ModelError(f"llama.cpp could not restore sequence {seq} ({len(data):,} bytes)")
        self.cells.state_seq_set(seq, positions)

    def state_seq_save(self, seq: int, path: str | Path) -> np.ndarray | None:
        """Write ``seq``'s KV to ``path`` (llama_state_seq_save_file); return its positions.

        Streamed to the file by llama.cpp in small pieces. Measured on a
        pot of 36-54 MB: ``llama_state_seq_get_data`` into a buffer peaked
        at up to +158 MiB over that buffer inside llama.cpp (a 512M cap was
        exceeded at every checkpoint), the file route at +0. The file's
        "tokens" field holds the positions in cell order (what the cell map
        needs to place the cells again on load). Returns None on failure
        (a full disk: llama.cpp logs and returns 0); the caller says why.
        """
        import ctypes

        import numpy as np

        positions = np.ascontiguousarray(self.cells.positions_in_cell_order(seq), dtype=np.int32)
        arr = positions.ctypes.data_as(ctypes.POINTER(C.llama_token))
        wrote = C.llama_state_seq_save_file(self._ptr, str(path).encode(), seq, arr, len(positions))
        return positions if wrote else None

    def state_seq_load(self, path: str | Path, seq: int) -> np.ndarray:
        """Restore ``seq`` (emptied first) from a ``state_seq_save`` file; return its positions."""
        import ctypes

        import numpy as np

        positions = np.zeros(self.n_ctx, dtype=np.int32)
        n_out = ctypes.c_size_t(0)
        ok = C.llama_state_seq_load_file(self._ptr, str(path).encode(), seq,
                                         positions.ctypes.data_as(ctypes.POINTER(C.llama_token)),
                                         len(positions), ctypes.byref(n_out))
        if ok == 0:
            self.cells.seq_rm(seq, -1, -1)  # llama.cpp clears the sequence on failure
            raise ModelError(f"llama.cpp could not restore sequence {seq} from {Path(path).name}")
        positions = positions[: n_out.value].copy()
        self.cells.state_seq_set(seq, positions)
        return positions

    def state_seq_save_bytes(self, seq: int) -> bytes | None:
        """The bytes ``state_seq_save`` would write for ``seq`` (llama_state_seq_save_file into an
        anonymous in-memory file, memfd_create), so a unit can be re-encoded before anything
        reaches the disk; None on failure."""
        with _mem_file() as (f, path):
            if self.state_seq_save(seq, path) is None:
                return None
            f.seek(0)
            return f.read()

    def state_seq_load_bytes(self, data, seq: int) -> np.ndarray:
        """``state_seq_load`` from the bytes of such a file (through an in-memory file);
        ``data``: the bytes, or a function given the file's ``write`` that writes them.
        ``ModelError`` when llama.cpp refuses them."""
        with _mem_file() as (f, path):
            if callable(data):
                data(f.write)
            else:
                f.write(data)
            f.flush()
            return self.state_seq_load(path, seq)

    def pos_max(self, seq: int = 0) -> int:
        return C.llama_memory_seq_pos_max(self.mem, seq)

    def pos_min(self, seq: int = 0) -> int:
        return C.llama_memory_seq_pos_min(self.mem, seq)

    def clear(self) -> None:
        C.llama_memory_clear(self.mem, True)
        self.cells.clear()

    def close(self) -> None:
        if getattr(self, "_ptr", None):
            C.llama_batch_free(self._batch)
            C.llama_free(self._ptr)
            self._ptr = None


@contextlib.contextmanager
def _mem_file():
    """(file object, path llama.cpp can fopen) of a scratch file that lives in RAM:
    a memfd seen through /proc/self/fd (Linux); elsewhere an unlinked temporary file."""
    import tempfile

    fd = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.memfd_create("bookpot-kv", getattr(os, "MFD_CLOEXEC", 0))
    if fd is not None and os.path.exists(f"/proc/self/fd/{fd}"):
        with os.fdopen(fd, "w+b") as f:
            yield f, f"/proc/self/fd/{fd}"
        return
    if fd is not None:
        os.close(fd)
    with tempfile.NamedTemporaryFile(prefix="bookpot-kv-") as f:
        yield f, f.name


# --------------------------------------------------------------- sampling
class Sampler(_Owned):
    """llama.cpp's sampler chain: repetition penalty, then greedy or top-p.

    Greedy (temperature 0) is the default: answers about a document should
    be reproducible, and tests compare runs. No repetition penalty by
    default: it punishes the repeated digits of a pass key (measured: 4 of 6
    with 1.1 against 6 of 6 without); stop strings end runaway answers, and
    the summarizer, which loops more, asks for a penalty.
    """

    def __init__(self, n_vocab: int, *, temperature: float = 0.0, repeat_penalty: float = 1.0,
                 repeat_last_n: int = 64, seed: int = 1234) -> None:
        ctx_n_vocab = n_vocab
        sp = C.llama_sampler_chain_default_params()
        self._ptr = C.llama_sampler_chain_init(sp)
        if repeat_penalty and repeat_penalty != 1.0:
            C.llama_sampler_chain_add(
                self._ptr, C.llama_sampler_init_penalties(ctx_n_vocab, repeat_last_n, repeat_penalty, 0.0, 0.0)
            )
        if temperature <= 0:
            C.llama_sampler_chain_add(self._ptr, C.llama_sampler_init_greedy())
        else:
            C.llama_sampler_chain_add(self._ptr, C.llama_sampler_init_top_p(0.95, 1))
            C.llama_sampler_chain_add(self._ptr, C.llama_sampler_init_temp(temperature))
            C.llama_sampler_chain_add(self._ptr, C.llama_sampler_init_dist(seed))

    def sample(self, ctx: Context) -> int:
        """The next token from the last decoded token's logits, accepted once.

        ``llama_sampler_sample`` applies the chain *and accepts* the token
        (llama.h: "Sample and accept a token"), so the penalties' window of
        ``repeat_last_n`` holds each generated token once. Calling
        ``llama_sampler_accept`` again would put it there twice and halve
        the window (tests/test_sampler.py counts the acceptances).
        """
        return C.llama_sampler_sample(self._ptr, ctx._ptr, -1)

    def close(self) -> None:
        if getattr(self, "_ptr", None):
            C.llama_sampler_free(self._ptr)
            self._ptr = None


def generate(ctx: Context, pos: int, *, max_tokens: int, sampler: Sampler,
             stop: Sequence[str] = (), cancel=None, must_start: bool = False) -> Iterator[str]:
    """Stream text after the last decoded token (which sits at ``pos - 1``).

    Yields decoded text pieces; multi-byte UTF-8 characters split across
    tokens are held back until complete. Stops at end-of-generation, at
    ``max_tokens``, at any ``stop`` string, or when ``cancel()`` is true.
    ``must_start``: the first token may not end generation or lack a letter
    or digit (a lone space may: numbers begin with one; then the second
    token is held to the same rule), so an answer cannot end before it
    begins (their logits are set to -inf before sampling).
    """
    model = ctx.model
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    text_so_far = ""
    first = b""  # the first token's bytes
    for i in range(max_tokens):
        if cancel is not None and cancel():
            break
        if must_start and (i == 0 or (i == 1 and first == b" ")):
            _ban_first(ctx, model)  # after a lone space, still no line break or stop
        tok = sampler.sample(ctx)
        if i == 0:
            first = model.piece(tok)
        if model.is_eog(tok):
            break
        piece = dec.decode(model.piece(tok))
        if stop and piece:
            combined = text_so_far + piece
            hits = [(combined.find(s), s) for s in stop if s in combined]
            if hits:
                at, s = min(hits)
                # Keep sentence punctuation, drop the line break after it.
                hit = at + len(s.rstrip("\n"))
                tail = combined[len(text_so_far):hit]
                if tail:
                    yield tail
                return
            text_so_far = combined[-64:]
        if piece:
            yield piece
        ctx.decode([tok], pos, logits="last")
        pos += 1
    rest = dec.decode(b"", final=True)
    if rest:
        yield rest
