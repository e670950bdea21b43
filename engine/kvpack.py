"""Compact memory-unit files: a unit's f16 K and V rows stored as ggml quant blocks.

``llama_state_seq_save_file`` (llama.cpp of the pinned llama-cpp-python,
``llama_context::state_seq_save_file`` and ``llama_kv_cache::state_write``)
writes, all little-endian:

    u32 magic 'ggsq', u32 version, u32 n_token, i32 token[n_token]
    u32 n_stream (1: bookpot's cache is unified)
    u32 cell_count
    per cell: i32 pos, u32 n_seq_id, i32 seq_id[n_seq_id]
    u32 v_trans, u32 n_layer
    per layer, K: i32 type, u64 row_bytes, cell_count rows
    per layer, V: v_trans == 0: i32 type, u64 row_bytes, cell_count rows
                  v_trans == 1: i32 type, u32 elem_bytes, u32 n_embd_v,
                                n_embd_v rows of cell_count elements

With f16 K and V (llama.cpp's default) that is 23,040 bytes per token for
the default model (30 layers x 192 x 2 x 2 B). ``pack`` keeps every byte
that is not K or V (header, positions, cell metadata, per-layer type
records) verbatim, and re-encodes each cell's K row and V row (V
un-transposed first) in ggml quant blocks of 32 values along the row,
with the quantizers of the ``gguf`` package (gguf-py's ``gguf.quants``,
the reference implementations of ggml's block formats). ``unpack``
rebuilds the llama.cpp file byte for byte except the K and V values,
which come back as f16 from the blocks: llama.cpp loads it as ever.

A compact file is::

    b"BPKVQ001"  u32 header_bytes  header (JSON)  body  blake2b-128(all before it)

header: {"tensors": [[kind, ggml type name, cells, embd, transposed], ...],
"verbatim": [run lengths], "zstd", "plain_bytes", "body_bytes"}; body: the
verbatim runs (every byte that is not a K or V value), then every tensor's
blocks in file order, zstandard-compressed as a whole when "zstd". A
damaged file fails its checksum (``PackError``); a file without the magic
is a plain llama.cpp file (the format before compact units).
"""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

MAGIC = b"BPKVQ001"
SEQ_MAGIC = 0x67677371  # 'ggsq'
F16 = 1  # ggml_type of llama.cpp's default KV cache
DIGEST = 16

# name -> (K type, V type), ggml type names as in gguf.GGMLQuantizationType
# A "+zstd" suffix (``format_types``) compresses the blocks with zstandard on top.
FORMATS: dict[str, tuple[str, str] | None] = {
    "f16": None,  # llama.cpp's file as it is
    "q8_0": ("Q8_0", "Q8_0"),
    "k8v5": ("Q8_0", "Q5_0"),
    "k8v4": ("Q8_0", "Q4_0"),
    "q5_0": ("Q5_0", "Q5_0"),
    "k5v4": ("Q5_0", "Q4_0"),
    "q4_0": ("Q4_0", "Q4_0"),
}


ZSTD_LEVEL = 3


def format_types(fmt: str) -> tuple[tuple[str, str] | None, bool]:
    """((K type, V type) or None for f16, zstd on top) of a format name like "q5_0+zstd"."""
    base, _, extra = fmt.partition("+")
    if base not in FORMATS or extra not in ("", "zstd") or (extra and FORMATS[base] is None):
        raise ValueError(f"unknown unit format {fmt!r}")
    return FORMATS[base], extra == "zstd"


class PackError(ValueError):
    """Not a llama.cpp sequence file this module can re-encode, or a damaged compact file."""


def _qtype(name: str):
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType[name]


def block_bytes(type_name: str) -> tuple[int, int]:
    """(values per block, bytes per block) of a ggml type (gguf.GGML_QUANT_SIZES)."""
    from gguf import GGML_QUANT_SIZES

    return GGML_QUANT_SIZES[_qtype(type_name)]


