"""Books per hour with two local Dask workers against one process (issue #24).

Eight small Markdown books (tests/topicbook.py, four ~500-token chapters
each, a different seed per book: ~2K tokens) are summarized three times
in one run, each time into a cache directory of its own (nothing reused):

1. ``one``: one process, ``bookpot summarize B1..B8 --ram-cap 512M --threads 1``;
2. ``two``: ``bookpot summarize B1..B8 --workers 2 --ram-cap 1G`` (a Dask
   LocalCluster of two processes, one book at a time each, each under
   512M with one llama.cpp thread: the same plan as ``one``);
3. ``killed``: as ``two``, and once two books are done and a third has a
   chapter checkpointed, the worker process summarizing it is SIGKILLed
   (its pid from the workers' journal, ``<cache>/cluster/journal.jsonl``).

Recorded: wall times (the ``--workers`` runs include starting the local
cluster), books/hour and the ratio two/one; that all three give the same
summaries (overview, parts, sections); for ``killed`` that all 8 came back
and the journal has exactly one fresh ``done`` per book; the load average
before and after each run.

    .venv/bin/python bench/cluster.py            # 8 books of ~2K tokens
    .venv/bin/python bench/cluster.py --books 4 --chapter-tokens 250   # a smoke run

Writes bench/out/cluster.json and a log of every command.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
sys.path.insert(0, str(BENCH.parent / "tests"))

from common import BOOKPOT, loadavg, logger, machine, save  # noqa: E402
from topicbook import topic_chapters  # noqa: E402

from bookpot.app.cluster import read_journal  # noqa: E402


def make_books(folder: Path, n: int, chapter_tokens: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"book{i + 1}.md"
        p.write_text("".join(f"# {t}\n\n{x}\n\n" for t, x in topic_chapters(chapter_tokens, seed=100 + i)))
        out.append(p)
    return out


def summarize(books, cache: Path, extra: list[str], log, *, kill_after: int | None = None) -> dict:
    cmd = [BOOKPOT, "summarize", *map(str, books), "--cache-dir", str(cache), "--json", "-q", *extra]
    line = " ".join(shlex.quote(a) for a in cmd)
    load0 = loadavg()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    if kill_after is not None:  # mid-book: once the running book has had 60% of a finished book's time
        from datetime import datetime

        def when(e):
            return datetime.strptime(e["t"], "%Y-%m-%dT%H:%M:%S").timestamp()

        while killed is None and p.poll() is None:
            events = read_journal(cache)
            starts = {e["path"]: e for e in events if e["event"] == "start"}
            dones = [e for e in events if e["event"] == "done" and not e["cached"]]
            done = {e["path"] for e in dones}
            if len(done) >= kill_after:
                took = sorted(when(e) - when(starts[e["path"]]) for e in dones if e["path"] in starts)
                typical = took[len(took) // 2]
                running = [e for path, e in starts.items() if path not in done]
                ripe = [e for e in running if time.time() - when(e) >= 0.6 * typical]
                if ripe:
                    victim = ripe[0]
                    try:
                        os.kill(victim["pid"], signal.SIGKILL)
                        killed = {"pid": victim["pid"], "path": victim["path"],
                                  "after_s": round(time.perf_counter() - t0, 1), "books_done_before": len(done),
                                  "book_running_s": round(time.time() - when(victim), 1),
                                  "typical_book_s": typical}
                        log(f"  SIGKILL worker pid {victim['pid']} {killed['book_running_s']} s into "
                            f"{Path(victim['path']).name} (a book takes ~{typical:.0f} s)")
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    rec = {"cmd": line, "rc": p.returncode, "wall_s": round(wall, 2), "load_before": load0, "load_after": loadavg(),
           "results": [json.loads(x) for x in out.splitlines() if x.strip()], "stderr": err.strip()[-2000:],
           "killed": killed}
    log(f"[{time.strftime('%H:%M:%S')}] rc={p.returncode} {wall:.1f}s load {load0:.2f}->{rec['load_after']:.2f} {line}")
    return rec


def texts(r: dict) -> tuple:
    return (r["overview"], tuple(p["summary"] for p in r["parts"]), tuple(s["summary"] for s in r["sections"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=8)
    ap.add_argument("--chapter-tokens", type=int, default=500)
    a = ap.parse_args()
    log = logger(OUT / "cluster.log")
    data = {"machine": machine(), "books": a.books, "chapter_tokens": a.chapter_tokens, "runs": {}}
    log(f"machine: {data['machine']}")
    with tempfile.TemporaryDirectory(prefix="bookpot-cluster-") as tmp:
        tmp = Path(tmp)
        books = make_books(tmp / "books", a.books, a.chapter_tokens)
        runs = data["runs"]
        runs["one"] = summarize(books, tmp / "c-one", ["--ram-cap", "512M", "--threads", "1"], log)
        runs["two"] = summarize(books, tmp / "c-two", ["--workers", "2", "--ram-cap", "1G"], log)
        runs["killed"] = summarize(books, tmp / "c-killed", ["--workers", "2", "--ram-cap", "1G"], log,
                                   kill_after=2)
        journal = read_journal(tmp / "c-killed")
        data["journals"] = {"two": read_journal(tmp / "c-two"), "killed": journal}
    runs = data["runs"]
    one, two, killed = runs["one"], runs["two"], runs["killed"]
    tokens = sum(r["stats"]["doc_tokens"] for r in one["results"])
    fresh_done: dict[str, int] = {}
    for e in journal:
        if e["event"] == "done" and not e["cached"]:
            fresh_done[e["path"]] = fresh_done.get(e["path"], 0) + 1
    summary = {
        "tokens_per_book": round(tokens / max(1, len(one["results"]))),
        "books_per_hour_one": round(a.books / one["wall_s"] * 3600, 1),
        "books_per_hour_two": round(a.books / two["wall_s"] * 3600, 1),
        "books_per_hour_killed": round(a.books / killed["wall_s"] * 3600, 1),
        "ratio_two_over_one": round(one["wall_s"] / two["wall_s"], 2),
        "all_ok": all(r["rc"] == 0 and len(r["results"]) == a.books for r in (one, two, killed)),
        "same_summaries_two": [texts(r) for r in two["results"]] == [texts(r) for r in one["results"]],
        "same_summaries_killed": [texts(r) for r in killed["results"]] == [texts(r) for r in one["results"]],
        "killed": killed["killed"],
        "killed_books_returned": len(killed["results"]),
        "killed_fresh_done_per_book": sorted(fresh_done.values()),
        "killed_resumed_sections": {Path(e["path"]).name: e["resumed"] for e in journal
                                    if e["event"] == "done" and e["resumed"]},
        "killed_starts": sum(1 for e in journal if e["event"] == "start"),
        # Diagnostics: the books' own time (summed) and prefill rate in each run; two/one of the busy
        # time near 1 means each worker ran as fast as the lone process (the cores were there).
        "book_seconds_summed": {k: round(sum(r["stats"]["total_s"] for r in runs[k]["results"]), 1)
                                for k in ("one", "two", "killed")},
        "prefill_tok_s_mean": {k: round(sum(r["stats"]["ingest_tokens_per_s"] for r in runs[k]["results"])
                                        / max(1, len(runs[k]["results"])), 1) for k in ("one", "two", "killed")},
        "load": {k: [runs[k]["load_before"], runs[k]["load_after"]] for k in ("one", "two", "killed")},
    }
    data["summary"] = summary
    save(OUT / "cluster.json", data)
    for k, v in summary.items():
        log(f"{k}: {v}")


if __name__ == "__main__":
    main()
