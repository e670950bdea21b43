"""Which summarization prompt makes the small model name a section's topic?

For each chapter of tests/topicbook.py (four unrelated topics, ~2.3K tokens
each) the chapter is prefilled once per prompt style, then every candidate
instruction of that style is decoded after it, a summary generated (greedy,
with and without a repetition penalty) and removed again. Scored: does the
summary contain one of the chapter's topic words, is it degenerate
(empty, or looping), and its length.

    .venv/bin/python bench/summary_prompts.py [--tokens 2300] [--max-new 64]

Writes bench/out/summary_prompts.json. The winner is what
engine/summarize.py uses; the figures are quoted there.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from topicbook import TOPIC_WORDS, topic_chapters  # noqa: E402

CANDIDATES = {
    "completion": {
        "summary-of-above": "\n\nSummary of the text above:",
        "summary-colon": "\n\nSummary:",
        "tldr": "\n\nTL;DR:",
        "this-text-is-about": "\n\nIn short, this text is about",
        "generic-catalyst": "\n\nSummarize the previous context highlighting the most important parts.\n",
    },
    "chat": {
        "chat-summarize": "Summarize the text above in two sentences.",
        "chat-generic-catalyst": "Summarize the previous context highlighting the most important parts.",
        "chat-what-about": "What is the text above about? Answer in one or two sentences.",
    },
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2300)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    from bookpot.engine import prompt as prompt_mod
    from bookpot.engine import summarize as S
    from bookpot.engine.llm import Context, Model
    from bookpot.models import resolve

    model = Model(resolve("smollm2-135m"))
    ctx = Context(model, n_ctx=4096, n_batch=512, n_threads=a.threads)
    results = []
    t0 = time.perf_counter()
    for title, text in topic_chapters(a.tokens):
        words = TOPIC_WORDS[title]
        for style, cands in CANDIDATES.items():
            fmt = prompt_mod.build(model, style)
            doc = fmt.prefix + model.tokenize(text, special=False)
            ctx.clear()
            ctx.decode(doc, 0)
            for name, instr in cands.items():
                if style == "completion":
                    suffix = model.tokenize(instr, special=False)
                else:
                    suffix = fmt.suffix(model, instr)
                for penalty in (1.0, 1.3):
                    ctx.seq_rm(0, len(doc), -1)
                    ctx.decode(suffix, len(doc))
                    out = S.generate_summary(ctx, len(doc) + len(suffix), max_tokens=a.max_new,
                                             repeat_penalty=penalty)
                    low = out.text.lower()
                    results.append({"chapter": title, "style": style, "prompt": name, "penalty": penalty,
                                    "topic": any(w in low for w in words), "degenerate": out.degenerate,
                                    "tokens": out.tokens, "text": out.text})
                    print(f"{title[:10]:10} {name:22} p={penalty} topic={results[-1]['topic']!s:5} "
                          f"deg={out.degenerate or '-':10} {out.text[:110]!r}", flush=True)
            ctx.seq_rm(0, 0, -1)
    table: dict[str, dict] = {}
    for r in results:
        key = f"{r['prompt']} p={r['penalty']}"
        t = table.setdefault(key, {"topic": 0, "degenerate": 0, "n": 0, "tokens": 0})
        t["n"] += 1
        t["topic"] += r["topic"]
        t["degenerate"] += bool(r["degenerate"])
        t["tokens"] += r["tokens"]
    for k, t in table.items():
        print(f"{k:32} topic {t['topic']}/{t['n']}  degenerate {t['degenerate']}/{t['n']}  "
              f"mean tokens {t['tokens'] / t['n']:.0f}")
    out = ROOT / "bench" / "out" / "summary_prompts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tokens_per_chapter": a.tokens, "seconds": time.perf_counter() - t0,
                               "table": table, "results": results}, indent=1))


if __name__ == "__main__":
    main()
