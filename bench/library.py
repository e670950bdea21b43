"""Asking a library (issue #24 part 1): ``bookpot ask FOLDER QUESTION`` over many small books.

The library: ``--books`` books (default 50) of ~``--tokens`` tokens of real
prose each (tests/natural.py: GNU manuals, each book from its own stretch
of them), TXT, PDF and EPUB in turn. Four in ten hold one invented fact
each (every fact in one book only); the others are distractors. The
questions are the facts' own, typed as a person types them.

With an empty cache directory, the first question is asked cold (model
load and the text pass of every book included), then every question warm
(the indexes saved by the cold run), each as a user runs it:
``bookpot ask FOLDER QUESTION --threads T --ram-cap CAP``. Measured per run:
wall time to the first byte of the answer on stdout, the child's peak RSS
(``wait4``), and from its output: whether the first quote names the fact's
book (right book cited), whether that quote holds the fact, and whether the
answer holds an accepted answer (natural.answer_ok). Afterwards, in this
process, the two lookups of engine/collection.py ("each" and "merged") rank
the books for every question over the same indexes: the right book's rank
under each, and its margin (its best unit's BM25 score over the best other
book's: how far ahead it is).

    .venv/bin/python bench/library.py --threads 1 --tag run
    .venv/bin/python bench/library.py --books 10 --tag quick

Cold asks only, this bookpot beside another build in the same run
(alternating, each with an empty cache; medians and their ratio):

    .venv/bin/python bench/library.py --cold-against /path/to/other/.venv/bin/bookpot --rounds 5 --tag cold

Results go to bench/out/library-TAG.json and a summary on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import natural  # noqa: E402
from common import machine  # noqa: E402

_QUOTE = re.compile(r'^> ".*" — (?P<book>[^,]+), ', re.MULTILINE)


def library(folder: Path, n_books: int, tokens: int) -> list[tuple[Path, natural.Fact | None]]:
    """The books, written into ``folder``: [(path, its fact or None)]."""
    facts = list(natural.FACTS)
    with_fact = {round(i * n_books / max(1, n_books * 2 // 5)) for i in range(n_books * 2 // 5)}
    n_paras = len(natural.prose())
    out = []
    k = 0
    for i in range(n_books):
        fmt = natural.FORMATS[i % 3]
        fact = facts[k] if i in with_fact and k < len(facts) else None
        k += fact is not None
        doc = natural.build(tokens, [fact.id] if fact else [], fmt, offset=i * n_paras // n_books,
                            name=f"book{i:02d}")
        out.append((doc.write(folder), fact))
    return out


def run_ask(bookpot: str, args: list[str], env: dict) -> dict:
    """One ``bookpot ask``: seconds to the first stdout byte, total seconds, peak RSS, output."""
    t0 = time.perf_counter()
    p = subprocess.Popen([bookpot, "ask", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = p.stdout.read(1)
    t_first = time.perf_counter() - t0
    rest = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    return {"first_byte_s": round(t_first, 2), "total_s": round(time.perf_counter() - t0, 2),
            "exit": os.waitstatus_to_exitcode(status), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "stdout": (first + rest).decode(errors="replace"), "stderr": err.decode(errors="replace")[-800:]}


def ranks(books, questions, env: dict, extra: dict) -> dict:
    """The right book's rank (1 = first; None: not among the top list) under each lookup."""
    os.environ.update(env)
    from bookpot.engine import Options, open_collection

    out = {}
    with open_collection([str(p) for p, _ in books], Options(**extra)) as shelf:
        shelf.prepare()
        names = [b.path for b in shelf.books]
        for kind in ("each", "merged"):
            shelf.lookup_kind = kind
            got = []
            for path, fact in questions:
                t0 = time.perf_counter()
                best = shelf.lookup(fact.question).books()
                dt = time.perf_counter() - t0
                order = [names[h.book] for h in best]
                rank = order.index(str(path)) + 1 if str(path) in order else None
                # how far ahead the right book is: its best unit's score over the best other book's
                other = next((h.score for h in best if names[h.book] != str(path)), None)
                margin = round(best[rank - 1].score / other, 3) if rank and other else None
                got.append({"fact": fact.id, "rank": rank, "margin": margin, "lookup_s": round(dt, 4)})
            out[kind] = got
    return out


