"""Peak RSS vs document length, per mode.

``bookpot ingest DOC --json`` in a fresh process per run; the figure is the
kernel's high-water mark (VmHWM, stats.peak_rss_bytes). Bounded modes share
one budget (--pot-tokens 2048 under --ram-cap 512M); ``full`` is the whole
window (8,192 tokens for SmolLM2), so it runs only up to ~7.5K tokens and
documents beyond the window are recorded as not fitting (the engine refuses
them: "the document is longer than the model's window").

    .venv/bin/python bench/rss.py           # 16K..256K bounded, full 2K..7.5K
    .venv/bin/python bench/rss.py --quick   # full 2K/4K, pot 8K/16K/32K, full 7.5K

Writes bench/out/rss[-quick].json and bench/rss[-quick].svg|png.
"""
from __future__ import annotations

import argparse
import json
import time

from common import BENCH, OUT, doc, logger, machine, plot, run_cli, save

WINDOW = 8192
FULL = {"pot": [16384, 32768, 65536, 131072, 262144], "truncate": [16384, 32768, 65536, 131072, 262144],
        "streaming": [16384, 32768, 65536, 131072, 262144], "full": [2048, 4096, 7680, 16384]}
# Quick: the order the runs go in (most telling first, on a busy machine);
# truncate/streaming peak RSS at 16K come from the pass-key runs.
QUICK_ORDER = [("full", 2048), ("full", 4096), ("pot", 8192), ("pot", 16384), ("pot", 32768), ("full", 7680)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pot-tokens", type=int, default=2048)
    ap.add_argument("--ram-cap", default="512M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="keep the finished runs of the last JSON")
    ap.add_argument("--extra", default="", help="more mode:length pairs, e.g. pot:65536")
    a = ap.parse_args()
    ap_extra = [(m, int(n)) for m, n in (x.split(":") for x in filter(None, a.extra.split(",")))]
    if a.quick:
        order = [(n, m) for m, n in QUICK_ORDER + ap_extra]
    else:
        grid = {k: list(v) for k, v in FULL.items()}
        for m, n in ap_extra:
            grid.setdefault(m, []).append(n)
        # Interleave: shortest first, every mode at each length step.
        order = sorted(((n, m) for m, ns in grid.items() for n in ns), key=lambda x: (x[0], x[1]))
    tag = "-quick" if a.quick else ""
    log = logger(OUT / f"rss{tag}.log")
    out_json = OUT / f"rss{tag}.json"
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "order": [[m, n] for n, m in order], "pot_tokens": a.pot_tokens, "ram_cap": a.ram_cap, "runs": []}
    if a.resume and out_json.exists():  # keep finished runs, do the rest
        old = json.loads(out_json.read_text())
        data["runs"] = [r for r in old["runs"] if r.get("rc", 0) == 0]
        data["started"] = old["started"]
    done = {(r["mode"], r["length"]) for r in data["runs"]}
    for n, mode in order:
        if (mode, n) in done:
            continue
        run = {"mode": mode, "length": n}
        if mode == "full" and n > WINDOW:
            run.update(fits=False, note=f"longer than the {WINDOW}-token window: not run (full refuses it)")
        else:
            args = ["ingest", str(doc(n, 0.5, 22222)), "--mode", mode, "--threads", str(a.threads)]
            if mode != "full":
                args += ["--pot-tokens", str(a.pot_tokens), "--ram-cap", a.ram_cap]
            rec = run_cli(args, log)
            st = rec.get("result", {})
            run.update(fits=rec["rc"] == 0, peak_rss_bytes=st.get("peak_rss_bytes"),
                       doc_tokens=st.get("doc_tokens"), n_ctx=st.get("n_ctx"), engine_mode=st.get("mode"),
                       distillations=st.get("distillations"), evictions=st.get("evictions"),
                       ingest_tokens_per_s=st.get("ingest_tokens_per_s"), plan=st.get("plan"),
                       cmd=rec["cmd"], rc=rec["rc"], error=rec.get("error"))
        data["runs"].append(run)
        data["uptime_end"] = machine()["uptime"]
        save(out_json, data)
    series: dict[str, list] = {}
    for r in data["runs"]:
        if r.get("peak_rss_bytes"):
            series.setdefault(r["mode"], []).append((r["length"], r["peak_rss_bytes"] / 2**20))
    from plan_cap import parse_cap_mib

    img = plot(BENCH / f"rss{tag}", f"Peak RSS, bounded modes at {a.pot_tokens} tokens", "document tokens",
               "peak RSS (MiB)", series, ymin=0, hline=(parse_cap_mib(a.ram_cap), f"cap {a.ram_cap}"))
    log(f"wrote {out_json} and {img}")


if __name__ == "__main__":
    main()
