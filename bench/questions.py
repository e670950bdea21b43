"""Natural questions (issue #18): bookpot beside plain llama.cpp, per length.

The documents and the 40 questions come from tests/natural.py: real prose
(the GNU manuals Debian installs under /usr/share/info) with invented facts
inside, and each question typed as a person would. At 3K tokens 8 documents
x 5 facts, at 16K 3 documents (TXT, PDF, EPUB) x 13-14 facts, at 64K and
128K one TXT with all 40; the same 40 questions at every length.

For every question it runs ``BOOKPOT ask DOC QUESTION --json -q`` with a
cache directory of its own per document under bench/out/ (the first
question reads the document; later ones reopen its cached state), and, in
the same run, plain llama.cpp (llama-cpp-python's ``Llama``, greedy, window
8192): the document's text as bookpot's reader extracts it -- all of it, or
its last window where it does not fit -- then "\\n" and the question as typed
(``completion``), and the same through the model's chat template (``chat``).
Both plain styles keep one prefill per document (llama-cpp-python reuses
the KV prefix the questions share).

Scores per length and system: answer accuracy (an accepted answer appears in
the answer as whole words, case and punctuation ignored), empty answers
(``answer.strip() == ""``), median time to first token (bookpot's
``stats.ttft_s``; plain: first streamed chunk), and where bookpot's JSON has
them: evidence accuracy (a ``citations[].quote`` holds the fact's evidence
key), ``answered: false`` count, and lookup hit rate (the key is in the text
of ``passages[]``, or, before bookpot reported passages, in the loaded
memory units' tokens read back from the cache; n/a when the document was read
whole). Missing fields are n/a, never wrong.

Resumable: every answer is appended to bench/out/questions-TAG.jsonl as soon
as it is known; a rerun skips what is there. At the end a Markdown table is
printed and everything is saved to bench/out/questions-TAG.json.

    taskset -c 1 .venv/bin/python bench/questions.py --threads 1 --tag baseline
    .venv/bin/python bench/questions.py --lengths 3k --limit 5 --tag quick
    .venv/bin/python bench/questions.py --prompt-style chat --plain none --tag chat
    .venv/bin/python bench/questions.py --bookpot /other/.venv/bin/bookpot --tag other
    .venv/bin/python bench/questions.py --lengths 3k --phrasing requests --tag requests

Exit 2 with one line when the manuals are missing or BOOKPOT is not a program.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DOCS = OUT / "docs" / "questions"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import natural  # noqa: E402 - found through the sys.path lines above
from common import machine  # noqa: E402

N_CTX = 8192
QUESTION_ROOM = 256  # tokens kept free after the document for the question (and chat template)


def _args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bookpot", default=str(ROOT / ".venv" / "bin" / "bookpot"), metavar="PATH",
                    help="the bookpot command to measure (default: this checkout's .venv)")
    ap.add_argument("--lengths", default="3k,16k", help="comma list of 3k,12k,16k,64k,128k (default 3k,16k)")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N questions per length")
    ap.add_argument("--prompt-style", choices=("completion", "chat"), default=None,
                    help="passed to bookpot (default: its own choice)")
    ap.add_argument("--plain", default="completion,chat",
                    help="plain llama.cpp prompt styles to run beside: completion,chat | completion | none")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for bookpot and plain llama.cpp")
    ap.add_argument("--model", default=None, metavar="NAME|PATH", help="passed to bookpot (default model if unset)")
    ap.add_argument("--bookpot-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for bookpot ask (repeatable), e.g. --bookpot-arg=--units=8")
    ap.add_argument("--plain-max-tokens", type=int, default=64)
    ap.add_argument("--no-bookpot", action="store_true", help="plain llama.cpp only")
    ap.add_argument("--cache", default=None, metavar="NAME",
                    help="share bookpot's cache bench/out/questions-NAME-cache between runs (default: the tag's)")
    ap.add_argument("--phrasing", choices=("questions", "requests"), default="questions",
                    help="the facts' questions as typed, or as requests (tests/natural.py REQUESTS: 'Tell me ...')")
    ap.add_argument("--tag", default="run", help="names the outputs: bench/out/questions-TAG.{jsonl,json,log}")
    return ap.parse_args()


class Log:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "a")  # noqa: SIM115 - open for the whole run

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


# ------------------------------------------------------------------ documents
def write_doc(doc: natural.Document) -> Path:
    """Write ``doc`` under bench/out/docs/questions/ unless the same one is there
    (an unchanged file keeps its cached state in bookpot's cache)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(doc.text().encode()).hexdigest()[:16]
    side = DOCS / f"{doc.name}.json"
    path = DOCS / f"{doc.name}.{doc.fmt}"
    if path.exists() and side.exists() and json.loads(side.read_text()).get("digest") == digest:
        return path
    doc.write(DOCS)
    side.write_text(json.dumps({"digest": digest, "placed": [p.__dict__ for p in doc.placed]}))
    return path


def doc_text(path: Path) -> str:
    """The document's text as bookpot's reader extracts it (segments joined by newlines)."""
    from bookpot.engine.readers import open_document

    return "\n".join(seg.text for seg in open_document(str(path)).segments())


# ------------------------------------------------------------------ plain llama.cpp
class Plain:
    """Plain llama.cpp, greedy: one Llama for the run, the KV prefix reused between questions."""

    def __init__(self, model_path: str, threads: int | None, max_tokens: int):
        import llama_cpp
        import llama_cpp.llama_cpp as C
        import plain_llama  # tests/plain_llama.py: the AMX workaround bookpot uses too

        C.llama_model_default_params = plain_llama._params
        try:
            kw = {"n_threads": threads, "n_threads_batch": threads} if threads else {}
            self.llm = llama_cpp.Llama(model_path, n_ctx=N_CTX, n_batch=512, verbose=False, **kw)
        finally:
            C.llama_model_default_params = plain_llama._orig_params
        self.max_tokens = max_tokens
        self._window: dict[str, tuple[str, bool]] = {}

    def window(self, path: Path) -> tuple[str, bool]:
        """(text, whole): the document, or its last window of N_CTX - room tokens."""
        key = str(path)
        if key not in self._window:
            text = doc_text(path)
            toks = self.llm.tokenize(text.encode(), add_bos=False, special=False)
            fit = N_CTX - QUESTION_ROOM - self.max_tokens
            if len(toks) <= fit:
                self._window = {key: (text, True)}
            else:
                tail = self.llm.detokenize(toks[-fit:]).decode("utf-8", "replace")
                self._window = {key: (tail, False)}
        return self._window[key]

    def ask(self, path: Path, question: str, style: str) -> dict:
        text, whole = self.window(path)
        t0 = time.perf_counter()
        ttft = None
        pieces = []
        if style == "completion":
            stream = self.llm.create_completion(text + "\n" + question, max_tokens=self.max_tokens,
                                                temperature=0.0, stream=True)
            for ch in stream:
                ttft = ttft if ttft is not None else time.perf_counter() - t0
                pieces.append(ch["choices"][0]["text"])
        else:
            stream = self.llm.create_chat_completion(
                [{"role": "user", "content": text + "\n\n" + question}],
                max_tokens=self.max_tokens, temperature=0.0, stream=True)
            for ch in stream:
                ttft = ttft if ttft is not None else time.perf_counter() - t0
                pieces.append(ch["choices"][0]["delta"].get("content") or "")
        return {"answer": "".join(pieces), "ttft_s": round(ttft, 3) if ttft is not None else None,
                "wall_s": round(time.perf_counter() - t0, 2), "whole": whole}

    def detokenize(self, toks) -> str:
        return self.llm.detokenize(list(toks)).decode("utf-8", "replace")


# ------------------------------------------------------------------ bookpot
def run_bookpot(a, path: Path, question: str, cache: Path) -> dict:
    cmd = [a.bookpot, "ask", str(path), question, "--json", "-q", "--cache-dir", str(cache)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.prompt_style:
        cmd += ["--prompt-style", a.prompt_style]
    if a.model:
        cmd += ["--model", a.model]
    cmd += a.bookpot_arg
    t0 = time.perf_counter()
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    rec = {"cmd": " ".join(shlex.quote(c) for c in cmd), "rc": r.returncode,
           "wall_s": round(time.perf_counter() - t0, 2)}
    if r.returncode != 0:
        rec["error"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        return rec
    try:
        rec["json"] = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rec["error"] = f"no JSON on stdout: {r.stdout[-200:]!r}"
    return rec


def units_text(cache: Path, loaded: list, detok) -> str | None:
    """The text of the memory units bookpot loaded, read back from its cache
    (units.jsonl + tokens.i32); None when that cannot be done."""
    try:
        import numpy as np

        idx = next(cache.rglob("units.jsonl"))
        rows = {d["id"]: d for d in map(json.loads, idx.read_text().splitlines())}
        ids = sorted(int(u["unit"]) for u in loaded)
        toks_file = idx.parent / "tokens.i32"
        parts, prev = [], None
        for uid in ids:
            d = rows[uid]
            toks = np.fromfile(toks_file, dtype=np.int32, count=d["n"], offset=4 * d["tok0"])
            text = detok(toks.tolist())
            parts.append(("" if prev is not None and uid == prev + 1 else " ... ") + text)
            prev = uid
        return "".join(parts)
    except Exception:  # noqa: BLE001 - the cache layout is bookpot's: unreadable means n/a
        return None


def score_bookpot(fact: natural.Fact, rec: dict, cache: Path, detok) -> dict:
    out = {"rc": rec["rc"], "wall_s": rec["wall_s"], "error": rec.get("error")}
    j = rec.get("json")
    if j is None:
        out.update(answer="", right=False, empty=False)
        return out
    ans = j.get("answer") or ""
    st = j.get("stats") or {}
    out.update(answer=ans, right=natural.answer_ok(fact, ans), empty=ans.strip() == "",
               ttft_s=st.get("ttft_s"), mode=st.get("mode"), doc_tokens=st.get("doc_tokens"),
               cached=st.get("cached"), ingest_s=st.get("ingest_s"), prompt_style=st.get("prompt_style"),
               units_loaded=[u.get("unit") for u in st.get("units_loaded") or []])
    if "answered" in j:
        out["answered"] = bool(j["answered"])
    cits = j.get("citations") or []
    out["citations"] = cits
    if any("quote" in c for c in cits):
        out["evidence"] = any(natural.holds_evidence(fact, c.get("quote") or "") for c in cits)
    out["stem"], out["model_text"] = j.get("stem"), j.get("model_text")
    if "passages" in j:
        ps = sorted(j["passages"] or [], key=lambda p: p.get("unit", 0))
        texts = [p.get("text") or "" for p in ps]
        out["passages"] = texts
        if texts:  # consecutive units joined as the book has them, others apart
            joined = "".join(("" if i and ps[i].get("unit") == ps[i - 1].get("unit", -2) + 1 else " ... ") + t
                             for i, t in enumerate(texts))
            out["hit"] = natural.holds_evidence(fact, joined)
            out["hit_source"] = "passages"
    elif st.get("units_loaded"):
        text = units_text(cache, st["units_loaded"], detok)
        if text is not None:
            out["hit"] = natural.holds_evidence(fact, text)
            out["hit_source"] = "units"
            out["units_text"] = text
    return out


# ------------------------------------------------------------------ summary
def summarize(items: list[dict]) -> list[dict]:
    rows = []
    keys = []
    for it in items:
        k = (it["length"], it["system"])
        if k not in keys:
            keys.append(k)
    order = list(natural.LENGTHS)
    keys.sort(key=lambda k: (order.index(k[0]), k[1] != "bookpot", k[1]))
    for length, system in keys:
        its = [i for i in items if i["length"] == length and i["system"] == system]
        n = len(its)
        ttfts = [i["ttft_s"] for i in its if i.get("ttft_s") is not None]
        ev = [i["evidence"] for i in its if "evidence" in i]
        hits = [i["hit"] for i in its if "hit" in i]
        answered = [i["answered"] for i in its if "answered" in i]
        rows.append({
            "length": length, "system": system, "n": n,
            "right": sum(i["right"] for i in its), "empty": sum(i["empty"] for i in its),
            "errors": sum(1 for i in its if i.get("error")),
            "ttft_median_s": round(statistics.median(ttfts), 2) if ttfts else None,
            "ttft_max_s": round(max(ttfts), 2) if ttfts else None,
            "evidence": [sum(ev), len(ev)] if ev else None,
            "not_answered": [sum(1 for x in answered if not x), len(answered)] if answered else None,
            "hit": [sum(hits), len(hits)] if hits else None,
            "wall_s": round(sum(i.get("wall_s") or 0 for i in its), 1),
        })
    return rows


def table(rows: list[dict]) -> str:
    def frac(v):
        return "n/a" if v is None else f"{v[0]}/{v[1]}"

    lines = ["| length | system | right | empty | evidence | not answered | lookup hit | TTFT median (max) s | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pct = f"{r['right']}/{r['n']} ({100 * r['right'] / r['n']:.0f}%)" if r["n"] else "0/0"
        ttft = "n/a" if r["ttft_median_s"] is None else f"{r['ttft_median_s']:.2f} ({r['ttft_max_s']:.2f})"
        err = f" ({r['errors']} errors)" if r["errors"] else ""
        lines.append(f"| {r['length']} | {r['system']} | {pct}{err} | {r['empty']} | {frac(r['evidence'])} | "
                     f"{frac(r['not_answered'])} | {frac(r['hit'])} | {ttft} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def main() -> int:
    a = _args()
    if not natural.prose_available():
        print(f"questions: the GNU manuals are missing from {natural.INFO_DIR} "
              "(Debian: apt-get install --reinstall coreutils sed grep diffutils findutils gzip)", file=sys.stderr)
        return 2
    if not a.no_bookpot and not os.access(a.bookpot, os.X_OK):
        print(f"questions: {a.bookpot} is not an executable bookpot", file=sys.stderr)
        return 2
    lengths = [x.strip().lower() for x in a.lengths.split(",") if x.strip()]
    bad = [x for x in lengths if x not in natural.LENGTHS]
    if bad:
        print(f"questions: unknown length {bad[0]!r}; choose from {', '.join(natural.LENGTHS)}", file=sys.stderr)
        return 2
    plain_styles = [] if a.plain == "none" else [s for s in a.plain.split(",") if s]
    jsonl = OUT / f"questions-{a.tag}.jsonl"
    log = Log(OUT / f"questions-{a.tag}.log")
    cache_root = OUT / f"questions-{a.cache or a.tag}-cache"
    done = {}
    if jsonl.exists():
        for line in jsonl.read_text().splitlines():
            try:
                it = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            done[(it["length"], it["doc"], it["fact"], it["system"])] = it
    bp_system = "bookpot" + (f"-{a.prompt_style}" if a.prompt_style else "")
    log(f"start tag={a.tag} lengths={lengths} limit={a.limit} bookpot={a.bookpot} plain={plain_styles} "
        f"threads={a.threads} done={len(done)} affinity={sorted(os.sched_getaffinity(0))}")

    from bookpot.models import DEFAULT_MODEL
    from bookpot.models.fetch import model_path

    mpath = a.model if a.model and os.path.exists(a.model) else str(model_path(a.model or DEFAULT_MODEL))
    plain = None

    def get_plain():
        nonlocal plain
        if plain is None:
            plain = Plain(mpath, a.threads, a.plain_max_tokens)
        return plain

    out = open(jsonl, "a")  # noqa: SIM115 - appended to per answer for the whole run
    docs_info = []
    t_run = time.perf_counter()
    length_wall: dict[str, float] = {}
    for label in lengths:
        t_len = time.perf_counter()
        allowed = {f.id for f in natural.FACTS[: a.limit]} if a.limit else None
        for doc in natural.grid([label])[label]:
            facts = [f for f in doc.facts() if allowed is None or f.id in allowed]
            path = write_doc(doc)
            docs_info.append({"length": label, "doc": doc.name, "fmt": doc.fmt, "path": str(path.relative_to(ROOT)),
                              "placed": [p.__dict__ for p in doc.placed]})
            if not facts:
                continue
            cache = cache_root / doc.name
            systems = ([] if a.no_bookpot else [bp_system]) + [f"plain-{s}" for s in plain_styles]
            for system in systems:
                for fact in facts:
                    key = (label, doc.name, fact.id, system)
                    if key in done:
                        continue
                    question = natural.REQUESTS[fact.id] if a.phrasing == "requests" else fact.question
                    base = {"length": label, "doc": doc.name, "fmt": doc.fmt, "fact": fact.id, "kind": fact.kind,
                            "question": question, "system": system,
                            "depth": next(p.depth for p in doc.placed if p.fact == fact.id)}
                    if system == bp_system:
                        rec = run_bookpot(a, path, question, cache)
                        detok = get_plain().detokenize
                        it = {**base, **score_bookpot(fact, rec, cache, detok), "cmd": rec["cmd"]}
                    else:
                        r = get_plain().ask(path, question, system.split("-", 1)[1])
                        it = {**base, **r, "right": natural.answer_ok(fact, r["answer"]),
                              "empty": r["answer"].strip() == ""}
                    done[key] = it
                    out.write(json.dumps(it, ensure_ascii=False) + "\n")
                    out.flush()
                    log(f"{label} {doc.name} {fact.id} {system}: {'RIGHT' if it['right'] else 'wrong'} "
                        f"{it.get('wall_s')}s ttft={it.get('ttft_s')} hit={it.get('hit', '-')} "
                        f"ev={it.get('evidence', '-')} {it['answer'][:70]!r}"
                        + (f" ERROR {it['error']}" if it.get("error") else ""))
        length_wall[label] = round(time.perf_counter() - t_len, 1)
        log(f"length {label} done in {length_wall[label]:.0f} s (this invocation)")
    items = [it for it in done.values() if it["length"] in lengths
             and (a.limit is None or it["fact"] in {f.id for f in natural.FACTS[: a.limit]})]
    rows = summarize(items)
    for d in docs_info:  # what bookpot said about each document (first answer that reports it)
        its = [i for i in items if i["doc"] == d["doc"] and i.get("doc_tokens")]
        if its:
            d.update(doc_tokens=its[0]["doc_tokens"], mode=its[0].get("mode"),
                     ingest_s=round(max(i.get("ingest_s") or 0 for i in its), 1))
    md = table(rows)
    print(md)
    log("table\n" + md)
    commit = subprocess.run(["git", "-C", str(Path(a.bookpot).resolve().parent.parent.parent), "rev-parse",
                             "--short", "HEAD"], check=False, capture_output=True, text=True).stdout.strip()
    data = {"tag": a.tag, "args": vars(a), "argv": sys.argv, "machine": machine(), "bookpot_commit": commit,
            "model": mpath, "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "wall_s_this_invocation": round(time.perf_counter() - t_run, 1), "length_wall_s": length_wall,
            "prose": {"manuals": natural.MANUALS, "dir": str(natural.INFO_DIR)},
            "summary": rows, "docs": docs_info, "items": items}
    tmp = OUT / f"questions-{a.tag}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    tmp.replace(OUT / f"questions-{a.tag}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
