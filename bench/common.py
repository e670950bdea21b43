"""Shared helpers for the bench scripts: run the CLI, make documents, record
the machine, and draw a line chart (PNG with matplotlib, ``pip install -e .[bench]``;
else a small hand-written SVG).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
DOCS = OUT / "docs"
VENV = ROOT / ".venv" / "bin"
BOOKPOT = str(VENV / "bookpot")
PYTHON = str(VENV / "python")

sys.path.insert(0, str(ROOT / "tests"))
from passkey import QUESTION, keys, passkey_text  # noqa: E402,F401


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "uptime": uptime()}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def loadavg() -> float:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return -1.0


def doc(n_tokens: int, depth: float, key: int) -> Path:
    """A pass-key document on disk (cached by its parameters)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    p = DOCS / f"pk_{n_tokens}_{int(round(depth * 100)):03d}_{key}.txt"
    if not p.exists():
        p.write_text(passkey_text(n_tokens, depth, key))
    return p


def run_cli(args: list[str], log, cpu: str | None = None) -> dict:
    """Run bookpot with ``args`` (+ --json -q); return the parsed JSON or an error record.

    ``cpu``: a taskset CPU list to pin the run to (side-by-side runs).
    """
    cmd = [BOOKPOT, *args, "--json", "-q"]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    line = " ".join(shlex.quote(a) for a in cmd)
    t0 = time.perf_counter()
    load0 = loadavg()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rec = {"cmd": line, "rc": r.returncode, "wall_s": round(wall, 2),
           "load_before": load0, "load_after": loadavg()}
    if r.returncode == 0:
        rec["result"] = json.loads(r.stdout.strip().splitlines()[-1])
    else:
        rec["error"] = (r.stderr.strip().splitlines() or [""])[-1]
    log(f"[{time.strftime('%H:%M:%S')}] rc={r.returncode} {wall:.0f}s load={rec['load_after']:.1f} {line}")
    return rec


def logger(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        f.write(msg + "\n")
        f.flush()

    return log


def save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (the kernel's high-water mark) and anonymous bytes of ``pid``."""
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    try:  # anonymous memory (heap, KV, buffers) apart from the mapped model file
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Anonymous:"):
                out["anon"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def manifest_tokens(cache: Path) -> int:
    """Tokens read so far by an ingestion into ``cache`` (its last checkpoint's manifest)."""
    best = 0
    for m in cache.glob("books/*/manifest.json"):
        try:
            best = max(best, int(json.loads(m.read_text()).get("doc_tokens", 0)))
        except (OSError, ValueError):
            pass
    return best


def sampled_run(cmd: list[str], cache: Path, *, every: float = 5.0, on_sample=None) -> dict:
    """Run ``cmd`` (a bookpot ingest with ``BOOKPOT_CACHE_DIR=cache``), sampling its memory.

    Because a book streams, the high-water mark when the reader is at token
    N is the peak of a book N tokens long: one run gives peak RSS against
    length. Tokens come from the cache's manifest (a checkpoint every 30 s).
    Returns {"samples": [{t, rss, hwm, anon, tokens}], "rc", "wall_s",
    "result" | "error"}.
    """
    env = dict(os.environ, BOOKPOT_CACHE_DIR=str(cache))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec: dict = {"cmd": " ".join(shlex.quote(c) for c in cmd), "samples": []}
    while p.poll() is None:
        m = proc_memory(p.pid)
        if m:
            rec["samples"].append({"t": round(time.monotonic() - t0, 1), "rss": m.get("VmRSS", 0),
                                   "hwm": m.get("VmHWM", 0), "anon": m.get("anon", 0),
                                   "tokens": manifest_tokens(cache)})
            if on_sample is not None:
                on_sample(rec)
        time.sleep(every)
    out, err = p.communicate()
    rec["rc"] = p.returncode
    rec["wall_s"] = round(time.monotonic() - t0, 1)
    if p.returncode == 0:
        rec["result"] = json.loads(out.strip().splitlines()[-1])
    else:
        rec["error"] = (err.strip().splitlines() or [""])[-1]
    return rec


def plot(path: Path, title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[float, float]]],
         *, xlog2: bool = True, ymin: float | None = 0.0, ymax: float | None = None,
         hline: tuple[float, str] | None = None) -> Path:
    """A PNG via matplotlib when importable, else a hand-written SVG line chart."""
    try:
        import matplotlib  # noqa: F401

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4))
        for name, pts in series.items():
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 40 else None, label=name)
        if xlog2:
            ax.set_xscale("log", base=2)
        if hline:
            ax.axhline(hline[0], ls="--", color="gray", label=hline[1])
        ax.set_title(title), ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
        ax.set_ylim(ymin, ymax)
        ax.legend()
        out = path.with_suffix(".png")
        fig.savefig(out, dpi=80, bbox_inches="tight")
        return out
    except ImportError:
        return _svg(path.with_suffix(".svg"), title, xlabel, ylabel, series, xlog2, ymin, ymax, hline)


def _svg(out, title, xlabel, ylabel, series, xlog2, ymin, ymax, hline):
    import math

    W, H, L, R, T, B = 640, 400, 70, 150, 40, 50
    tx = (lambda x: math.log2(x)) if xlog2 else (lambda x: x)
    xs = [p[0] for pts in series.values() for p in pts] or [1]
    ys = [p[1] for pts in series.values() for p in pts] + ([hline[0]] if hline else []) or [0]
    x0, x1 = tx(min(xs)), tx(max(xs))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0 = min(ys) if ymin is None else ymin
    y1 = max(ys) if ymax is None else ymax
    if y1 == y0:
        y1 = y0 + 1
    y1 += (y1 - y0) * 0.05 if ymax is None else 0
    px = lambda x: L + (tx(x) - x0) / (x1 - x0) * (W - L - R)  # noqa: E731
    py = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)  # noqa: E731
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
         f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
         f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>',
         f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 {(T + H - B) / 2})">{ylabel}</text>']
    for x in sorted(set(xs)):
        lab = f"{x / 1024:g}K" if xlog2 and x >= 1024 else f"{x:g}"
        s.append(f'<line x1="{px(x):.1f}" y1="{H - B}" x2="{px(x):.1f}" y2="{H - B + 5}" stroke="black"/>'
                 f'<text x="{px(x):.1f}" y="{H - B + 18}" text-anchor="middle">{lab}</text>')
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        s.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>'
                 f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    if hline:
        s.append(f'<line x1="{L}" y1="{py(hline[0]):.1f}" x2="{W - R}" y2="{py(hline[0]):.1f}" '
                 f'stroke="gray" stroke-dasharray="5,4"/>')
        s.append(f'<text x="{W - R + 8}" y="{py(hline[0]) + 4:.1f}" fill="gray">{hline[1]}</text>')
    for i, (name, pts) in enumerate(series.items()):
        c = colors[i % len(colors)]
        pts = sorted(pts)
        if len(pts) > 1:
            d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            s.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            s.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{c}"/>')
        ly = T + 10 + i * 18
        s.append(f'<rect x="{W - R + 10}" y="{ly - 8}" width="12" height="4" fill="{c}"/>'
                 f'<text x="{W - R + 28}" y="{ly - 2}">{name}</text>')
    s.append("</svg>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(s))
    return out
