"""Pass-key accuracy per mode and length, beside the model's own ceiling.

Bounded modes (pot, truncate, streaming; all with the same --pot-tokens
budget, memory units off, nothing cached) read pass-key documents of
16K..128K tokens with the key at 10 depths from 0 to 100%; the ceiling is
the same depths and keys in ~6K-token documents that fit the window, run
with --mode full. Accuracy is deterministic (greedy decoding), so cells run
in any order: shortest documents first, so a partial run has whole lengths.
Resumable: cells already in the JSON are not run again. ``--workers 2``
runs two cells at once, each pinned to its own core with one thread.

    .venv/bin/python bench/passkey.py --workers 2 --threads 1   # full grid (many hours)
    .venv/bin/python bench/passkey.py --quick                   # 16K, 3 depths
    .venv/bin/python bench/passkey.py --lengths 16384,32768 --modes pot,truncate

Cost: pot and streaming read every token (~100 tok/s per core here:
about 7.5 core-hours each for the whole grid); truncate with units off
prefills only its last window.

Writes bench/out/passkey[-quick].json and bench/passkey[-quick].png|svg.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import BENCH, OUT, QUESTION, doc, keys, logger, machine, plot, run_cli, save

FULL_LENGTHS = [16384, 32768, 65536, 131072]
FULL_DEPTHS = [round(i / 9, 3) for i in range(10)]
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
    ap.add_argument("--workers", type=int, default=1, help="cells at once, worker i pinned to core i")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--tag", default=None, help="output name suffix (default: -quick or none)")
    a = ap.parse_args()
    lengths = a.lengths or (QUICK_LENGTHS if a.quick else FULL_LENGTHS)
    depths = a.depths or (QUICK_DEPTHS if a.quick else FULL_DEPTHS)
    tag = a.tag if a.tag is not None else ("-quick" if a.quick else "")
    out_json = OUT / f"passkey{tag}.json"
    log = logger(OUT / f"passkey{tag}.log")
    data = {"runs": []}
    if out_json.exists():  # resume: keep what was measured with the same settings
        old = json.loads(out_json.read_text())
        if (old.get("units"), old.get("pot_tokens"), old.get("ram_cap")) == ("off", a.pot_tokens, a.ram_cap):
            data = old
        else:
            out_json.replace(out_json.with_suffix(".old.json"))
    data.update({"machine": machine(), "lengths": sorted(set(data.get("lengths", [])) | set(lengths)),
                 "depths": depths, "modes": a.modes, "pot_tokens": a.pot_tokens, "ram_cap": a.ram_cap,
                 "ceiling_tokens": CEILING_TOKENS, "units": "off", "cache": "off"})
    data.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
    done = {(r["mode"], r["length"], r["depth"]) for r in data["runs"] if r["rc"] == 0}
    data["runs"] = [r for r in data["runs"] if r["rc"] == 0]
    common = ["--threads", str(a.threads), "--max-tokens", "16", "--no-units", "--no-cache"]
    bounded = ["--pot-tokens", str(a.pot_tokens), "--ram-cap", a.ram_cap]
    key_of = dict(zip(depths, keys(len(depths))))
    cells = [] if a.no_ceiling else [("full", CEILING_TOKENS, d) for d in depths]
    cells += [(m, n, d) for n in sorted(lengths) for d in depths for m in a.modes]
    todo = [c for c in cells if c not in done]
    log(f"[{time.strftime('%H:%M:%S')}] {len(todo)} cells to run, {len(cells) - len(todo)} already measured")
    lock = threading.Lock()
    free = list(range(a.workers))

    def run_cell(cell):
        mode, n, depth = cell
        key = key_of[depth]
        path = doc(n, depth, key)
        args = ["ask", str(path), QUESTION, "--mode", mode, *common]
        if mode != "full":
            args += bounded
        with lock:
            core = free.pop()
        try:
            rec = run_cli(args, log, cpu=str(core) if a.workers > 1 else None)
        finally:
            with lock:
                free.append(core)
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
        with lock:
            data["runs"].append(run)
            data["summary"] = summarize(data)
            data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            data["uptime_end"] = machine()["uptime"]
            save(out_json, data)
        log(f"[{time.strftime('%H:%M:%S')}] {mode} {n} depth {depth}: {'ok' if run['ok'] else 'missed'} "
            f"({ans.strip()[:30]!r}, {rec['wall_s']:.0f} s)")

    with ThreadPoolExecutor(max(1, a.workers)) as pool:
        list(pool.map(run_cell, todo))
    data["summary"] = summarize(data)
    save(out_json, data)
    s = data["summary"]
    log(f"summary: {json.dumps(s)}")
    series = {}
    for key_, acc in s["accuracy"].items():
        mode, n = key_.split("@")
        if mode != "full":
            series.setdefault(mode, []).append((int(n), acc["acc"]))
    ceil = s.get("ceiling")
    img = plot(BENCH / f"passkey{tag}", f"Pass-key accuracy, pot {a.pot_tokens} tokens, units off",
               "document tokens", "accuracy", series, ymax=1.05,
               hline=(ceil, f"ceiling ({CEILING_TOKENS // 1024}K, full)") if ceil is not None else None)
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
