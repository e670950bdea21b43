"""Memory units: multi-needle recall, time to first token, reopen, disk.

One document of ``--tokens`` (default 64K) standard filler with 8 labelled
pass keys ("The pass key for the red door is NNNNN. ...") spread evenly
through it. Each method reads it once (its state is cached, keyed by its
settings), then answers the 8 labelled questions from the cache:

- ``units``: the pot (``--pot-tokens``, generic catalyst) + 4 memory units;
- ``pot``: the same pot, no units loaded (``--units 0``: the very state
  the ``units`` run read and cached, so both answer from one pot);
- ``truncate``: the last ``--pot-tokens`` tokens, no units;
- ``ceiling``: the same 8 keys and labels in a ~6K-token document that
  fits the window, ``--mode full`` (the model's own ceiling).

Also recorded: TTFT per question (lookup + swap-in + question prefill, from
stats.ttft_s), the wall time of a cached ``ask --max-tokens 1`` (reopen:
process start to first token, an upper bound) against the first ingestion,
and the cache's disk use per 1K tokens.

    .venv/bin/python bench/units.py                 # 64K tokens
    .venv/bin/python bench/units.py --tokens 16384  # quicker

Writes bench/out/units-<tokens>.json.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import time

from common import DOCS, OUT, logger, machine, run_cli, save
from passkey import FILLER

LABELS = ["red door", "blue gate", "green box", "yellow chest", "black safe", "white locker",
          "silver vault", "orange cabinet"]


def needle_doc(n_tokens: int, seed: int = 11) -> tuple[str, dict[str, int]]:
    rng = random.Random(seed)
    keys = {label: rng.randint(10000, 99999) for label in LABELS}
    n_blocks = max(len(LABELS) * 4, n_tokens // 25)
    blocks = [FILLER] * n_blocks
    for i, label in reversed(list(enumerate(LABELS))):
        at = round((i + 0.5) / len(LABELS) * n_blocks)
        k = keys[label]
        blocks.insert(at, f"The pass key for the {label} is {k}. Remember it. {k} is the pass key for the {label}.")
    return " ".join(blocks), keys


def question(label: str) -> str:
    return f"What is the pass key for the {label}? The pass key for the {label} is"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=65536)
    ap.add_argument("--pot-tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="units,pot,truncate,ceiling")
    ap.add_argument("--reuse-cache", action="store_true", help="keep states read by an earlier run (no re-ingest)")
    ap.add_argument("--tag", default="", help="suffix for the output files")
    a = ap.parse_args()
    DOCS.mkdir(parents=True, exist_ok=True)
    text, keys = needle_doc(a.tokens)
    doc = DOCS / f"needles_{a.tokens}.txt"
    doc.write_text(text)
    small_text, small_keys = needle_doc(6000)
    assert small_keys == keys
    small = DOCS / "needles_6000.txt"
    small.write_text(small_text)
    cache = OUT / f"units-cache-{a.tokens}"
    if not a.reuse_cache:
        shutil.rmtree(cache, ignore_errors=True)
    os.environ["BOOKPOT_CACHE_DIR"] = str(cache)
    log = logger(OUT / f"units-{a.tokens}{a.tag}.log")
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "tokens": a.tokens,
            "pot_tokens": a.pot_tokens, "labels": LABELS, "keys": keys, "methods": {}}
    out_json = OUT / f"units-{a.tokens}{a.tag}.json"
    common = ["--threads", str(a.threads), "--max-tokens", "12"]
    methods = {
        "units": (doc, ["--pot-tokens", str(a.pot_tokens), "--catalyst", "generic"]),
        "pot": (doc, ["--pot-tokens", str(a.pot_tokens), "--catalyst", "generic", "--units", "0"]),
        "truncate": (doc, ["--mode", "truncate", "--pot-tokens", str(a.pot_tokens), "--no-units",
                          "--catalyst", "generic"]),  # generic: cached, read once for all 8
        "ceiling": (small, ["--mode", "full"]),
    }
    for name in a.methods.split(","):
        path, extra = methods[name]
        ing = run_cli(["ingest", str(path), *extra, "--threads", str(a.threads)], log)
        rec = {"ingest": ing.get("result"), "ingest_wall_s": ing["wall_s"], "runs": []}
        if "error" in ing:
            rec["error"] = ing["error"]
            data["methods"][name] = rec
            save(out_json, data)
            continue
        for label in LABELS:
            r = run_cli(["ask", str(path), question(label), *extra, *common], log)
            res = r.get("result", {})
            st = res.get("stats", {})
            ans = res.get("answer", "")
            rec["runs"].append({"label": label, "key": keys[label], "ok": str(keys[label]) in ans, "answer": ans,
                                "other_key": next((l for l, k in keys.items() if l != label and str(k) in ans), None),
                                "ttft_s": st.get("ttft_s"), "lookup_s": st.get("lookup_s"), "wall_s": r["wall_s"],
                                "cached": st.get("cached"), "units_loaded": st.get("units_loaded"),
                                "citations": [c.get("locator") for c in res.get("citations", [])][:4],
                                "peak_rss_bytes": st.get("peak_rss_bytes")})
            save(out_json, dict(data, methods=dict(data["methods"], **{name: rec})))
        rec["correct"] = sum(x["ok"] for x in rec["runs"])
        rec["reopen_wall_s"] = run_cli(["ask", str(path), question(LABELS[0]), *extra, "--threads",
                                        str(a.threads), "--max-tokens", "1"], log)["wall_s"]
        if name == "units":
            books = run_cli(["cache", "list"], log)
            rec["cache"] = books.get("result")
        data["methods"][name] = rec
        log(f"{name}: {rec['correct']}/{len(LABELS)} correct; ingest {rec['ingest_wall_s']} s; "
            f"reopen {rec['reopen_wall_s']} s")
        save(out_json, data)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    data["disk_bytes"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    save(out_json, data)


if __name__ == "__main__":
    main()
