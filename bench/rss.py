"""Peak RSS against document length, per mode.

The figure is the kernel's high-water mark (VmHWM). Bounded modes share one
budget (--pot-tokens 2048 under --ram-cap 512M, memory units off):

- ``pot`` and ``streaming`` read every token, so each reads one
  262,144-token pass-key document once while its VmHWM is sampled against
  the tokens read (``common.sampled_run``): the high-water mark at token N
  is the peak of a book N tokens long, so one run gives every length from
  16K to 256K;
- ``truncate`` (units off: only the last window is prefilled) is a fresh
  ``ingest`` per length;
- ``full`` is the whole window (8,192 tokens for SmolLM2): 2K, 4K and 7.5K,
  and 16K recorded with the engine's refusal ("longer than the model's
  window").

    .venv/bin/python bench/rss.py --workers 2 --threads 1   # ~45 min per core here
    .venv/bin/python bench/rss.py --quick                   # the same up to 32K

Writes bench/out/rss[-quick].json and bench/rss[-quick].png|svg.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BENCH, BOOKPOT, OUT, doc, logger, machine, plot, run_cli, sampled_run, save

LENGTHS = [16384, 32768, 65536, 131072, 262144]
FULL_LENGTHS = [2048, 4096, 7680, 16384]
MIB = 1 << 20


def hwm_at(samples: list[dict], n: int) -> int | None:
    """The high-water mark when the reader had got at least ``n`` tokens in."""
    for x in samples:
        if x["tokens"] >= n:
            return x["hwm"]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="up to 32K tokens")
    ap.add_argument("--pot-tokens", type=int, default=2048)
    ap.add_argument("--ram-cap", default="512M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="runs at once, worker i pinned to core i")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="bounded lengths (a smoke run); the longest is the sampled document")
    ap.add_argument("--full-lengths", type=lambda s: [int(x) for x in s.split(",")], default=FULL_LENGTHS)
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    lengths = a.lengths or ([n for n in LENGTHS if n <= 32768] if a.quick else LENGTHS)
    tag = a.tag if a.tag is not None else ("-quick" if a.quick else "")
    log = logger(OUT / f"rss{tag}.log")
    out_json = OUT / f"rss{tag}.json"
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "lengths": lengths,
            "pot_tokens": a.pot_tokens, "ram_cap": a.ram_cap, "units": "off", "sampled": {}, "runs": []}
    bounded = ["--pot-tokens", str(a.pot_tokens), "--ram-cap", a.ram_cap, "--no-units", "--threads", str(a.threads)]
    lock = threading.Lock()
    free = list(range(a.workers))

    def pinned(fn):
        with lock:
            core = free.pop()
        try:
            return fn(str(core) if a.workers > 1 else None)
        finally:
            with lock:
                free.append(core)

    def sampled(mode: str) -> None:
        path = doc(lengths[-1], 0.5, 22222)

        def go(cpu):
            cmd = [BOOKPOT, "ingest", str(path), "--mode", mode, *bounded, "--json", "-q"]
            if cpu is not None:
                cmd = ["taskset", "-c", cpu, *cmd]
            log(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd)}")
            with tempfile.TemporaryDirectory(prefix="bookpot-rss-") as cache:
                return sampled_run(cmd, Path(cache), every=a.every)

        rec = pinned(go)
        st = rec.get("result", {})
        points = [[n, hwm_at(rec["samples"], n)] for n in lengths[:-1]]
        points.append([lengths[-1], st.get("peak_rss_bytes")])
        with lock:
            data["sampled"][mode] = {"points": points, "doc_tokens": st.get("doc_tokens"),
                                     "ingest_tokens_per_s": st.get("ingest_tokens_per_s"),
                                     "distillations": st.get("distillations"), "evictions": st.get("evictions"),
                                     "plan": st.get("plan"), **{k: rec.get(k) for k in ("cmd", "rc", "wall_s", "error")},
                                     "samples": rec["samples"]}
            save(out_json, data)
        log(f"[{time.strftime('%H:%M:%S')}] {mode}: " + ", ".join(
            f"{n // 1024}K {h / MIB:.1f} MiB" if h else f"{n // 1024}K -" for n, h in points))

    def single(mode: str, n: int) -> None:
        args = ["ingest", str(doc(n, 0.5, 22222)), "--mode", mode, "--no-cache"]
        args += bounded if mode != "full" else ["--threads", str(a.threads)]
        rec = pinned(lambda cpu: run_cli(args, log, cpu=cpu))
        st = rec.get("result", {})
        run = {"mode": mode, "length": n, "fits": rec["rc"] == 0, "peak_rss_bytes": st.get("peak_rss_bytes"),
               "doc_tokens": st.get("doc_tokens"), "n_ctx": st.get("n_ctx"), "engine_mode": st.get("mode"),
               "evictions": st.get("evictions"), "ingest_tokens_per_s": st.get("ingest_tokens_per_s"),
               "plan": st.get("plan"), "cmd": rec["cmd"], "rc": rec["rc"], "error": rec.get("error")}
        with lock:
            data["runs"].append(run)
            save(out_json, data)
        log(f"[{time.strftime('%H:%M:%S')}] {mode} {n}: "
            + (f"{run['peak_rss_bytes'] / MIB:.1f} MiB" if run["fits"] else f"refused: {run['error']}"))

    jobs = [lambda: sampled("pot"), lambda: sampled("streaming")]
    jobs += [lambda n=n: single("truncate", n) for n in lengths]
    jobs += [lambda n=n: single("full", n) for n in a.full_lengths]
    with ThreadPoolExecutor(max(1, a.workers)) as pool:
        for f in [pool.submit(j) for j in jobs]:
            f.result()
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    data["uptime_end"] = machine()["uptime"]
    save(out_json, data)

    series: dict[str, list] = {}
    for mode, s in data["sampled"].items():
        series[mode] = [(n, h / MIB) for n, h in s["points"] if h]
    for r in data["runs"]:
        if r.get("peak_rss_bytes"):
            series.setdefault(r["mode"], []).append((r["length"], r["peak_rss_bytes"] / MIB))
    from plan_cap import parse_cap_mib

    img = plot(BENCH / f"rss{tag}", f"Peak RSS, bounded modes at {a.pot_tokens} tokens, units off",
               "document tokens", "peak RSS (MiB)", series, ymin=0,
               hline=(parse_cap_mib(a.ram_cap), f"cap {a.ram_cap}"))
    log(f"wrote {out_json} and {img}")


if __name__ == "__main__":
    main()
