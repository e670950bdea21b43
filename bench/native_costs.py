"""What the native tap costs, on the real default model (moved from tests/test_native.py,
where it asserted nothing).

Decode speed with cb_eval=NULL vs the unarmed tap, and the cost of scoring a
2K pot with the tap armed on all 30 layers. The two contexts run interleaved,
step by step, so that other load on the machine hits both alike. Prints three
lines; nothing is asserted.

    .venv/bin/python bench/native_costs.py
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_helpers import decode, load_model, make_ctx, tokenize  # noqa: E402
from llama_cpp import llama_cpp as llama  # noqa: E402

N_LAYER = 30
TEXT = (
    "Chapter one. The lighthouse keeper wrote in his log every evening. On the third day of "
    "the storm the supply boat did not come, and he counted what was left: eleven tins of "
    "beans, a sack of flour, two lamps and the oil for perhaps nine nights. "
)


def timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


@llama.llama_log_callback
def _quiet(level, text, user_data):  # llama.cpp's loader chatter is not what this measures
    pass


def main() -> None:
    llama.llama_log_set(_quiet, None)
    model = load_model()
    try:
        run(model)
    finally:
        llama.llama_model_free(model)


def run(model) -> None:
    from bookpot.native.kernels import Tap

    toks = tokenize(model, TEXT * 60)
    cat = tokenize(model, " Summarize the previous context highlighting the most important parts.")
    n_pot, n_gen = 2048 - 64, 48
    tap = Tap()
    ctxs = {k: make_ctx(model, n_ctx=2048, n_ubatch=512, n_seq_max=2, tap=t)
            for k, t in (("cb_eval=NULL", None), ("unarmed tap", tap))}

    try:
        prefill = dict.fromkeys(ctxs, 0.0)
        for i in range(0, n_pot - n_gen, 512):
            for k, c in ctxs.items():
                prefill[k] += timed(lambda: decode(c, toks[i : min(i + 512, n_pot - n_gen)], i))
        gen = {k: [] for k in ctxs}
        for i in range(n_pot - n_gen, n_pot):
            for k, c in ctxs.items():
                gen[k].append(timed(lambda: decode(c, toks[i : i + 1], i)))
        passes = {"no callback": [], "unarmed": [], "armed, 30 layers": []}
        for _ in range(5):
            for k in passes:
                c = ctxs["cb_eval=NULL" if k == "no callback" else "unarmed tap"]
                out = np.zeros(2048, dtype=np.float32)

                def go():
                    if k.startswith("armed"):
                        tap.arm(out, range(N_LAYER), len(cat))
                    decode(c, cat, n_pot)
                    if k.startswith("armed"):
                        tap.disarm()

                passes[k].append(timed(go))
                llama.llama_memory_seq_rm(llama.llama_get_memory(c), 0, n_pot, -1)
    finally:
        for c in ctxs.values():
            llama.llama_free(c)
    print("prefill tok/s: " + ", ".join(f"{k} {(n_pot - n_gen) / v:.0f}" for k, v in prefill.items()))
    print("1-token decode tok/s (median): " + ", ".join(f"{k} {1 / np.median(v):.1f}" for k, v in gen.items()))
    print(f"catalyst pass ({len(cat)} tokens) over a {n_pot}-token pot, median ms: "
          + ", ".join(f"{k} {np.median(v) * 1e3:.1f}" for k, v in passes.items()))


if __name__ == "__main__":
    main()
