"""What summarizing costs over reading: ``summarize`` against ``ingest``.

For each length a Markdown book of topic chapters (tests/topicbook.py, ~4K
tokens per chapter, the four topics in turn with fresh sentences) is
read once with ``bookpot ingest`` and once with ``bookpot summarize
--fresh`` (a new cache directory, so nothing is reused), same RAM cap and
threads. Recorded per run: wall time, prefill tokens/s, summary tokens and
generation time, distillations and peak RSS; per length the ratio of the
two wall times (the price of the summaries) and of the peak RSS (should
be ~1: summarizing needs no memory beyond the pot's reserve).

    .venv/bin/python bench/summarize.py              # 16K, 64K, 256K tokens
    .venv/bin/python bench/summarize.py --quick      # 16K
    .venv/bin/python bench/summarize.py --lengths 4096
    .venv/bin/python bench/summarize.py --lengths 262144 --parallel --threads 1
        # both at once, ingest on core 0 and summarize on core 1
    .venv/bin/python bench/summarize.py --lengths 65536,262144 --cpu 0 --threads 1
        # one after the other, both on core 0

Both start from an empty cache directory of their own (nothing reused).

Writes bench/out/summarize[-quick|-<lengths>].json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
sys.path.insert(0, str(BENCH.parent / "tests"))

from common import logger, run_cli as run  # noqa: E402  (run_cli adds --json -q)
from topicbook import TOPIC_WORDS, chapter_text  # noqa: E402

CHAPTER_TOKENS = 4096


def book(n_tokens: int) -> Path:
    """A Markdown book of about ``n_tokens`` tokens (cached by length)."""
    path = OUT / "docs" / f"topics_{n_tokens}.md"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        titles = list(TOPIC_WORDS)
        n = max(1, round(n_tokens / CHAPTER_TOKENS))
        size = n_tokens // n
        parts = [f"# {i + 1}. {titles[i % 4]}\n\n{chapter_text(titles[i % 4], size, seed=i)}\n\n"
                 for i in range(n)]
        path.write_text("".join(parts))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="16K tokens only")
    ap.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ram-cap", default="512M")
    ap.add_argument("--parallel", action="store_true",
                    help="run the pair at once, each pinned to its own core (taskset -c 0 / -c 1)")
    ap.add_argument("--cpu", default=None, help="without --parallel: pin both runs, one after the other, to this core")
    a = ap.parse_args()
    lengths = a.lengths or ([16384] if a.quick else [16384, 65536, 262144])
    tag = "-quick" if a.quick else ("-" + "-".join(map(str, a.lengths)) if a.lengths else "")
    OUT.mkdir(parents=True, exist_ok=True)
    log = logger(OUT / f"summarize{tag}.log")

    common = ["--ram-cap", a.ram_cap, "--threads", str(a.threads)]
    data = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "ram_cap": a.ram_cap, "threads": a.threads,
            "parallel": a.parallel,
            "loadavg": open("/proc/loadavg").read().split()[:3], "runs": []}
    for n in lengths:
        doc = book(n)
        with tempfile.TemporaryDirectory() as c1, tempfile.TemporaryDirectory() as c2:
            jobs = [["ingest", str(doc), "--cache-dir", c1, *common],
                    ["summarize", str(doc), "--format", "json", "--fresh", "--cache-dir", c2, *common]]
            if a.parallel:
                with ThreadPoolExecutor(2) as pool:
                    ing, summ = pool.map(lambda jc: run(jc[0], log, cpu=jc[1]), zip(jobs, ["0", "1"]))
            else:
                ing, summ = (run(j, log, cpu=a.cpu) for j in jobs)
        i, s = ing.get("result", {}), summ.get("result", {}).get("stats", {})
        row = {
            "length": n, "doc_tokens": i.get("doc_tokens"),
            "ingest_wall_s": ing["wall_s"], "summarize_wall_s": summ["wall_s"],
            "ingest_tokens_per_s": i.get("ingest_tokens_per_s"),
            "summarize_ingest_tokens_per_s": s.get("ingest_tokens_per_s"),
            "summary_tokens": s.get("summary_tokens"), "generation_s": s.get("generation_s"),
            "sections": s.get("sections"), "distillations": (i.get("distillations"), s.get("distillations")),
            "ingest_peak_rss_bytes": i.get("peak_rss_bytes"), "summarize_peak_rss_bytes": s.get("peak_rss_bytes"),
            "errors": [r.get("error") for r in (ing, summ) if r["rc"] != 0],
        }
        if ing["rc"] == 0 and summ["rc"] == 0:
            row["wall_ratio"] = round(summ["wall_s"] / ing["wall_s"], 2)
            row["rss_ratio"] = round(s["peak_rss_bytes"] / i["peak_rss_bytes"], 3)
        data["runs"].append(row)
        data["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        tmp = OUT / f"summarize{tag}.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(OUT / f"summarize{tag}.json")
        log(json.dumps(row))


if __name__ == "__main__":
    main()
