"""Which summarization prompt makes the small model name a section's topic?

For each chapter of tests/topicbook.py (four unrelated topics, ~2.3K tokens
each) the chapter is prefilled once per prompt style, then every candidate
instruction of that style is decoded after it, a summary generated (greedy,
with and without a repetition penalty) and removed again. Scored: does the
summary contain one of the chapter's topic words (anywhere, and in its
first sentence), how much of it is copied from the chapter (word 6-grams
found verbatim), is it degenerate (empty, or looping), and its length.

    .venv/bin/python bench/summary_prompts.py [--tokens 2300] [--max-new 64]

Writes bench/out/summary_prompts.json. The winner is what
engine/summarize.py uses; the figures are quoted there.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from topicbook import TOPIC_WORDS, topic_chapters  # noqa: E402

# A first run with all of these on two chapters (bread, lighthouse) under
# heavy machine load found "Summary:" and "TL;DR:" to loop without a
# repetition penalty and otherwise to copy a document sentence like
# "Summary of the text above:" does, and the chat template's generic
# catalyst to answer with meta text ("The previous context highlights the
# most important parts of ..."); --all runs them again.
CANDIDATES = {
    "completion": {
        "summary-of-above": "\n\nSummary of the text above:",
        "this-text-is-about": "\n\nIn short, this text is about",
        "generic-catalyst": "\n\nSummarize the previous context highlighting the most important parts.\n",
    },
    "chat": {
        "chat-summarize": "Summarize the text above in two sentences.",
        "chat-what-about": "What is the text above about? Answer in one or two sentences.",
    },
}
MORE = {
    "completion": {"summary-colon": "\n\nSummary:", "tldr": "\n\nTL;DR:"},
    "chat": {"chat-generic-catalyst": "Summarize the previous context highlighting the most important parts."},
}


def copied(summary: str, doc_words: str) -> float:
    """Share of the summary's word 6-grams found verbatim in the document."""
    w = re.findall(r"[a-z]+", summary)
    grams = [" ".join(w[i:i + 6]) for i in range(len(w) - 5)]
    return sum(g in doc_words for g in grams) / len(grams) if grams else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2300)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--all", action="store_true", help="also the candidates dropped after the first run")
    a = ap.parse_args()
    if a.all:
        for style, more in MORE.items():
            CANDIDATES[style].update(more)

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
        doc_words = " ".join(re.findall(r"[a-z]+", text.lower()))
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
                    first = re.split(r"(?<=[.!?])\s", low.strip())[0]
                    results.append({"chapter": title, "style": style, "prompt": name, "penalty": penalty,
                                    "topic": any(w in low for w in words),
                                    "topic_first_sentence": any(w in first for w in words),
                                    "copied_6grams": copied(low, doc_words), "degenerate": out.degenerate,
                                    "tokens": out.tokens, "text": out.text})
                    print(f"{title[:10]:10} {name:22} p={penalty} topic={results[-1]['topic']!s:5} "
                          f"deg={out.degenerate or '-':10} {out.text[:110]!r}", flush=True)
            ctx.seq_rm(0, 0, -1)
    table: dict[str, dict] = {}
    for r in results:
        key = f"{r['prompt']} p={r['penalty']}"
        t = table.setdefault(key, {"topic": 0, "topic_first_sentence": 0, "copied_6grams": 0.0,
                                   "degenerate": 0, "n": 0, "tokens": 0})
        t["n"] += 1
        t["topic"] += r["topic"]
        t["topic_first_sentence"] += r["topic_first_sentence"]
        t["copied_6grams"] += r["copied_6grams"] / 4
        t["degenerate"] += bool(r["degenerate"])
        t["tokens"] += r["tokens"]
    for k, t in table.items():
        print(f"{k:32} topic {t['topic']}/{t['n']} (first sentence {t['topic_first_sentence']})  "
              f"copied 6-grams {t['copied_6grams'] / t['n'] * 4:.0%}  degenerate {t['degenerate']}/{t['n']}  "
              f"mean tokens {t['tokens'] / t['n']:.0f}")
    out = ROOT / "bench" / "out" / "summary_prompts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tokens_per_chapter": a.tokens, "seconds": time.perf_counter() - t0,
                               "table": table, "results": results}, indent=1))


if __name__ == "__main__":
    main()
