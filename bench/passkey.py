"""Pass-key accuracy per mode and length, beside the model's own ceiling.

Bounded modes (pot, truncate, streaming; all with the same --pot-tokens
budget) read pass-key documents of 16K..128K tokens with the key at >= 10
depths; the ceiling is the same depths in ~6K-token documents that fit the
window, run with --mode full. Runs are interleaved depth by depth so a noisy
machine hits every method alike.

    .venv/bin/python bench/passkey.py            # full grid (hours)
    .venv/bin/python bench/passkey.py --quick    # 16K, 3 depths

Writes bench/out/passkey[-quick].json and bench/passkey[-quick].svg|png.
"""
from __future__ import annotations

import argparse
import time

from common import BENCH, OUT, QUESTION, doc, keys, logger, machine, plot, run_cli, save

FULL_LENGTHS = [16384, 32768, 65536, 131072]
FULL_DEPTHS = [i / 10 for i in range(11)]
QUICK_LENGTHS = [16384]
QUICK_DEPTHS = [0.1, 0.5, 0.9]
CEILING_TOKENS = 6144
MODES = ["pot", "truncate", "streaming"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the reduced grid (16K, 3 depths)")
    ap.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--depths", type=lambda s: [float(x) for x in s.split(",")], default=None)
    ap.add_argument("--modes", type=lambda s: s.split(","), default=MODES)
    ap.add_argument("--pot-tokens", type=int, default=2048)
    ap.add_argument("--ram-cap", default="512M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ceiling", action="store_true")
    a = ap.parse_args()
    lengths = a.lengths or (QUICK_LENGTHS if a.quick else FULL_LENGTHS)
    depths = a.depths or (QUICK_DEPTHS if a.quick else FULL_DEPTHS)
    tag = "-quick" if a.quick else ""
    out_json = OUT / f"passkey{tag}.json"
    log = logger(OUT / f"passkey{tag}.log")
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "lengths": lengths, "depths": depths, "modes": a.modes, "pot_tokens": a.pot_tokens,
            "ram_cap": a.ram_cap, "ceiling_tokens": CEILING_TOKENS, "runs": []}
    common = ["--threads", str(a.threads), "--max-tokens", "16"]
    bounded = ["--pot-tokens", str(a.pot_tokens), "--ram-cap", a.ram_cap]
    for depth, key in zip(depths, keys(len(depths))):
        plan = [] if a.no_ceiling else [("full", CEILING_TOKENS)]
        plan += [(m, n) for n in lengths for m in a.modes]
        for mode, n in plan:
            path = doc(n, depth, key)
            args = ["ask", str(path), QUESTION, "--mode", mode, *common]
            if mode != "full":
                args += bounded
            rec = run_cli(args, log)
            ans = rec.get("result", {}).get("answer", "")
            st = rec.get("result", {}).get("stats", {})
            run = {"mode": mode, "length": n, "depth": depth, "key": key, "ok": str(key) in ans,
                   "answer": ans, "doc_tokens": st.get("doc_tokens"), "kept_tokens": st.get("kept_tokens"),
                   "distillations": st.get("distillations"), "evictions": st.get("evictions"),
                   "peak_rss_bytes": st.get("peak_rss_bytes"), "ingest_tokens_per_s": st.get("ingest_tokens_per_s"),
                   "engine_mode": st.get("mode"), "max_position": st.get("max_position"),
                   "n_ctx": st.get("n_ctx"), **{k: rec[k] for k in ("cmd", "rc", "wall_s", "load_before", "load_after")}}
            if "error" in rec:
                run["error"] = rec["error"]
            data["runs"].append(run)
            data["summary"] = summarize(data)
            data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            data["uptime_end"] = machine()["uptime"]
            save(out_json, data)
    s = data["summary"]
    log(f"summary: {s}")
    series = {}
    for key_, acc in s["accuracy"].items():
        mode, n = key_.split("@")
        if mode != "full":
            series.setdefault(mode, []).append((int(n), acc["acc"]))
    ceil = s.get("ceiling")
    img = plot(BENCH / f"passkey{tag}", f"Pass-key accuracy, pot {a.pot_tokens} tokens", "document tokens",
               "accuracy", series, ymax=1.0,
               hline=(ceil, f"ceiling {CEILING_TOKENS // 1024}K full") if ceil is not None else None)
    log(f"wrote {out_json} and {img}")


def summarize(data: dict) -> dict:
    acc: dict[str, dict] = {}
    for r in data["runs"]:
        k = f"{r['mode']}@{r['length']}"
        e = acc.setdefault(k, {"ok": 0, "n": 0, "depths_ok": [], "depths_missed": []})
        e["n"] += 1
        e["ok"] += r["ok"]
        (e["depths_ok"] if r["ok"] else e["depths_missed"]).append(r["depth"])
    for e in acc.values():
        e["acc"] = e["ok"] / e["n"]
    ceil = acc.get(f"full@{CEILING_TOKENS}", {}).get("acc")
    out = {"accuracy": acc, "ceiling": ceil}
    if ceil:
        out["pot_over_ceiling"] = {k: v["acc"] / ceil for k, v in acc.items() if k.startswith("pot@")}
    return out


if __name__ == "__main__":
    main()
