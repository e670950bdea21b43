"""What a GGUF file says about its model, read and checked before llama.cpp is.

llama.cpp reacts to a damaged file late and badly (an abort deep in model
loading, or garbage tensors from a short read), so every model path goes
through :func:`read_metadata` first: a file without the GGUF magic, with a
header that runs off the end, or shorter than the end of its last tensor's
data is refused with a one-line :class:`ModelError`.

Why not ``gguf.GGUFReader``: it builds a numpy view for every element of
every metadata array, which costs 2.3 s on SmolLM2's 49K-token vocabulary
and 15.6 s on Gemma 3's 262K one, on every start. This module walks the same
header (the GGUF v2/v3 layout, using the ``gguf`` package's own type tables
for value types, file types and tensor sizes) with ``struct`` over a
memory map and skips the token arrays, which takes milliseconds. It never
touches the tensors' data. ``tests/test_models.py`` checks that it agrees
with ``GGUFReader`` on the real model.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType
from gguf.constants import GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC

from ..engine.errors import ModelError

# Architectures whose layers alternate sliding-window and global attention
# without saying so in the file: llama.cpp hard-codes the period (every
# n-th layer is global). Used only when the file has no
# ``{arch}.attention.sliding_window_pattern``.
_BUILTIN_SWA_PERIOD = {"gemma3": 6}

_SCALARS: dict[int, tuple[str, int]] = {
    GGUFValueType.UINT8: ("B", 1),
    GGUFValueType.INT8: ("b", 1),
    GGUFValueType.UINT16: ("H", 2),
    GGUFValueType.INT16: ("h", 2),
    GGUFValueType.UINT32: ("I", 4),
    GGUFValueType.INT32: ("i", 4),
    GGUFValueType.FLOAT32: ("f", 4),
    GGUFValueType.BOOL: ("?", 1),
    GGUFValueType.UINT64: ("Q", 8),
    GGUFValueType.INT64: ("q", 8),
    GGUFValueType.FLOAT64: ("d", 8),
}

# Arrays longer than this are skipped, not decoded (token lists, merges,
# scores); only their length is kept.
_MAX_DECODED_ARRAY = 4096


@dataclass(frozen=True)
class SkippedArray:
    """An array in the header that was stepped over, not decoded."""

    item_type: int
    length: int


@dataclass
class ModelMeta:
    """The facts about a model bookpot plans memory and prompts with."""

    path: Path
    file_size: int
    gguf_version: int
    architecture: str
    name: str | None
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int  # the largest, if the file gives one per layer
    head_dim: int  # key length per head
    value_dim: int  # value length per head (== head_dim for most models)
    n_ctx_train: int
    rope_freq_base: float | None
    vocab_size: int
    bos_token_id: int | None
    eos_token_id: int | None
    add_bos_token: bool | None
    chat_template: str | None
    file_type: int | None
    quantization: str  # e.g. "Q4_1", "Q4_K_M"
    licence: str | None
    n_tensors: int
    tensor_data_end: int  # offset one past the last tensor's data
    sliding_window: int | None = None  # tokens each SWA layer attends to
    swa_layers: tuple[bool, ...] | None = None  # True = that layer uses the window
    swa_pattern_source: str | None = None  # "metadata" or "llama.cpp default"
    head_count_kv_per_layer: tuple[int, ...] | None = None

    @property
    def interleaved_swa(self) -> bool:
        """True if some layers use a sliding window and some attend globally."""
        return bool(self.swa_layers) and any(self.swa_layers) and not all(self.swa_layers)

    @property
    def n_swa_layers(self) -> int:
        return sum(self.swa_layers) if self.swa_layers else 0

    def _kv_heads(self, layer: int) -> int:
        if self.head_count_kv_per_layer:
            return self.head_count_kv_per_layer[layer]
        return self.n_head_kv

    def kv_bytes_per_token(self, bytes_per_elem: int = 2) -> int:
        """Bytes of K and V cache one token costs across all layers.

        ``2 x n_layer x n_head_kv x head_dim x bytes_per_elem`` (K and V,
        with separate key/value lengths where they differ). This is the
        full-attention figure: on interleaved-SWA models (Gemma 3) the
        sliding-window layers only ever need their last ``sliding_window``
        tokens, so their share stops growing at the window; see
        :meth:`kv_bytes`.
        """
        per_head = (self.head_dim + self.value_dim) * bytes_per_elem
        return sum(self._kv_heads(i) * per_head for i in range(self.n_layer))

    def kv_bytes(self, n_tokens: int, bytes_per_elem: int = 2, swa_cells: int | None = None) -> int:
        """Estimated KV bytes for ``n_tokens`` of context, SWA-aware.

        Global layers hold every token; sliding-window layers hold at most
        ``swa_cells`` (default: the window; llama.cpp adds a batch's worth
        and padding on top, which the caller can pass in).
        """
        per_head = (self.head_dim + self.value_dim) * bytes_per_elem
        window = swa_cells if swa_cells is not None else (self.sliding_window or n_tokens)
        total = 0
        for i in range(self.n_layer):
            swa = bool(self.swa_layers and self.swa_layers[i])
            cells = min(n_tokens, window) if swa else n_tokens
            total += cells * self._kv_heads(i) * per_head
        return total

    def describe(self) -> str:
        """A few human lines, for ``bookpot models info`` and reports."""
        swa = "none"
        if self.sliding_window:
            if self.swa_layers:
                swa = (
                    f"window {self.sliding_window} on {self.n_swa_layers} of {self.n_layer} layers"
                    f" (pattern from {self.swa_pattern_source}; global layers: "
                    f"{[i for i, s in enumerate(self.swa_layers) if not s]})"
                )
            else:
                swa = f"window {self.sliding_window} (layer pattern unknown)"
        tmpl = "none" if self.chat_template is None else f"{len(self.chat_template)} chars"
        lines = [
            f"file            {self.path} ({self.file_size:,} bytes, GGUF v{self.gguf_version}, {self.n_tensors} tensors)",
            f"model           {self.name or '?'} [{self.architecture}], {self.quantization}, licence {self.licence or '?'}",
            f"layers          {self.n_layer}, n_embd {self.n_embd}, heads {self.n_head}, kv heads {self.n_head_kv}, head dim {self.head_dim}/{self.value_dim}",
            f"trained ctx     {self.n_ctx_train}, rope base {self.rope_freq_base}",
            f"sliding window  {swa}",
            f"vocab           {self.vocab_size}, bos {self.bos_token_id}, eos {self.eos_token_id}, add_bos {self.add_bos_token}",
            f"chat template   {tmpl}",
            f"kv per token    {self.kv_bytes_per_token():,} bytes (f16, all layers full)",
        ]
        return "\n".join(lines)


class _Truncated(Exception):
    pass


class _Header:
    """A cursor over the header bytes that fails cleanly past the end."""

    def __init__(self, buf, order: str):
        self.buf = buf
        self.order = order
        self.pos = 0
        self.size = len(buf)

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated

    def scalar(self, fmt: str, width: int) -> Any:
        self.need(width)
        (v,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += width
        return v

    def u32(self) -> int:
        return self.scalar("I", 4)

    def u64(self) -> int:
        return self.scalar("Q", 8)

    def string(self) -> str:
        n = self.u64()
        self.need(n)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.u64()
        self.need(n)
        self.pos += n

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.scalar(*_SCALARS[vtype])
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY:
            itype = self.u32()
            n = self.u64()
            if itype in _SCALARS:
                fmt, width = _SCALARS[itype]
                self.need(n * width)
                if n > _MAX_DECODED_ARRAY:
                    self.pos += n * width
                    return SkippedArray(itype, n)
                vals = struct.unpack_from(f"{self.order}{n}{fmt}", self.buf, self.pos)
                self.pos += n * width
                return list(vals)
            if itype == GGUFValueType.STRING:
                self.need(n * 8)  # every string has at least its length
                if n > _MAX_DECODED_ARRAY:
                    for _ in range(n):
                        self.skip_string()
                    return SkippedArray(itype, n)
                return [self.string() for _ in range(n)]
            if itype == GGUFValueType.ARRAY:
                self.need(n * 12)
                return [self.value(GGUFValueType.ARRAY) for _ in range(n)]
            raise ValueError(f"unknown array item type {itype}")
        raise ValueError(f"unknown value type {vtype}")


def _open_map(path: Path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist") from None
    except IsADirectoryError:
        raise ModelError(f"model path {path} is a directory, not a GGUF model file") from None
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            return None, size
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size


def read_metadata(path: str | os.PathLike) -> ModelMeta:
    """Read and sanity-check a GGUF file's header; never loads tensor data.

    Raises ModelError if the file is missing, not GGUF, or truncated/corrupt.
    """
    path = Path(path)
    mm, file_size = _open_map(path)
    if mm is None or mm[:4] != struct.pack("<I", GGUF_MAGIC):
        if mm is not None:
            mm.close()
        raise ModelError(f"{path} is not a GGUF model file")
    try:
        return _parse(path, mm, file_size)
    except (_Truncated, ValueError, struct.error, MemoryError, OverflowError, IndexError):
        raise ModelError(f"model file {path} is truncated or corrupt; fetch or copy it again") from None
    finally:
        mm.close()


def _parse(path: Path, mm, file_size: int) -> ModelMeta:
    h = _Header(mm, "<")
    h.pos = 4
    version = h.u32()
    if version & 0xFFFF == 0:  # written on a machine of the other byte order
        h.order = ">"
        h.pos = 4
        version = h.u32()
    if version not in (2, 3):
        raise ModelError(f"{path} is GGUF version {version}; bookpot reads versions 2 and 3")
    n_tensors = h.u64()
    n_kv = h.u64()
    h.need(n_tensors * 24 + n_kv * 12)  # each entry's fixed part, at least

    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key = h.string()
        kv[key] = h.value(h.u32())

    data_end_rel = 0
    for _ in range(n_tensors):
        h.skip_string()
        n_dims = h.u32()
        if n_dims > 8:
            raise ValueError("too many tensor dimensions")
        n_elems = 1
        for _ in range(n_dims):
            n_elems *= h.u64()
        ttype = h.u32()
        offset = h.u64()
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        except (ValueError, KeyError):
            raise ModelError(
                f"{path} uses tensor type {ttype}, which this bookpot's gguf library does not know"
            ) from None
        data_end_rel = max(data_end_rel, offset + n_elems * type_size // block)

    align = kv.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise ValueError("bad alignment")
    data_start = -(-h.pos // align) * align
    tensor_data_end = data_start + data_end_rel
    if file_size < tensor_data_end:
        raise _Truncated
    return _build(path, kv, version, n_tensors, file_size, tensor_data_end)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _build(path: Path, kv: dict[str, Any], version: int, n_tensors: int,
           file_size: int, tensor_data_end: int) -> ModelMeta:
    arch = kv.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelError(f"{path} has no general.architecture; it is not a model bookpot can use")

    def a(key: str, default: Any = None) -> Any:
        return kv.get(f"{arch}.{key}", default)

    n_layer = _int(a("block_count"))
    n_embd = _int(a("embedding_length"))
    n_head_raw = a("attention.head_count")
    if n_layer is None or n_embd is None or n_head_raw is None:
        raise ModelError(f"{path} lacks layer/embedding/head counts for {arch}; bookpot cannot use it")
    n_head = max(n_head_raw) if isinstance(n_head_raw, list) else n_head_raw
    kv_raw = a("attention.head_count_kv", n_head_raw)
    per_layer_kv = None
    if isinstance(kv_raw, list):
        per_layer_kv = tuple(kv_raw)
        n_head_kv = max(kv_raw) if kv_raw else 0
    else:
        n_head_kv = kv_raw
    head_dim = _int(a("attention.key_length")) or (n_embd // n_head if n_head else 0)
    value_dim = _int(a("attention.value_length")) or head_dim

    tokens = kv.get("tokenizer.ggml.tokens")
    n_tokens = tokens.length if isinstance(tokens, SkippedArray) else len(tokens or ())
    vocab_size = _int(a("vocab_size")) or n_tokens

    file_type = _int(kv.get("general.file_type"))
    try:
        quant = LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (ValueError, TypeError):
        quant = "unknown" if file_type is None else f"type {file_type}"

    window = _int(a("attention.sliding_window")) or None
    swa_layers, source = _swa_layers(arch, n_layer, window, a("attention.sliding_window_pattern"))

    template = kv.get("tokenizer.chat_template")
    rope = a("rope.freq_base")
    add_bos = kv.get("tokenizer.ggml.add_bos_token")
    return ModelMeta(
        path=path,
        file_size=file_size,
        gguf_version=version,
        architecture=arch,
        name=kv.get("general.name") if isinstance(kv.get("general.name"), str) else None,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        value_dim=value_dim,
        n_ctx_train=_int(a("context_length")) or 0,
        rope_freq_base=float(rope) if isinstance(rope, (int, float)) else None,
        vocab_size=vocab_size,
        bos_token_id=_int(kv.get("tokenizer.ggml.bos_token_id")),
        eos_token_id=_int(kv.get("tokenizer.ggml.eos_token_id")),
        add_bos_token=add_bos if isinstance(add_bos, bool) else None,
        chat_template=template if isinstance(template, str) and template else None,
        file_type=file_type,
        quantization=quant,
        licence=kv.get("general.license") if isinstance(kv.get("general.license"), str) else None,
        n_tensors=n_tensors,
        tensor_data_end=tensor_data_end,
        sliding_window=window,
        swa_layers=swa_layers,
        swa_pattern_source=source,
        head_count_kv_per_layer=per_layer_kv,
    )


def _swa_layers(arch: str, n_layer: int, window: int | None, pattern: Any):
    """Which layers use the sliding window, following llama.cpp's rules.

    The pattern key is either a period ``p`` (layer ``i`` is SWA unless
    ``i % p == p - 1``; 0 means all layers) or one bool per layer. Without
    it, a known interleaved architecture gets llama.cpp's built-in period;
    otherwise a window means every layer uses it.
    """
    if not window:
        return None, None
    if isinstance(pattern, list) and len(pattern) == n_layer:
        return tuple(bool(x) for x in pattern), "metadata"
    period, source = None, None
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        period, source = pattern, "metadata"
    elif arch in _BUILTIN_SWA_PERIOD:
        period, source = _BUILTIN_SWA_PERIOD[arch], "llama.cpp default"
    if period is None:
        return tuple(True for _ in range(n_layer)), "all layers (no pattern in file)"
    if period == 0:
        return tuple(True for _ in range(n_layer)), source
    return tuple(i % period < period - 1 for i in range(n_layer)), source