def bytes_per_token(fmt: str, n_layer: int, k_embd: int, v_embd: int | None = None) -> int:
    """Disk bytes of one token's K and V in a unit file of format ``fmt`` before any
    zstd (KV only: the per-token position record, 16 B, and the file header come on top)."""
    v_embd = k_embd if v_embd is None else v_embd
    types = format_types(fmt)[0]
    if types is None:
        return n_layer * (k_embd + v_embd) * 2
    (kb, kB), (vb, vB) = block_bytes(types[0]), block_bytes(types[1])
    return n_layer * (k_embd // kb * kB + v_embd // vb * vB)


def size_ratio(fmt: str) -> float:
    """Unit KV bytes in ``fmt`` (before any zstd) per f16 byte, for K and V of equal width:
    k8v4 = (34/32 + 18/32) / 4 = 0.406 (23,040 -> 9,360 B/token for the default model)."""
    types = format_types(fmt)[0]
    if types is None:
        return 1.0
    (kb, kB), (vb, vB) = block_bytes(types[0]), block_bytes(types[1])
    return (kB / kb + vB / vb) / 4


def describe(fmt: str) -> str:
    """"K q8_0 + V q4_0 blocks, zstd" for "k8v4+zstd"; "f16" for "f16"."""
    types, zstd = format_types(fmt)
    if types is None:
        return "f16"
    kv = f"q{types[0][1:].lower()}" if types[0] == types[1] else f"K {types[0].lower()} + V {types[1].lower()}"
    return f"{kv} blocks{', zstd' if zstd else ''}"


# --------------------------------------------------------------- parsing
class SeqFile:
    """A parsed llama.cpp sequence file: verbatim byte runs and f16 K/V tensors, alternating.

    ``verbatim[0], tensors[0], verbatim[1], ..., tensors[n-1], verbatim[n]`` is the
    file; each tensor is (kind "k" or "v", (cells, embd) f16 array, transposed on
    disk). A model with two caches (gemma-3's sliding-window one besides the
    global one) has two sections, one after the other.
    """

    def __init__(self, verbatim: list[bytes], tensors: list[tuple[str, np.ndarray, bool]]) -> None:
        self.verbatim, self.tensors = verbatim, tensors

    def to_bytes(self) -> bytes:
        """The llama.cpp file these parts make."""
        parts = [self.verbatim[0]]
        for (_, arr, trans), after in zip(self.tensors, self.verbatim[1:]):
            parts += [np.ascontiguousarray(arr.T if trans else arr, "<f2").tobytes(), after]
        return b"".join(parts)


def parse(raw: bytes | memoryview) -> SeqFile:
    """Split a ``llama_state_seq_save_file`` file into its parts (layout in the module
    docstring). ``PackError`` unless it is f16 K and V sections ending where the file ends."""
    raw = memoryview(raw)
    verbatim: list[bytes] = []
    tensors: list[tuple[str, np.ndarray, bool]] = []
    mark = 0  # start of the current verbatim run

    def tensor(kind: str, arr: np.ndarray, trans: bool, start: int, end: int) -> None:
        nonlocal mark
        verbatim.append(bytes(raw[mark:start]))
        tensors.append((kind, arr, trans))
        mark = end

    def rows(kind: str, at: int, cells: int) -> int:
        """One layer's K (or untransposed V) rows at ``at``: type, row bytes, then the rows."""
        typ, row = struct.unpack_from("<iQ", raw, at)
        if typ != F16 or row % 64:
            raise PackError(f"{kind.upper()} type {typ}, row {row} B: only f16 rows of 32-value blocks are packed")
        at += 12
        arr = np.frombuffer(raw, "<f2", count=cells * row // 2, offset=at).reshape(cells, row // 2)
        tensor(kind, arr, False, at, at + cells * row)
        return at + cells * row

    try:
        magic, _version, n_tok = struct.unpack_from("<III", raw, 0)
        if magic != SEQ_MAGIC:
            raise PackError("not a llama.cpp sequence file")
        at = 12 + 4 * n_tok
        while at < len(raw):  # one section per KV cache of the model
            n_stream, cells = struct.unpack_from("<II", raw, at)
            at += 8
            if n_stream != 1 or cells == 0:
                raise PackError(f"{n_stream} streams, {cells} cells: not one sequence's unit")
            meta = np.frombuffer(raw, "<i4", count=3 * cells, offset=at).reshape(cells, 3)
            if np.all(meta[:, 1] == 1):  # one sequence id per cell: what a sequence's save writes
                at += 12 * cells
            else:
                for _ in range(cells):
                    (n_seq,) = struct.unpack_from("<I", raw, at + 4)
                    at += 8 + 4 * n_seq
            v_trans, n_layer = struct.unpack_from("<II", raw, at)
            at += 8
            for _ in range(n_layer):
                at = rows("k", at, cells)
            for _ in range(n_layer):
                if v_trans:
                    typ, el, embd = struct.unpack_from("<iII", raw, at)
                    if typ != F16 or el != 2 or embd % 32:
                        raise PackError(f"V type {typ}, {embd} values: only f16 rows of 32-value blocks are packed")
                    at += 12
                    arr = np.frombuffer(raw, "<f2", count=cells * embd, offset=at).reshape(embd, cells).T
                    tensor("v", arr, True, at, at + cells * embd * 2)
                    at += cells * embd * 2
                else:
                    at = rows("v", at, cells)
    except (struct.error, ValueError) as e:
        if isinstance(e, PackError):
            raise
        raise PackError(f"not a llama.cpp sequence file this engine knows ({e})") from e
    if at != len(raw) or not tensors:
        raise PackError("an unknown layout after the last layer")
    verbatim.append(bytes(raw[mark:]))
    return SeqFile(verbatim, tensors)


# ------------------------------------------------------- pack / unpack
_GGML: object = None  # libggml-base (ctypes), False when unavailable


def _ggml():
    """ggml's own row kernels from the pinned llama-cpp-python's libggml-base
    (quantize_row_<t>_ref, dequantize_row_<t>, ggml_fp16_to_fp32_row,
    ggml_fp32_to_fp16_row), or None. Bit-identical to gguf.quants
    (tests/test_kvpack.py) and ~5x faster on a unit's tensors."""
    global _GGML
    if _GGML is None:
        import ctypes
        import os

        try:
            import llama_cpp

            lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
            for name in ("ggml_fp16_to_fp32_row", "ggml_fp32_to_fp16_row"):
                f = getattr(lib, name)
                f.argtypes, f.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], None
            _GGML = lib
        except (OSError, AttributeError, ImportError):
            _GGML = False
    return _GGML or None


def _kernel(kind: str, type_name: str):
    """ggml's quantize_row_<t>_ref or dequantize_row_<t> (ctypes), or None."""
    import ctypes

    lib = _ggml()
    name = f"quantize_row_{type_name.lower()}_ref" if kind == "q" else f"dequantize_row_{type_name.lower()}"
    f = getattr(lib, name, None) if lib is not None else None
    if f is not None:
        f.argtypes, f.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], None
    return f


