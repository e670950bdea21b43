"""Compact units against f16 units: the first answer token's logits on pass-key passages.

For each key, a ~700-token pass-key passage is decoded, cut into 128-token
units (engine/units.py) written once in f16 (llama.cpp's own files) and
once per compact format, and each set is placed after the first 4 tokens
and followed by the question, as a session does. Printed per format: the
largest and RMS change of the first answer token's logits, KL(f16 || format)
of its distribution, whether the top token and the 6-token greedy answer
match, and the unit bytes per token.

    .venv/bin/python bench/unit_logits.py q8_0,k8v5+zstd,k8v4+zstd,q5_0+zstd,k5v4+zstd,q4_0+zstd
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from passkey import QUESTION, passkey_text  # noqa: E402

from bookpot.engine.llm import Context, Model  # noqa: E402
from bookpot.engine.units import UnitConfig, UnitStore  # noqa: E402
from bookpot.models import DEFAULT_MODEL, resolve  # noqa: E402


def run(m, ctx, fmt: str, key: int, root: str):
    ctx.clear()
    toks = m.tokenize(passkey_text(700, 0.5, key), add_bos=True)
    ctx.decode(toks, 0, logits="none")
    st = UnitStore(Path(root), m, UnitConfig(kv_format=fmt))
    n = len(toks)
    st.add_chunk(ctx, 0, toks, 0, np.ones(n, np.float32), np.zeros((len(st.layers), n, st.kv_dim), np.float16),
                 skip=4)
    st.commit()
    ctx.clear()
    ctx.decode(toks[:4], 0, logits="none")
    pos = 4
    for u in st.units:
        assert st.place(ctx, u.uid, pos) == "disk"
        pos += u.n
    q = m.tokenize(" " + QUESTION)
    ctx.decode(q, pos)
    pos += len(q)
    first = np.array(ctx.logits_ith(-1), np.float64)
    out = []
    for _ in range(6):
        t = int(np.argmax(ctx.logits_ith(-1)))
        out.append(t)
        ctx.decode([t], pos)
        pos += 1
    return first, m.detokenize(out), st.kv_bytes / sum(u.n for u in st.units)


def softmax(x):
    p = np.exp(x - x.max())
    return p / p.sum()


def main() -> None:
    fmts = sys.argv[1].split(",") if len(sys.argv) > 1 else ["k8v4+zstd"]
    m = Model(resolve(DEFAULT_MODEL))
    ctx = Context(m, n_ctx=2048, n_batch=512, n_threads=1, n_seq_max=2)
    for key in (51841, 20731, 88410):
        ref, ans, bpt = run(m, ctx, "f16", key, tempfile.mkdtemp())
        print(key, "f16", repr(ans), int(bpt))
        p = softmax(ref)
        for f in fmts:
            lg, a, bpt = run(m, ctx, f, key, tempfile.mkdtemp())
            q = softmax(lg)
            kl = float((p * (np.log(p + 1e-30) - np.log(q + 1e-30))).sum())
            print(f"  {f:12s} maxabs {np.abs(lg - ref).max():.3f} rms {np.sqrt(((lg - ref) ** 2).mean()):.3f} "
                  f"KL {kl:.5f} top1 {int(lg.argmax()) == int(ref.argmax())} {a!r} {bpt:.0f} B/tok")


if __name__ == "__main__":
    main()
