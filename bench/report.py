"""Print the markdown tables of bench/RESULTS.md from bench/out/*.json.

    .venv/bin/python bench/report.py [--quick]
"""
from __future__ import annotations

import json
import sys

from common import OUT

MiB = 2**20


def load(name):
    p = OUT / name
    return json.loads(p.read_text()) if p.exists() else None


def main() -> None:
    tag = "-quick" if "--quick" in sys.argv else ""
    pk = load(f"passkey{tag}.json")
    if pk:
        print("### Pass-key\n")
        print("| mode | doc tokens (target) | depth | key | answer | ok | kept | distil./evict. | peak RSS MiB | ingest tok/s | load |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in pk["runs"]:
            ev = r.get("distillations") or r.get("evictions") or 0
            rss = f"{r['peak_rss_bytes'] / MiB:.0f}" if r.get("peak_rss_bytes") else "-"
            tps = f"{r['ingest_tokens_per_s']:.0f}" if r.get("ingest_tokens_per_s") else "-"
            ans = (r.get("answer") or r.get("error") or "").replace("|", "/").replace("\n", " ")[:40]
            print(f"| {r['mode']} | {r.get('doc_tokens')} ({r['length']}) | {r['depth']:.0%} | {r['key']} | {ans} | "
                  f"{'yes' if r['ok'] else 'no'} | {r.get('kept_tokens')} | {ev} | {rss} | {tps} | {r.get('load_after')} |")
        s = pk.get("summary", {})
        print("\n| mode@length | correct | accuracy | depths missed |\n|---|---|---|---|")
        for k, v in s.get("accuracy", {}).items():
            print(f"| {k} | {v['ok']}/{v['n']} | {v['acc']:.0%} | {', '.join(f'{d:.0%}' for d in v['depths_missed']) or '-'} |")
        print(f"\nceiling: {s.get('ceiling')}; pot/ceiling: {s.get('pot_over_ceiling')}\n")
    rs = load(f"rss{tag}.json")
    if rs:
        print("### Peak RSS\n")
        print("| mode | doc tokens (target) | n_ctx | distil./evict. | peak RSS MiB | ingest tok/s | note |")
        print("|---|---|---|---|---|---|---|")
        for mode, m in rs.get("sampled", {}).items():  # one sampled run per mode
            for n, h in m["points"]:
                print(f"| {mode} | {n} of one {m.get('doc_tokens')}-token run | - | - | "
                      f"{h / MiB:.1f} | {m.get('ingest_tokens_per_s') or 0:.0f} | VmHWM when {n} tokens were read |"
                      if h else f"| {mode} | {n} | - | - | - | - | not reached |")
        for r in rs["runs"]:
            rss = f"{r['peak_rss_bytes'] / MiB:.1f}" if r.get("peak_rss_bytes") else "-"
            ev = (r.get("distillations") or r.get("evictions") or 0) if r.get("fits") else "-"
            tps = f"{r['ingest_tokens_per_s']:.0f}" if r.get("ingest_tokens_per_s") else "-"
            print(f"| {r['mode']} | {r.get('doc_tokens', '-')} ({r['length']}) | {r.get('n_ctx', '-')} | {ev} | {rss} | {tps} | "
                  f"{r.get('note') or r.get('error') or ''} |")
        print()
    tp = load(f"throughput{tag}.json")
    if tp:
        print("### Throughput\n")
        print("| round | method | doc tokens | tok/s | peak RSS MiB |\n|---|---|---|---|---|")
        for r in tp["runs"]:
            rss = f"{r['peak_rss_bytes'] / MiB:.0f}" if r.get("peak_rss_bytes") else "-"
            tps = f"{r['tokens_per_s']:.1f}" if r.get("tokens_per_s") else (r.get("error") or "-")[:60]
            print(f"| {r['round']} | {r['method']} | {r.get('tokens')} | {tps} | {rss} |")
        print(f"\nratios: {json.dumps({k: round(v, 3) for k, v in tp.get('summary', {}).get('ratios', {}).items()})}\n")
    pl = load(f"planner{tag}.json")
    if pl:
        print("### Planner\n")
        print("| --ram-cap | plan (stats.plan) | doc tokens | distillations | peak RSS MiB | under cap |\n|---|---|---|---|---|---|")
        for r in pl["runs"]:
            rss = f"{r['peak_rss_mib']:.1f}" if r.get("peak_rss_mib") else (r.get("error") or "-")
            print(f"| {r['ram_cap']} | {r.get('plan')} | {r.get('doc_tokens')} | {r.get('distillations')} | {rss} | {r.get('under_cap')} |")


if __name__ == "__main__" and "--plots" not in sys.argv:
    main()


def plots(tag: str) -> None:
    """Redraw the figures from the JSON (for runs stopped before they plotted)."""
    from common import BENCH, plot

    pk = load(f"passkey{tag}.json")
    if pk:
        s = pk.get("summary", {})
        series = {}
        for k, v in s.get("accuracy", {}).items():
            mode, n = k.split("@")
            if mode != "full":
                series.setdefault(mode, []).append((int(n), v["acc"]))
        ceil = s.get("ceiling")
        print(plot(BENCH / f"passkey{tag}", f"Pass-key accuracy, pot {pk['pot_tokens']} tokens", "document tokens",
                   "accuracy", series, ymax=1.0,
                   hline=(ceil, "ceiling 6K full") if ceil is not None else None))
    rs = load(f"rss{tag}.json")
    if rs:
        series = {mode: [(n, h / MiB) for n, h in m["points"] if h] for mode, m in rs.get("sampled", {}).items()}
        for r in rs["runs"]:
            if r.get("peak_rss_bytes"):
                series.setdefault(r["mode"], []).append((r["length"], r["peak_rss_bytes"] / MiB))
        print(plot(BENCH / f"rss{tag}", "Peak RSS per mode (pot 2048 under 512M)", "document tokens",
                   "peak RSS (MiB)", series, ymin=0, hline=(512, "cap 512M")))


if __name__ == "__main__" and "--plots" in sys.argv:
    plots("-quick" if "--quick" in sys.argv else "")
