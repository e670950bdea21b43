"""Answers before reading (issue #19): time to the first answer token on new books.

For each format (TXT, PDF, EPUB) a ~100K-token book of real prose
(tests/natural.py: GNU manuals with invented facts) is written, and with an
empty cache directory ``bookpot ask BOOK QUESTION`` runs as a user runs it.
Measured per book, in one run:

- wall time from starting ``bookpot ask`` to the first byte of the answer
  on stdout (model load, reader, text pass, lookup, on-demand prefill and
  the first token all included), and the whole run;
- the child's peak RSS (``wait4``'s ru_maxrss) against the RAM cap;
- the text pass's tokens/s (``--json`` stats of a second ask on a fresh
  cache: text_pass_tokens_per_s, book_tokens);
- disk written for the unread book (the cache directory afterwards).

With ``--read-first`` it also times ``--read first`` on the TXT book (the
whole read, then the answer): the before/after ratio of the same run.

    .venv/bin/python bench/early.py --threads 1 --tag run
    .venv/bin/python bench/early.py --formats txt --tokens 30000 --tag quick

Results go to bench/out/early-TAG.json and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
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

FACT = "F03"  # "Who made the silver compass?"


def run_ask(bookpot: str, path: Path, question: str, env: dict, extra: list[str]) -> dict:
    """One ``bookpot ask``: seconds to the first stdout byte, total seconds, peak RSS, output."""
    t0 = time.perf_counter()
    p = subprocess.Popen([bookpot, "ask", str(path), question, *extra], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    first = p.stdout.read(1)
    t_first = time.perf_counter() - t0
    rest = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    total = time.perf_counter() - t0
    return {"first_byte_s": round(t_first, 2), "total_s": round(total, 2), "exit": os.waitstatus_to_exitcode(status),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": (first + rest).decode(errors="replace"),
            "stderr": err.decode(errors="replace")[-600:]}


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bookpot", default=str(ROOT / ".venv" / "bin" / "bookpot"))
    ap.add_argument("--formats", default="txt,pdf,epub")
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ram-cap", default=None)
    ap.add_argument("--read-first", action="store_true", help="also time --read first on the TXT book")
    ap.add_argument("--tag", default="run")
    a = ap.parse_args()
    if not natural.prose_available():
        print("bench/early.py: the GNU manuals in /usr/share/info are missing (apt install coreutils-doc ...)",
              file=sys.stderr)
        return 2
    work = OUT / f"early-{a.tag}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    extra = []
    if a.threads:
        extra += ["--threads", str(a.threads)]
    if a.ram_cap:
        extra += ["--ram-cap", a.ram_cap]
    fact = natural.BY_ID[FACT]
    rows = []
    for fmt in a.formats.split(","):
        doc = natural.build(a.tokens, [FACT], fmt, offset=0, name=f"early-{fmt}")
        path = doc.write(work)
        cache = work / f"cache-{fmt}"
        env = dict(os.environ, BOOKPOT_CACHE_DIR=str(cache))
        r = run_ask(a.bookpot, path, fact.question, env, extra)
        r.update(format=fmt, size_bytes=path.stat().st_size, cache_bytes=dir_bytes(cache),
                 right=natural.answer_ok(fact, r["stdout"].split("\n")[0]),
                 quote_holds_fact=natural.holds_evidence(fact, r["stdout"]))
        env2 = dict(os.environ, BOOKPOT_CACHE_DIR=str(work / f"cache2-{fmt}"))
        j = subprocess.run([a.bookpot, "ask", str(path), fact.question, "--json", "-q", *extra],
                           capture_output=True, text=True, env=env2)
        st = json.loads(j.stdout)["stats"] if j.returncode == 0 else {}
        r.update({k: st.get(k) for k in ("book_tokens", "text_pass_s", "text_pass_tokens_per_s", "ondemand_tokens",
                                          "ondemand_s", "decoded_tokens", "ttft_s", "lookup_s", "ram_cap_bytes")})
        rows.append(r)
        print(fmt, {k: r[k] for k in ("first_byte_s", "peak_rss_mib", "text_pass_tokens_per_s", "right")},
              file=sys.stderr, flush=True)
        if a.read_first and fmt == "txt":
            env3 = dict(os.environ, BOOKPOT_CACHE_DIR=str(work / "cache-first"))
            f = run_ask(a.bookpot, path, fact.question, env3, extra + ["--read", "first"])
            f.update(format="txt --read first", size_bytes=path.stat().st_size,
                     cache_bytes=dir_bytes(work / "cache-first"),
                     right=natural.answer_ok(fact, f["stdout"].split("\n")[0]),
                     quote_holds_fact=natural.holds_evidence(fact, f["stdout"]))
            rows.append(f)
    result = {"machine": machine(), "command": " ".join(sys.argv), "tokens": a.tokens, "rows": rows}
    (OUT / f"early-{a.tag}.json").write_text(json.dumps(result, indent=1))
    print("| book | first answer byte | whole run | peak RSS | text pass | book tokens | prefilled on demand "
          "| disk written | right | quote |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tp = r.get("text_pass_tokens_per_s")
        print(f"| {r['format']} ({r['size_bytes'] / 2**20:.1f} MiB) | {r['first_byte_s']:.1f} s | {r['total_s']:.1f} s "
              f"| {r['peak_rss_mib']:.0f} MiB | {f'{tp:,.0f} tok/s' if tp else 'n/a'} | {r.get('book_tokens') or 'n/a'} "
              f"| {r.get('ondemand_tokens') if r.get('ondemand_tokens') is not None else 'n/a'} "
              f"| {r['cache_bytes'] / 2**20:.1f} MiB | {'yes' if r['right'] else 'no'} "
              f"| {'yes' if r['quote_holds_fact'] else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
