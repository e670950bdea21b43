"""A summary of a book already read: loading the KV its reading saved against decoding it again.

Issue #19: "Summaries still read the whole book, reusing every unit already
prefilled" (engine/savedkv.py). For each length, an EPUB of real prose
written by others (the GNU manuals Debian installs, tests/natural.py; one
chapter per ~6,000 characters, named after the manual's node) is read
once with ``bookpot ingest``, then summarized twice in the same cache, one
run after the other with the same settings: with reuse (the default) and
with ``--no-reuse`` (every token decoded, as before).

Recorded per run: wall time, the summary's reading time and tokens loaded,
and the summary's quality by two checks that need no reference summary:

- grounded: the share of a part's content words (5-letter stems, generic
  words left out) that occur in the text of the chapters it summarizes;
- own chapter: whether a part shares more of its words with its own
  chapters than with any other chapter of the book (a summary that speaks
  of its chapter can be told apart from its neighbours');
- copied: the share of a part's word 6-grams found word for word in its
  chapters (a summary that copies sentences is grounded, but no summary).

Also the parts' word overlap between the two runs (Jaccard of stems).

    .venv/bin/python bench/summary_reuse.py                     # 16K and 64K tokens
    .venv/bin/python bench/summary_reuse.py --lengths 16384 --threads 1
    .venv/bin/python bench/summary_reuse.py --lengths 16384 --pot-tokens 1024
        # summary pots smaller than a chapter: distilled, on the catalyst alone when loaded

Writes bench/out/summary_reuse[-<lengths>].json and .log.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
sys.path.insert(0, str(BENCH.parent / "tests"))

from common import logger, machine, run_cli as run, save  # noqa: E402  (run_cli adds --json -q)
import natural  # noqa: E402

GENERIC = set("""text about this that chapter chapters book story part section also which their there
they them with from into have been being what when where while other some many more most very
just like only over such than then these those through will would could should your yours each
used uses using does make makes""".split())


def stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in GENERIC}


def ngrams(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def chapter_texts(doc) -> list[tuple[str, str]]:
    return [(doc.paras[ch[0]].node, "\n\n".join(doc.paras[i].text for i in ch)) for ch in doc.chapters()]


def quality(result: dict, chapters: list[tuple[str, str]]) -> dict:
    """Grounded share and own-chapter attribution of every part (see the module docstring)."""
    vocab = [stems(t) for _, t in chapters]
    j = 0
    grounded, copied, own, parts = [], [], 0, 0
    for p in result.get("parts", []):
        n = max(1, len(p.get("chapters") or []))
        mine = set(range(j, min(j + n, len(chapters))))
        j += n
        words = stems(p["summary"].removeprefix("This text is about"))
        if p.get("degenerate") or not words or not mine:
            continue
        parts += 1
        inside = set().union(*(vocab[i] for i in mine))
        grounded.append(len(words & inside) / len(words))
        grams = ngrams(p["summary"].removeprefix("This text is about"))
        if grams:
            source = set().union(*(ngrams(chapters[i][1]) for i in mine))
            copied.append(len(grams & source) / len(grams))
        best_other = max((len(words & vocab[i]) for i in range(len(vocab)) if i not in mine), default=0)
        own += len(words & inside) > best_other
    return {"parts": len(result.get("parts", [])), "scored": parts,
            "degenerate": result.get("stats", {}).get("degenerate"),
            "grounded_mean": round(sum(grounded) / len(grounded), 3) if grounded else None,
            "copied_mean": round(sum(copied) / len(copied), 3) if copied else None,
            "own_chapter": own, "overview_method": result.get("overview_method"),
            "summaries": [p["summary"] for p in result.get("parts", [])]}


def overlap(a: dict, b: dict) -> float | None:
    pa, pb = a.get("parts", []), b.get("parts", [])
    if not pa or len(pa) != len(pb):
        return None
    js = []
    for x, y in zip(pa, pb):
        sx, sy = stems(x["summary"]), stems(y["summary"])
        js.append(len(sx & sy) / len(sx | sy) if sx | sy else 1.0)
    return round(sum(js) / len(js), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=[16384, 65536])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ram-cap", default=None)
    ap.add_argument("--pot-tokens", default=None, help="the summaries' pot (default: the plan's largest)")
    a = ap.parse_args()
    tag = "-" + "-".join(map(str, a.lengths)) if a.lengths != [16384, 65536] else ""
    tag += f"-pot{a.pot_tokens}" if a.pot_tokens else ""
    OUT.mkdir(parents=True, exist_ok=True)
    log = logger(OUT / f"summary_reuse{tag}.log")
    common = ["--threads", str(a.threads)] + (["--ram-cap", a.ram_cap] if a.ram_cap else [])
    data = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "threads": a.threads,
            "ram_cap": a.ram_cap, "pot_tokens": a.pot_tokens, "loadavg": open("/proc/loadavg").read().split()[:3], "runs": []}
    for n in a.lengths:
        doc = natural.build(n, [], "epub", offset=7919, name=f"reuse-{n}")
        chapters = chapter_texts(doc)
        with tempfile.TemporaryDirectory() as tmp:
            path = str(doc.write(tmp))
            cache = ["--cache-dir", str(Path(tmp) / "cache")]
            ing = run(["ingest", path, *cache, *common], log)
            pot = ["--pot-tokens", a.pot_tokens] if a.pot_tokens else []
            reuse = run(["summarize", path, "--format", "json", *cache, *common, *pot], log)
            plain = run(["summarize", path, "--format", "json", "--no-reuse", *cache, *common, *pot], log)
        row = {"length": n, "chapters": len(chapters), "ingest_wall_s": ing["wall_s"],
               "errors": [r.get("error") for r in (ing, reuse, plain) if r["rc"] != 0]}
        for name, r in (("reuse", reuse), ("decode", plain)):
            res = r.get("result", {})
            st = res.get("stats", {})
            row[name] = {"wall_s": r["wall_s"], "read_s": st.get("ingest_s"), "doc_tokens": st.get("doc_tokens"),
                         "reused_tokens": st.get("reused_tokens"), "reuse_load_s": st.get("reuse_load_s"),
                         "generation_s": st.get("generation_s"), "distillations": st.get("distillations"),
                         "peak_rss_bytes": st.get("peak_rss_bytes"), **quality(res, chapters)}
        if not row["errors"]:
            row["wall_ratio"] = round(plain["wall_s"] / reuse["wall_s"], 2)
            row["read_ratio"] = round(row["decode"]["read_s"] / row["reuse"]["read_s"], 2)
            row["parts_jaccard"] = overlap(reuse["result"], plain["result"])
        data["runs"].append(row)
        data["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        save(OUT / f"summary_reuse{tag}.json", data)
        log(str({k: ({x: y for x, y in v.items() if x != "summaries"} if isinstance(v, dict) else v)
                 for k, v in row.items()}))


if __name__ == "__main__":
    main()
