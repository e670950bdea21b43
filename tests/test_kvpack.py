"""Compact unit files (engine/kvpack.py), fast: no model.

The files here are built byte by byte in llama.cpp's sequence-file layout
(kvpack's docstring) with random f16 K and V, so every branch of the parser
is driven: V transposed or not, one cache or two (gemma-3's sliding-window
cache beside the global one). The quantized values must equal what
gguf.quants (the reference of ggml's block formats) makes of the same f16
values, and everything that is not a K or V value must come back byte for
byte. The real llama.cpp files are checked in test_units_compact.py.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
from gguf import GGMLQuantizationType, quants

from bookpot.engine import kvpack

CELLS, EMBD = 37, 192  # a unit that is not a multiple of the block size in cells


def section(rng, n_layer: int, v_trans: bool, cells: int = CELLS, embd: int = EMBD, first_pos: int = 100):
    """One KV cache's part of a sequence file: (bytes, K arrays, V arrays as (cells, embd))."""
    out = [struct.pack("<II", 1, cells)]
    for i in range(cells):
        out.append(struct.pack("<iIi", first_pos + i, 1, 1))
    out.append(struct.pack("<II", int(v_trans), n_layer))
    ks = [(rng.standard_normal((cells, embd)) * rng.uniform(0.1, 8)).astype(np.float16) for _ in range(n_layer)]
    vs = [(rng.standard_normal((cells, embd)) * rng.uniform(0.1, 3)).astype(np.float16) for _ in range(n_layer)]
    for k in ks:
        out += [struct.pack("<iQ", 1, embd * 2), k.tobytes()]
    for v in vs:
        if v_trans:
            out += [struct.pack("<iII", 1, 2, embd), np.ascontiguousarray(v.T).tobytes()]
        else:
            out += [struct.pack("<iQ", 1, embd * 2), v.tobytes()]
    return b"".join(out), ks, vs


def seq_file(rng, *, v_trans=True, n_layer=3, sections=1):
    tokens = np.arange(100, 100 + CELLS, dtype="<i4")
    parts = [struct.pack("<III", kvpack.SEQ_MAGIC, 3, CELLS), tokens.tobytes()]
    ks, vs = [], []
    for _ in range(sections):
        b, k, v = section(rng, n_layer, v_trans)
        parts.append(b)
        ks += k
        vs += v
    return b"".join(parts), ks, vs


def reference(x: np.ndarray, type_name: str) -> np.ndarray:
    t = GGMLQuantizationType[type_name]
    return quants.dequantize(quants.quantize(x.astype(np.float32), t), t).astype(np.float16)


@pytest.mark.parametrize("v_trans", [True, False])
@pytest.mark.parametrize("sections", [1, 2])
def test_parse_gives_back_the_file_exactly(v_trans, sections):
    raw, ks, vs = seq_file(np.random.default_rng(1), v_trans=v_trans, sections=sections)
    sf = kvpack.parse(raw)
    assert sf.to_bytes() == raw
    got_k = [a for kind, a, _ in sf.tensors if kind == "k"]
    got_v = [a for kind, a, _ in sf.tensors if kind == "v"]
    assert len(got_k) == len(ks) and all(np.array_equal(a, b) for a, b in zip(got_k, ks))
    assert all(np.array_equal(a, b) for a, b in zip(got_v, vs))


@pytest.mark.parametrize("fmt", ["q8_0", "k8v4", "k8v4+zstd", "q5_0+zstd", "q4_0"])
@pytest.mark.parametrize("v_trans", [True, False])
def test_pack_unpack_round_trip_is_ggml_quantization(fmt, v_trans):
    raw, ks, vs = seq_file(np.random.default_rng(2), v_trans=v_trans, sections=2)
    packed = kvpack.pack(raw, fmt)
    assert kvpack.is_packed(packed) and not kvpack.is_packed(raw)
    back = kvpack.unpack(packed)
    assert len(back) == len(raw)
    (kt, vt), _ = kvpack.format_types(fmt)
    sf, orig = kvpack.parse(back), kvpack.parse(raw)
    assert sf.verbatim == orig.verbatim  # header, positions, cell metadata, type records: untouched
    k_back = [a for kind, a, _ in sf.tensors if kind == "k"]
    v_back = [a for kind, a, _ in sf.tensors if kind == "v"]
    for a, k in zip(k_back, ks):
        np.testing.assert_array_equal(a, reference(k, kt))
    for a, v in zip(v_back, vs):
        np.testing.assert_array_equal(a, reference(v, vt))
    # the error is the block format's: q8_0 within half a step of 1/127 of each block's max
    if kt == "Q8_0":
        k = ks[0].astype(np.float32).reshape(CELLS, -1, 32)
        step = np.abs(k).max(axis=2, keepdims=True) / 127
        err = np.abs(k_back[0].astype(np.float32).reshape(CELLS, -1, 32) - k)
        assert np.all(err <= 0.5 * step + 1e-3 * np.abs(k) + 1e-6)


def test_sizes_per_token():
    # SmolLM2-135M: 30 layers, 3 KV heads x 64
    assert kvpack.bytes_per_token("f16", 30, 192) == 23040
    assert kvpack.bytes_per_token("q8_0", 30, 192) == 12240
    assert kvpack.bytes_per_token("k8v4", 30, 192) == 6120 + 3240
    assert kvpack.bytes_per_token("k8v4+zstd", 30, 192) == 9360  # before zstd
    raw, _, _ = seq_file(np.random.default_rng(3), n_layer=30)
    packed = kvpack.pack(raw, "k8v4")
    (hlen,) = struct.unpack_from("<I", packed, len(kvpack.MAGIC))
    # everything but K and V is kept as it was; K and V cost bytes_per_token per cell
    assert len(packed) - CELLS * 9360 == len(raw) - CELLS * 23040 + len(kvpack.MAGIC) + 4 + hlen + kvpack.DIGEST


def test_a_damaged_compact_file_is_refused():
    raw, _, _ = seq_file(np.random.default_rng(4))
    for fmt in ("k8v4", "k8v4+zstd"):
        packed = bytearray(kvpack.pack(raw, fmt))
        for at in (20, len(packed) // 2, len(packed) - 1):
            bad = bytearray(packed)
            bad[at] ^= 0x40
            with pytest.raises(kvpack.PackError):
                kvpack.unpack(bytes(bad))
        with pytest.raises(kvpack.PackError):
            kvpack.unpack(bytes(packed[:-100]))
    with pytest.raises(kvpack.PackError):
        kvpack.unpack(raw)  # a llama.cpp file is not a compact one


def test_files_it_cannot_pack_are_refused_not_misread():
    rng = np.random.default_rng(5)
    raw, _, _ = seq_file(rng)
    with pytest.raises(kvpack.PackError):
        kvpack.parse(raw + b"\0" * 8)  # trailing bytes: an unknown layout
    with pytest.raises(kvpack.PackError):
        kvpack.parse(raw[:-8])
    q8 = bytearray(raw)  # a cache already quantized by llama.cpp (type 8 = Q8_0): left alone
    first_k = raw.index(struct.pack("<iQ", 1, EMBD * 2))
    q8[first_k : first_k + 4] = struct.pack("<i", 8)
    with pytest.raises(kvpack.PackError):
        kvpack.parse(bytes(q8))
    with pytest.raises(kvpack.PackError):
        kvpack.parse(b"kv" * 10)
    with pytest.raises(ValueError):
        kvpack.format_types("q3_x")
    with pytest.raises(ValueError):
        kvpack.format_types("f16+zstd")