def _median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def cold_pair(a, folder: Path, question: str, work: Path) -> dict:
    """``--rounds`` cold asks by ``a.bookpot`` and ``a.cold_against``, alternating."""
    flags = ["--threads", str(a.threads), "--ram-cap", a.ram_cap]
    times: dict[str, list[float]] = {"this": [], "other": []}
    for n in range(a.rounds):
        for name, exe in (("this", a.bookpot), ("other", a.cold_against))[:: 1 if n % 2 == 0 else -1]:
            cache = work / f"cache-{name}"
            shutil.rmtree(cache, ignore_errors=True)
            r = run_ask(exe, [str(folder), question, *flags], dict(os.environ, BOOKPOT_CACHE_DIR=str(cache)))
            if r["exit"] != 0:
                raise SystemExit(f"{exe} failed: {r['stderr']}")
            times[name].append(r["first_byte_s"])
            print(name, r["first_byte_s"], r["stdout"].split("\n")[0][:80], file=sys.stderr, flush=True)
    med = {k: _median(v) for k, v in times.items()}
    return {"cold_first_byte_s": times, "median": med, "other_over_this": round(med["other"] / med["this"], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bookpot", default=str(ROOT / ".venv" / "bin" / "bookpot"))
    ap.add_argument("--books", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=3000, help="tokens per book (about)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ram-cap", default="1G")
    ap.add_argument("--tag", default="run")
    ap.add_argument("--cold-against", help="another bookpot executable: cold asks only, side by side")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if not natural.prose_available():
        print("bench/library.py: the GNU manuals in /usr/share/info are missing", file=sys.stderr)
        return 2
    work = OUT / f"library-{a.tag}"
    shutil.rmtree(work, ignore_errors=True)
    folder = work / "books"
    books = library(folder, a.books, a.tokens)
    questions = [(p, f) for p, f in books if f is not None]
    if a.cold_against:
        result = {"machine": machine(), "command": " ".join(sys.argv), "books": a.books,
                  **cold_pair(a, folder, questions[0][1].question, work)}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"library-{a.tag}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return 0
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(work / "cache"))
    flags = ["--threads", str(a.threads), "--ram-cap", a.ram_cap]
    rows = []
    for n, (path, fact) in enumerate([questions[0], *questions]):
        r = run_ask(a.bookpot, [str(folder), fact.question, *flags], env)
        cited = _QUOTE.findall(r["stdout"])
        quote = next((ln for ln in r["stdout"].splitlines() if ln.startswith("> ")), "")
        r.update(kind="cold" if n == 0 else "warm", fact=fact.id, book=path.name, format=path.suffix[1:],
                 cited=cited[0] if cited else None, right_book=bool(cited) and cited[0] == path.name,
                 quote_holds_fact=natural.holds_evidence(fact, quote),
                 answer_right=natural.answer_ok(fact, r["stdout"].split("\n")[0]))
        rows.append(r)
        print(r["kind"], fact.id, path.name, {k: r[k] for k in ("first_byte_s", "peak_rss_mib", "cited",
                                                                "right_book", "answer_right", "exit")},
              file=sys.stderr, flush=True)
    rank = ranks(books, questions, {"BOOKPOT_CACHE_DIR": str(work / "cache")},
                 {"threads": a.threads, "ram_cap": a.ram_cap})
    warm = [r for r in rows if r["kind"] == "warm"]
    from bookpot.engine.plan import parse_size

    summary = {
        "books": a.books, "questions": len(warm), "tokens_per_book": a.tokens,
        "right_book": sum(r["right_book"] for r in warm), "quote_holds_fact": sum(r["quote_holds_fact"] for r in warm),
        "answer_right": sum(r["answer_right"] for r in warm),
        "cold_first_byte_s": rows[0]["first_byte_s"],
        "warm_first_byte_s_median": sorted(r["first_byte_s"] for r in warm)[len(warm) // 2],
        "warm_first_byte_s_max": max(r["first_byte_s"] for r in warm),
        "peak_rss_mib_max": max(r["peak_rss_mib"] for r in rows), "ram_cap_mib": parse_size(a.ram_cap) / 2**20,
        "rank1": {k: sum(g["rank"] == 1 for g in v) for k, v in rank.items()},
        # margin None: no other book holds any word of the question
        "only_book_matching": {k: sum(g["rank"] == 1 and g["margin"] is None for g in v) for k, v in rank.items()},
        "margin_median": {k: _median([g["margin"] for g in v if g["margin"]]) for k, v in rank.items()},
        "margin_min": {k: min([g["margin"] for g in v if g["margin"]], default=None) for k, v in rank.items()},
        "lookup_s_mean": {k: round(sum(g["lookup_s"] for g in v) / len(v), 4) for k, v in rank.items()},
        "failed_runs": sum(r["exit"] != 0 for r in rows),
    }
    result = {"machine": machine(), "command": " ".join(sys.argv), "summary": summary, "ranks": rank,
              "rows": [{k: v for k, v in r.items() if k != "stdout"} | {"answer": r["stdout"].split("\n")[0]}
                       for r in rows]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"library-{a.tag}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
