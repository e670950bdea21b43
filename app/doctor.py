"""``bookpot doctor``: what this machine, model and RAM cap give, and what to fix.

Everything is read or computed cheaply (no model is loaded): a user on a
small board runs it first to see the plan before a long ingestion.
"""
from __future__ import annotations

import os
import platform
import shutil

MiB = 1 << 20


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meminfo() -> dict:
    try:
        with open("/proc/meminfo") as f:
            return {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f}
    except OSError:
        return {}


def report(model_name: str | None, ram_cap: str | None, threads: int | None) -> tuple[list[str], list[str]]:
    """(lines, warnings)."""
    from .. import models, native
    from ..engine.llm import PINNED_LLAMA_CPP_PYTHON, default_threads
    from ..engine.plan import default_cap, make_plan, parse_size, smallest_cap
    from ..engine.errors import BookpotError

    lines, warnings = [], []
    cores = default_threads()
    mem = _meminfo()
    lines.append(f"cpu          {_cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, {cores} usable")
    lines.append(f"memory       {mem.get('MemTotal', 0) / MiB:,.0f} MiB total, "
                 f"{mem.get('MemAvailable', 0) / MiB:,.0f} MiB available, swap {mem.get('SwapTotal', 0) / MiB:,.0f} MiB")
    mdir = models.models_dir()
    probe = mdir if mdir.exists() else mdir.parent if mdir.parent.exists() else mdir.anchor
    free = shutil.disk_usage(probe).free
    lines.append(f"disk         {free / MiB:,.0f} MiB free at {mdir}")
    if free < 1024 * MiB:
        warnings.append(f"less than 1 GiB free at {mdir}: models and caches may not fit")
    try:
        import llama_cpp

        v = llama_cpp.__version__
        lines.append(f"llama.cpp    llama-cpp-python {v}" + ("" if v == PINNED_LLAMA_CPP_PYTHON else
                                                                f" (bookpot needs {PINNED_LLAMA_CPP_PYTHON})"))
        if v != PINNED_LLAMA_CPP_PYTHON:
            warnings.append("llama-cpp-python is not the pinned version: reinstall bookpot")
    except ImportError as e:
        lines.append(f"llama.cpp    not importable: {e}")
        warnings.append("llama-cpp-python is missing: reinstall bookpot")
    if native.available():
        lines.append("native       C extension loaded (attention tap, NLL): pot mode available")
    else:
        lines.append(f"native       unavailable: {native.reason()}")
        warnings.append("without the native extension --mode auto falls back to truncation")

    name = model_name or models.DEFAULT_MODEL
    try:
        path = models.resolve(name, auto_fetch=False)
        meta = models.read_metadata(path)
    except BookpotError as e:
        lines.append(f"model        {name}: {e}")
        warnings.append(str(e))
        return lines, warnings
    lines.append(f"model        {name}: {meta.architecture}, {meta.quantization}, {meta.file_size / MiB:,.0f} MiB, "
                 f"{meta.n_layer} layers, window {meta.n_ctx_train:,}, KV {meta.kv_bytes_per_token():,} B/token")
    cap = parse_size(ram_cap) if ram_cap else default_cap()
    try:
        plan = make_plan(meta, cap)
        lines.append(f"plan         {plan.describe()}")
    except BookpotError as e:
        lines.append(f"plan         {e}")
        warnings.append(f"RAM cap too low: at least {smallest_cap(meta) / MiB:,.0f} MiB is needed")
    if mem.get("MemAvailable") and cap > mem["MemAvailable"]:
        warnings.append(f"the RAM cap ({cap / MiB:,.0f} MiB) is above the memory available now")
    if threads and threads > cores:
        warnings.append(f"--threads {threads} is more than the {cores} usable cores: it will be slower")
    return lines, warnings


def run(model_name, ram_cap, threads) -> int:
    lines, warnings = report(model_name, ram_cap, threads)
    print("\n".join(lines))
    for w in warnings:
        print(f"warning      {w}")
    if not warnings:
        print("ok           nothing to fix")
    return 0
