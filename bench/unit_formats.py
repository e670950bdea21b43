"""Compact memory units: disk, recall, time to first token and reading speed per unit format.

The book is bench/units.py's multi-needle document (8 labelled pass keys
in ``--tokens`` of filler). It is read ONCE with f16 units
(``BOOKPOT_UNIT_FORMAT=f16``: llama.cpp's own files, the format before
compact units). Each compact format then gets a copy of that cache whose
unit files are re-encoded with ``kvpack.pack`` (index digests and sizes
rewritten), so every format answers from the very same pot and the very
same units and differs only in how their K and V are stored. The 8
questions are asked question by question, every format in turn, each a
fresh ``bookpot ask`` process (the same command line as bench/units.py).

Reading speed: ``--read-tokens`` of the same document, ingested from an
empty cache with f16 units and then with the default compact format, in
turn (``--read-rounds`` times), in the same run.

    .venv/bin/python bench/unit_formats.py --tokens 65536 --threads 1
    .venv/bin/python bench/unit_formats.py --tokens 16384 --formats q5_0+zstd   # quicker
    .venv/bin/python bench/unit_formats.py --convert SRC_CACHE DST_CACHE --formats k8v4+zstd
        # copy a cache read with f16 units and re-encode its units (for bench/questions.py)

Writes bench/out/unit-formats-<tokens><tag>.json (and .log).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from common import DOCS, OUT, logger, machine, run_cli, save
from units import LABELS, needle_doc, question



def convert(book_dir: Path, fmt: str) -> dict:
    """Re-encode every unit file of ``book_dir`` in ``fmt``; rewrite units.jsonl's digests and sizes."""
    from bookpot.engine import kvpack, store

    root = book_dir / "units"
    lines = (root / "units.jsonl").read_bytes().splitlines()
    out, t_pack, n = [], 0.0, 0
    for line in lines:
        d = json.loads(line)
        if d["kv"]:
            p = root / "units" / f"u{d['id']:07d}.kv"
            raw = p.read_bytes()
            t0 = time.perf_counter()
            data = kvpack.pack(raw, fmt)
            t_pack += time.perf_counter() - t0
            p.write_bytes(data)
            d["digest"], d["bytes"] = store.digest(data), len(data)
            n += 1
        out.append(json.dumps({k: d[k] for k in ("id", "tok0", "n", "loc", "kv", "digest", "bytes")}))
    (root / "units.jsonl").write_bytes("".join(x + "\n" for x in out).encode())
    return {"units": n, "pack_s_per_unit": round(t_pack / max(1, n), 4)}