def quantize(rows: np.ndarray, type_name: str) -> np.ndarray:
    """(n, embd) f16 or f32 -> (n, embd / block * block_bytes) uint8 ggml blocks
    (ggml's quantize_row_<t>_ref; gguf.quants where ggml's library is not at hand)."""
    per, nb = block_bytes(type_name)
    f = _kernel("q", type_name)
    if f is None:
        from gguf import quants

        return quants.quantize(np.asarray(rows, np.float32), _qtype(type_name))
    n, embd = rows.shape
    if rows.dtype == np.float16:
        src = np.ascontiguousarray(rows)
        x = np.empty(rows.shape, np.float32)
        _ggml().ggml_fp16_to_fp32_row(src.ctypes.data, x.ctypes.data, src.size)
    else:
        x = np.ascontiguousarray(rows, np.float32)
    out = np.empty((n, embd // per * nb), np.uint8)
    f(x.ctypes.data, out.ctypes.data, x.size)
    return out


def dequantize(blocks: np.ndarray, type_name: str) -> np.ndarray:
    """(n, bytes) uint8 ggml blocks -> (n, embd) f16 (ggml's dequantize_row_<t> then
    ggml_fp32_to_fp16_row; gguf.quants where ggml's library is not at hand)."""
    per, nb = block_bytes(type_name)
    f = _kernel("d", type_name)
    if f is None:
        from gguf import quants

        return quants.dequantize(blocks, _qtype(type_name)).astype(np.float16)
    blocks = np.ascontiguousarray(blocks)
    n = blocks.shape[0]
    embd = blocks.shape[1] // nb * per
    y = np.empty((n, embd), np.float32)
    f(blocks.ctypes.data, y.ctypes.data, y.size)
    out = np.empty((n, embd), np.float16)
    _ggml().ggml_fp32_to_fp16_row(y.ctypes.data, out.ctypes.data, y.size)
    return out


def is_packed(data: bytes | memoryview) -> bool:
    return bytes(data[: len(MAGIC)]) == MAGIC


def pack(raw: bytes | memoryview, fmt: str) -> bytes:
    """The compact file of llama.cpp file ``raw`` in format ``fmt`` (a ``FORMATS`` key, not "f16")."""
    types, zstd = format_types(fmt)
    if types is None:
        raise ValueError("f16 units are llama.cpp's own files: nothing to pack")
    sf = parse(raw)
    specs, blobs = [], []
    for kind, arr, trans in sf.tensors:
        t = types[0] if kind == "k" else types[1]
        specs.append([kind, t, arr.shape[0], arr.shape[1], trans])
        blobs.append(quantize(arr, t).tobytes())
    body = b"".join([*sf.verbatim, *blobs])
    plain = len(body)
    if zstd:
        import zstandard

        body = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    header = json.dumps({"tensors": specs, "verbatim": [len(v) for v in sf.verbatim], "zstd": zstd,
                         "plain_bytes": plain, "body_bytes": len(body)}).encode()
    h = hashlib.blake2b(digest_size=DIGEST)
    out = MAGIC + struct.pack("<I", len(header)) + header
    h.update(out)
    h.update(body)
    return out + body + h.digest()


def unpack(data: bytes | memoryview) -> bytes:
    """The llama.cpp file a compact file holds (K and V back as f16). ``PackError`` when
    ``data`` is damaged (checksum, sizes) or not a compact file."""
    import io

    buf = io.BytesIO()
    unpack_to(data, buf.write)
    return buf.getvalue()


def unpack_to(data: bytes | memoryview, write) -> None:
    """``unpack``, handing the llama.cpp file to ``write`` piece by piece (one tensor at a
    time: no second copy of the whole f16 file in RAM). The checksum is checked before the
    first write; ``PackError`` as in ``unpack``."""
    data = memoryview(data)
    if not is_packed(data) or len(data) < len(MAGIC) + 4 + DIGEST:
        raise PackError("not a compact unit file")
    if hashlib.blake2b(data[:-DIGEST], digest_size=DIGEST).digest() != bytes(data[-DIGEST:]):
        raise PackError("the compact unit file fails its checksum")
    try:
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        at = len(MAGIC) + 4
        h = json.loads(bytes(data[at : at + hlen]))
        at += hlen
        specs, runs = h["tensors"], [int(n) for n in h["verbatim"]]
        if at + int(h["body_bytes"]) != len(data) - DIGEST or len(runs) != len(specs) + 1:
            raise PackError("the compact unit file's sizes disagree with its header")
        if h.get("zstd"):
            import zstandard

            try:
                data = memoryview(zstandard.ZstdDecompressor().decompress(
                    data[at : len(data) - DIGEST], max_output_size=int(h["plain_bytes"])))
            except zstandard.ZstdError as e:
                raise PackError(f"the compact unit file is damaged ({e})") from e
            at, end = 0, len(data)
        else:
            end = len(data) - DIGEST
        sizes = [int(c) * (int(e) // block_bytes(t)[0]) * block_bytes(t)[1] for _, t, c, e, _ in specs]
        if at + sum(runs) + sum(sizes) != end:
            raise PackError("the compact unit file's sizes disagree with its header")
        verbatim = []
        for n in runs:
            verbatim.append(data[at : at + n])
            at += n
        write(verbatim[0])
        for (_, type_name, cells, embd, trans), size, after in zip(specs, sizes, verbatim[1:]):
            # one tensor at a time: ~0.1 MB of floats besides the file, whatever the unit
            blocks = np.frombuffer(data, np.uint8, count=size, offset=at).reshape(cells, size // cells)
            rows = dequantize(blocks, type_name)
            write(np.ascontiguousarray(rows.T if trans else rows).tobytes())
            write(after)
            at += size
    except PackError:
        raise
    except (struct.error, ValueError, KeyError, TypeError, ImportError) as e:
        raise PackError(f"the compact unit file is damaged ({e})") from e
