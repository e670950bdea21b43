"""Soak: a 1M-token book read with the default settings under ``--ram-cap 1G``.

One ``bookpot ingest DOC --ram-cap 1G`` process (memory units on, cache on:
what a user gets) reads a book of ``--tokens`` standard filler with 8
labelled pass keys spread through it (bench/units.py's document, in
paragraphs). Every ``--every`` seconds the script samples the process's
VmRSS and VmHWM from /proc and the tokens read so far (the book cache's
manifest, written at each 30 s checkpoint). Then, from the cache, it asks
the 8 labelled questions: a book this long is still answered.

Because the document streams, the high-water mark when the reader is at
token N is the peak of a book N tokens long: one run gives peak RSS against
length from the first checkpoint to 1M.

    .venv/bin/python bench/soak.py                       # 1M tokens, core 1, 1 thread
    .venv/bin/python bench/soak.py --tokens 65536 --every 2

    .venv/bin/python bench/soak.py --replot              # the plots again, from the JSON

Writes bench/out/soak-<tokens>.json, bench/soak-<tokens>.png (RSS against
time) and bench/soak-<tokens>-tokens.png (high-water mark against tokens).
The cache (units: ~23 MB per 1K tokens) goes to --cache-dir, default
/work/bench-cache/soak-<tokens> (outside the repository), kept for reuse.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import BOOKPOT, BENCH, DOCS, OUT, logger, machine, plot, run_cli, sampled_run, save
from units import LABELS, needle_doc, question

MIB = 1 << 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=1 << 20)
    ap.add_argument("--ram-cap", default="1G")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu", default="1", help="taskset CPU list ('' for none)")
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--tag", default="", help="suffix for the output files")
    ap.add_argument("--replot", action="store_true", help="only draw the plots again from the JSON")
    ap.add_argument("extra", nargs="*", help="more ingest options (after --)")
    a = ap.parse_args()
    if a.replot:
        return draw(json.loads((OUT / f"soak-{a.tokens}{a.tag}.json").read_text()), a.tag)

    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"soak_{a.tokens}.txt"
    text, keys = needle_doc(a.tokens)
    if not path.exists():
        words = text.split(". ")
        paras = [". ".join(words[i:i + 60]) for i in range(0, len(words), 60)]
        path.write_text(".\n\n".join(paras) + "\n")
    cache = Path(a.cache_dir or f"/work/bench-cache/soak-{a.tokens}")
    cache.mkdir(parents=True, exist_ok=True)
    log = logger(OUT / f"soak-{a.tokens}{a.tag}.log")
    out_json = OUT / f"soak-{a.tokens}{a.tag}.json"
    cmd = [BOOKPOT, "ingest", str(path), "--ram-cap", a.ram_cap, "--threads", str(a.threads), "--json", "-q", *a.extra]
    if a.cpu:
        cmd = ["taskset", "-c", a.cpu, *cmd]
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cmd": " ".join(cmd),
            "tokens": a.tokens, "ram_cap": a.ram_cap}
    log(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd)}")
    last = [0.0]

    def every_minute(rec):
        if time.monotonic() - last[0] > 60:
            save(out_json, dict(data, **rec))
            last[0] = time.monotonic()
            x = rec["samples"][-1]
            log(f"[{time.strftime('%H:%M:%S')}] {x['tokens']} tokens, rss {x['rss'] / MIB:.0f} MiB,"
                f" hwm {x['hwm'] / MIB:.0f} MiB")

    data.update(sampled_run(cmd, cache, every=a.every, on_sample=every_minute))
    log(f"[{time.strftime('%H:%M:%S')}] ingest rc={data['rc']} {data['wall_s']:.0f}s {data.get('error', '')}")
    save(out_json, data)
    if data["rc"] == 0:
        os.environ["BOOKPOT_CACHE_DIR"] = str(cache)
        data["answers"] = []
        for label in LABELS:
            r = run_cli(["ask", str(path), question(label), "--ram-cap", a.ram_cap, "--threads", str(a.threads),
                         "--max-tokens", "8"], log)
            ans = r.get("result", {}).get("answer", "")
            data["answers"].append({"label": label, "key": keys[label], "answer": ans,
                                    "right": str(keys[label]) in ans, "rc": r["rc"], "wall_s": r["wall_s"],
                                    "peak_rss_bytes": r.get("result", {}).get("stats", {}).get("peak_rss_bytes")})
        save(out_json, data)
    draw(data, a.tag)


def draw(data: dict, tag: str = "") -> None:
    """RSS and the high-water mark against time, and the high-water mark against tokens read."""
    sm, n, cap = data["samples"], data["tokens"], data["ram_cap"]
    if not sm:
        return
    plot(BENCH / f"soak-{n}{tag}", f"Soak: {n:,} tokens, --ram-cap {cap}", "seconds", "MiB",
         {"VmRSS": [(x["t"], x["rss"] / MIB) for x in sm], "VmHWM": [(x["t"], x["hwm"] / MIB) for x in sm],
          "anonymous": [(x["t"], x["anon"] / MIB) for x in sm]},
         xlog2=False, hline=(_cap_mib(cap), "cap"))
    plot(BENCH / f"soak-{n}{tag}-tokens", f"Soak: high-water mark against tokens read, --ram-cap {cap}",
         "tokens read", "MiB", {"VmHWM": [(x["tokens"], x["hwm"] / MIB) for x in sm if x["tokens"]]},
         xlog2=False, hline=(_cap_mib(cap), "cap"))

def _cap_mib(cap: str) -> float:
    n = float(cap[:-1])
    return n * {"G": 1024, "M": 1}[cap[-1].upper()]


if __name__ == "__main__":
    main()
