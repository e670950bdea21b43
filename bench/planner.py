"""The RAM planner: for each --ram-cap, the plan (stats.plan) and the peak
RSS of one `bookpot ingest` of a pass-key document in pot mode.

    .venv/bin/python bench/planner.py           # 16K-token document
    .venv/bin/python bench/planner.py --quick   # 4K-token document for 300M/512M (1,536-token pots),
                                                # 9K for 1G (past its 7,680-token pot)

Writes bench/out/planner[-quick].json.
"""
from __future__ import annotations

import argparse
import time

from common import OUT, doc, logger, machine, run_cli, save
from plan_cap import parse_cap_mib

CAPS = ["300M", "512M", "1G"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    sizes = {"300M": 4096, "512M": 4096, "1G": 9216} if a.quick else dict.fromkeys(CAPS, 16384)
    tag = "-quick" if a.quick else ""
    log = logger(OUT / f"planner{tag}.log")
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "doc_tokens_target": sizes,
            "runs": []}
    for cap in CAPS:
        rec = run_cli(["ingest", str(doc(sizes[cap], 0.5, 33333)), "--mode", "pot", "--ram-cap", cap,
                       "--threads", str(a.threads)], log)
        st = rec.get("result", {})
        peak = st.get("peak_rss_bytes")
        data["runs"].append({"ram_cap": cap, "plan": st.get("plan"), "peak_rss_bytes": peak,
                             "peak_rss_mib": peak / 2**20 if peak else None,
                             "under_cap": peak / 2**20 <= parse_cap_mib(cap) if peak else None,
                             "doc_tokens": st.get("doc_tokens"), "distillations": st.get("distillations"),
                             "n_ctx": st.get("n_ctx"), "ingest_tokens_per_s": st.get("ingest_tokens_per_s"),
                             "cmd": rec["cmd"], "rc": rec["rc"], "error": rec.get("error")})
        data["uptime_end"] = machine()["uptime"]
        save(OUT / f"planner{tag}.json", data)


if __name__ == "__main__":
    main()
