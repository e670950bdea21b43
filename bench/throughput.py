"""Ingest throughput: the pot against raw llama.cpp prefill and the full route.

Side by side: each run is a pair started together, one process pinned to
each core with one thread (``taskset -c 0`` / ``-c 1``), and the cores are
swapped every round, so both sides of a ratio meet the same machine:

- ``pot``: ``bookpot ingest DOC --mode pot --pot-tokens 2048 --no-units
  --no-cache`` (n_ctx 2560, n_batch 512, NuC on) -> stats.ingest_tokens_per_s
  (tokenizing, decoding, scoring and distilling included);
- ``raw``: llama-cpp-python's low-level API in a fresh process, the same
  document's tokens fed in n_batch 512 pieces into a context of the pot's
  n_ctx, the KV cleared whenever the next piece would not fit (only decode
  time counted; logits of the last token per piece), flash attention off as
  bookpot runs it (the attention tap needs it off);
- ``full``: the same raw prefill into a context as long as the document
  (nothing cleared: attention over the whole growing KV), flash attention
  left to llama.cpp (auto). bookpot's own ``--mode full`` refuses books
  longer than the trained window (8K), so at 32K this is the full route's
  cost measured on llama.cpp directly.

Pairs: pot | raw and pot | full, per length and round (``--pairs raw`` for
pot | raw only). ``--pot-args`` adds bookpot flags to the pot side, e.g.
``--pot-args=--no-nuc --tag=-nonuc`` to see what NuC's logits cost.

    .venv/bin/python bench/throughput.py           # 8K and 32K, 2 rounds (~40 min)
    .venv/bin/python bench/throughput.py --quick   # 8K, 1 round
    .venv/bin/python bench/throughput.py --lengths 8192 --rounds 2 --pairs raw --pot-args=--no-nuc --tag=-nonuc

Writes bench/out/throughput[-quick][TAG].json.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import OUT, PYTHON, doc, logger, machine, run_cli, save

POT_TOKENS = 2048
RESERVE = 512


def raw_worker(path: str, n_ctx: int, n_batch: int, threads: int, fa: str) -> None:
    """Plain llama.cpp prefill of a document through a bounded context."""
    import llama_cpp
    import llama_cpp.llama_cpp as C

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tests"))
    from bookpot.engine.llm import use_extra_buffer_types
    from bookpot.models import resolve
    from bookpot.engine.rss import peak_rss_bytes

    C.llama_backend_init()
    mp = C.llama_model_default_params()
    mp.use_extra_bufts = use_extra_buffer_types()  # AMX segfaults on this CPU
    model = C.llama_model_load_from_file(str(resolve("smollm2-135m")).encode(), mp)
    vocab = C.llama_model_get_vocab(model)
    text = open(path, encoding="utf-8").read().encode()
    buf = (C.llama_token * (len(text) + 8))()
    n_tok = C.llama_tokenize(vocab, text, len(text), buf, len(text) + 8, True, False)
    tokens = list(buf[:n_tok])
    cp = C.llama_context_default_params()
    if n_ctx <= 0:  # the whole document: the full route
        n_ctx = (len(tokens) // 256 + 2) * 256
    cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, n_batch, n_batch
    cp.n_threads = cp.n_threads_batch = threads
    if fa == "off":
        cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
    ctx = C.llama_init_from_model(model, cp)
    mem = C.llama_get_memory(ctx)
    batch = C.llama_batch_init(n_batch, 0, 1)
    n_past = clears = 0
    t0 = time.perf_counter()
    for start in range(0, len(tokens), n_batch):
        part = tokens[start:start + n_batch]
        if n_past + len(part) > n_ctx:
            C.llama_memory_clear(mem, True)
            n_past = 0
            clears += 1
        batch.n_tokens = len(part)
        for i, t in enumerate(part):
            batch.token[i] = t
            batch.pos[i] = n_past + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(part) - 1
        if C.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")
        n_past += len(part)
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens": len(tokens), "seconds": dt, "tokens_per_s": len(tokens) / dt,
                      "clears": clears, "n_ctx": C.llama_n_ctx(ctx), "flash_attn": fa,
                      "peak_rss_bytes": peak_rss_bytes(), "llama_cpp_python": llama_cpp.__version__}))


def run_raw(path, n_ctx, threads, fa, log, cpu: str | None = None) -> dict:
    cmd = [PYTHON, __file__, "--raw-worker", str(path), "--n-ctx", str(n_ctx), "--threads", str(threads),
           "--fa", fa]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    line = " ".join(cmd)
    log(f"[{time.strftime('%H:%M:%S')}] rc={r.returncode} {time.perf_counter() - t0:.0f}s {line}")
    if r.returncode != 0:
        return {"cmd": line, "rc": r.returncode, "error": r.stderr[-500:]}
    return {"cmd": line, "rc": 0, "result": json.loads(r.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="8K tokens, one round")
    ap.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="threads per process (one process per core)")
    ap.add_argument("--raw-worker")
    ap.add_argument("--n-ctx", type=int, default=POT_TOKENS + RESERVE)
    ap.add_argument("--fa", default="auto")
    ap.add_argument("--pairs", default="raw,full", help="what pot is paired with: raw, full, or raw,full")
    ap.add_argument("--pot-args", default="", help="extra bookpot ingest flags for the pot side")
    ap.add_argument("--tag", default="", help="suffix for the output files")
    a = ap.parse_args()
    if a.raw_worker:
        return raw_worker(a.raw_worker, a.n_ctx, 512, a.threads, a.fa)
    lengths = a.lengths or ([8192] if a.quick else [8192, 32768])
    rounds = a.rounds or (1 if a.quick else 2)
    tag = ("-quick" if a.quick else "") + a.tag
    log = logger(OUT / f"throughput{tag}.log")
    out_json = OUT / f"throughput{tag}.json"
    data = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": a.threads,
            "pinned": "one process per core, cores swapped each round", "pot_args": a.pot_args, "runs": []}
    pot_extra = shlex.split(a.pot_args)
    partners = [p for p in a.pairs.split(",") if p]
    t = a.threads
    methods = {
        "pot": lambda d, cpu: run_cli(["ingest", str(d), "--mode", "pot", "--pot-tokens", str(POT_TOKENS),
                                       "--ram-cap", "512M", "--no-units", "--no-cache", "--threads", str(t), *pot_extra],
                                      log, cpu=cpu),
        "raw": lambda d, cpu: run_raw(d, POT_TOKENS + RESERVE, t, "off", log, cpu),
        "full": lambda d, cpu: run_raw(d, 0, t, "auto", log, cpu),
    }
    pair_id = 0
    for rnd in range(rounds):
        cores = ("0", "1") if rnd % 2 == 0 else ("1", "0")
        for n in lengths:
            d = doc(n, 0.5, 11111)
            for pair in [("pot", p) for p in partners]:
                with ThreadPoolExecutor(2) as pool:
                    recs = list(pool.map(lambda mc: methods[mc[0]](d, mc[1]), zip(pair, cores)))
                for name, cpu, rec in zip(pair, cores, recs):
                    res = rec.get("result", {})
                    tps = res.get("ingest_tokens_per_s", res.get("tokens_per_s"))
                    data["runs"].append({"round": rnd, "pair": pair_id, "method": name, "length": n, "cpu": cpu,
                                         "tokens_per_s": tps, "tokens": res.get("doc_tokens", res.get("tokens")),
                                         "n_ctx": res.get("n_ctx"), "peak_rss_bytes": res.get("peak_rss_bytes"),
                                         "cmd": rec["cmd"], "rc": rec["rc"], "error": rec.get("error")})
                pair_id += 1
                data["summary"] = summarize(data["runs"])
                data["uptime_end"] = machine()["uptime"]
                save(out_json, data)
    log(f"summary: {json.dumps(data['summary'])}")


def summarize(runs) -> dict:
    """Median tokens/s per method and length, and the median of each pair's own ratio."""
    import statistics

    by: dict[str, list[float]] = {}
    pairs: dict[int, dict[str, dict]] = {}
    for r in runs:
        if r["tokens_per_s"]:
            by.setdefault(f"{r['method']}@{r['length']}", []).append(r["tokens_per_s"])
            pairs.setdefault(r["pair"], {})[r["method"]] = r
    ratios: dict[str, list[float]] = {}
    for p in pairs.values():
        if "pot" in p and len(p) == 2:
            other = next(m for m in p if m != "pot")
            ratios.setdefault(f"pot/{other}@{p['pot']['length']}", []).append(
                p["pot"]["tokens_per_s"] / p[other]["tokens_per_s"])
    return {"median_tokens_per_s": {k: statistics.median(v) for k, v in by.items()},
            "ratios": {k: {"median": statistics.median(v), "each": [round(x, 3) for x in v]}
                       for k, v in ratios.items()}}


if __name__ == "__main__":
    main()