def unit_bytes(book_dir: Path) -> int:
    return sum(p.stat().st_size for p in (book_dir / "units" / "units").glob("u*.kv"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=65536)
    ap.add_argument("--pot-tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--formats", default="q8_0,k8v4+zstd,q5_0,q5_0+zstd,q4_0+zstd")
    ap.add_argument("--read-tokens", type=int, default=8192)
    ap.add_argument("--read-rounds", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="keep the f16 cache of an earlier run")
    ap.add_argument("--tag", default="", help="suffix for the output files")
    ap.add_argument("--convert", nargs=2, metavar=("SRC", "DST"),
                    help="only copy cache directory SRC to DST and re-encode every book's units in --formats")
    a = ap.parse_args()
    if a.convert:
        src, dst = map(Path, a.convert)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        for book in sorted(dst.rglob("units.jsonl")):
            print(book.parent.parent, convert(book.parent.parent, a.formats.split(",")[0]))
        return
    from bookpot.engine.units import DEFAULT_FORMAT

    DOCS.mkdir(parents=True, exist_ok=True)
    text, keys = needle_doc(a.tokens)
    doc = DOCS / f"needles_{a.tokens}.txt"
    doc.write_text(text)
    base = OUT / f"unitfmt-cache-{a.tokens}"
    log = logger(OUT / f"unit-formats-{a.tokens}{a.tag}.log")
    out_json = OUT / f"unit-formats-{a.tokens}{a.tag}.json"
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "tokens": a.tokens,
            "default_format": DEFAULT_FORMAT, "formats": {}, "runs": []}
    extra = ["--pot-tokens", str(a.pot_tokens), "--catalyst", "generic", "--threads", str(a.threads)]
    f16 = base / "f16"
    if not (a.reuse and f16.is_dir()):
        shutil.rmtree(base, ignore_errors=True)
        os.environ.update(BOOKPOT_CACHE_DIR=str(f16), BOOKPOT_UNIT_FORMAT="f16")
        ing = run_cli(["ingest", str(doc), *extra], log)
        data["ingest_f16"] = {"wall_s": ing["wall_s"], "result": ing.get("result"), "error": ing.get("error")}
        save(out_json, data)
    (book_f16,) = (f16 / "books").iterdir()
    manifest = json.loads((book_f16 / "manifest.json").read_text())
    n_tok = manifest["doc_tokens"]
    formats = ["f16", *[f for f in a.formats.split(",") if f]]
    caches = {"f16": f16}
    for fmt in formats[1:]:
        c = base / fmt.replace("+", "-")
        shutil.rmtree(c, ignore_errors=True)
        shutil.copytree(f16, c)
        (book,) = (c / "books").iterdir()
        data["formats"][fmt] = convert(book, fmt)
        caches[fmt] = c
    for fmt, c in caches.items():
        (book,) = (c / "books").iterdir()
        ub = unit_bytes(book)
        rec = data["formats"].setdefault(fmt, {})
        rec.update(unit_bytes=ub, unit_bytes_per_token=round(ub / n_tok, 1),
                   book_bytes=sum(p.stat().st_size for p in book.rglob("*") if p.is_file()), doc_tokens=n_tok)
        log(f"{fmt}: {ub:,} B of unit files = {ub / n_tok:,.0f} B/token ({n_tok:,} tokens)")
    save(out_json, data)
    for label in LABELS:
        for fmt in formats:
            os.environ.update(BOOKPOT_CACHE_DIR=str(caches[fmt]), BOOKPOT_UNIT_FORMAT=fmt)
            r = run_cli(["ask", str(doc), question(label), *extra, "--max-tokens", "12"], log)
            res = r.get("result", {})
            st = res.get("stats", {})
            ans = res.get("answer", "")
            data["runs"].append({"format": fmt, "label": label, "ok": str(keys[label]) in ans, "answer": ans,
                                 "ttft_s": st.get("ttft_s"), "lookup_s": st.get("lookup_s"), "wall_s": r["wall_s"],
                                 "units_loaded": st.get("units_loaded"), "error": r.get("error")})
            save(out_json, data)
    for fmt in formats:
        runs = [r for r in data["runs"] if r["format"] == fmt]
        ttft = sorted(r["ttft_s"] for r in runs if r["ttft_s"] is not None)
        rec = data["formats"][fmt]
        rec.update(correct=sum(r["ok"] for r in runs), ttft_median_s=ttft[len(ttft) // 2] if ttft else None,
                   ttft_min_s=ttft[0] if ttft else None, ttft_max_s=ttft[-1] if ttft else None)
        log(f"{fmt}: {rec['correct']}/{len(LABELS)} correct, TTFT median {rec['ttft_median_s']} s")
    save(out_json, data)
    # reading speed: f16 and the default format in turn, each from an empty cache
    small_text, _ = needle_doc(a.read_tokens)
    small = DOCS / f"needles_{a.read_tokens}.txt"
    small.write_text(small_text)
    data["reading"] = []
    for rnd in range(a.read_rounds):
        for fmt in ("f16", DEFAULT_FORMAT):
            c = base / f"read-{fmt.replace('+', '-')}"
            shutil.rmtree(c, ignore_errors=True)
            os.environ.update(BOOKPOT_CACHE_DIR=str(c), BOOKPOT_UNIT_FORMAT=fmt)
            ing = run_cli(["ingest", str(small), *extra], log)
            st = ing.get("result") or {}
            (book,) = (c / "books").iterdir()
            data["reading"].append({"round": rnd, "format": fmt, "wall_s": ing["wall_s"],
                                    "doc_tokens": st.get("doc_tokens"), "ingest_s": st.get("ingest_s"),
                                    "tokens_per_s": st.get("ingest_tokens_per_s"),
                                    "unit_bytes": unit_bytes(book), "error": ing.get("error")})
            save(out_json, data)
            shutil.rmtree(c, ignore_errors=True)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(out_json, data)


if __name__ == "__main__":
    main()
