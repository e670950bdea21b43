"""``bookpot doctor``: what this machine, model and RAM cap give, and what to fix.

Everything is read or computed cheaply (no model is loaded, nothing is
written): a user on a small board runs it first to see the plan before a
long ingestion, and where the cache will put its memory units.
"""
from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
MIN_FREE = 1 * GiB  # below this, a disk warning
# A long book, for "is there disk for its memory units": ~300 printed pages.
LONG_BOOK_TOKENS = 150_000
SYSFS = "/sys"


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


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (doctor creates nothing)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(path.anchor or "/")


def block_device(path: Path, sysfs: str | None = None) -> str | None:
    """The kernel's name of the block device holding ``path`` (``mmcblk0p2``, ``sda1``), if any."""
    try:
        st = os.stat(_existing(path))
        link = Path(sysfs or SYSFS) / "dev" / "block" / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        return Path(os.path.realpath(link)).name if link.exists() else None
    except (OSError, ValueError):
        return None


def _cache_lines(cache: Path, f16_bytes_per_token: int | None, lines: list[str], warnings: list[str]) -> None:
    """Free disk where the cache lives, what bookpot keeps there, what memory units will need.

    ``f16_bytes_per_token``: the model's K and V per token in f16; unit files
    store them compactly (engine/kvpack.py), at most ``size_ratio`` of that
    (zstd on top usually saves a little more: ``cache list`` shows the real cost).
    """
    from ..engine import kvpack
    from ..engine.store import dir_size
    from ..engine.units import default_format

    fmt = default_format()
    kv_bytes_per_token = round(f16_bytes_per_token * kvpack.size_ratio(fmt)) if f16_bytes_per_token else None

    probe = _existing(cache)
    free = shutil.disk_usage(probe).free
    used = dir_size(cache) if cache.is_dir() else 0
    dev = block_device(cache)
    lines.append(f"cache        {free / MiB:,.0f} MiB free at {cache}"
                 f"{f' ({dev})' if dev else ''}, bookpot keeps {used / MiB:,.1f} MiB there")
    if kv_bytes_per_token:
        room = free // kv_bytes_per_token
        lines.append(f"units        memory units take at most ~{kv_bytes_per_token * 1000 / MiB:,.1f} MiB of cache per "
                     f"1,000 tokens of book ({kvpack.describe(fmt)}; f16 would take "
                     f"{f16_bytes_per_token * 1000 / MiB:,.1f}): room for ~{room:,} tokens")
    if free < MIN_FREE:
        warnings.append(f"less than 1 GiB free for the cache at {cache}: "
                        "use --cache-dir (or BOOKPOT_CACHE_DIR) on a bigger disk")
    elif kv_bytes_per_token and free < LONG_BOOK_TOKENS * kv_bytes_per_token:
        warnings.append(f"the cache disk has room for the memory units of ~{free // kv_bytes_per_token:,} tokens "
                        f"only (a 300-page book is ~{LONG_BOOK_TOKENS:,}): use --cache-dir on a bigger disk")
    if dev and dev.startswith("mmcblk"):
        warnings.append(f"the cache is on an SD card or eMMC ({dev}): memory units write a lot there and wear it; "
                        "put --cache-dir (or BOOKPOT_CACHE_DIR) on a USB SSD")


def report(model_name: str | None, ram_cap: str | None, threads: int | None,
           cache_dir: str | os.PathLike | None = None) -> tuple[list[str], list[str]]:
    """(lines, warnings). ``cache_dir``: the ``--cache-dir`` given, if any."""
    from .. import models, native
    from ..engine.errors import BookpotError
    from ..engine.llm import default_threads
    from ..engine.plan import default_cap, make_plan, parse_size, smallest_cap
    from ..engine.store import cache_root
    from ..engine.version import LLAMA_CPP_PYTHON

    lines, warnings = [], []
    cores = default_threads()
    mem = _meminfo()
    machine = platform.machine()
    lines.append(f"cpu          {_cpu_model()} ({machine}), {os.cpu_count()} cores, {cores} usable")
    if machine in ("armv6l", "armv7l", "armv8l", "i686", "i386"):
        warnings.append(f"a 32-bit system ({machine}): llama.cpp is much slower there; use a 64-bit OS")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    lines.append(f"memory       {mem.get('MemTotal', 0) / MiB:,.0f} MiB total, "
                 f"{mem.get('MemAvailable', 0) / MiB:,.0f} MiB available, swap {mem.get('SwapTotal', 0) / MiB:,.0f} MiB")
    mdir = models.models_dir()
    free = shutil.disk_usage(_existing(mdir)).free
    lines.append(f"disk         {free / MiB:,.0f} MiB free at {mdir} (models)")
    if free < MIN_FREE:
        warnings.append(f"less than 1 GiB free at {mdir}: models may not fit")
    cache = cache_root(cache_dir)
    try:
        import llama_cpp

        v = llama_cpp.__version__
        lines.append(f"llama.cpp    llama-cpp-python {v}" + ("" if v == LLAMA_CPP_PYTHON else
                                                                f" (bookpot needs {LLAMA_CPP_PYTHON})"))
        if v != LLAMA_CPP_PYTHON:
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
        _cache_lines(cache, None, lines, warnings)
        _thread_warnings(threads, cores, load, warnings)
        return lines, warnings
    lines.append(f"model        {name}: {meta.architecture}, {meta.quantization}, {meta.file_size / MiB:,.0f} MiB, "
                 f"{meta.n_layer} layers, window {meta.n_ctx_train:,}, KV {meta.kv_bytes_per_token():,} B/token")
    cap = parse_size(ram_cap) if ram_cap else default_cap()
    try:
        plan = make_plan(meta, cap, unit_room=4 * 128)  # the CLI's default --units 4 --unit-tokens 128
        lines.append(f"plan         {plan.describe()}")
    except BookpotError as e:
        lines.append(f"plan         {e}")
        warnings.append(f"RAM cap too low: at least {smallest_cap(meta, unit_room=4 * 128) / MiB:,.0f} MiB is needed")
    if mem.get("MemAvailable") and cap > mem["MemAvailable"]:
        warnings.append(f"the RAM cap ({cap / MiB:,.0f} MiB) is above the memory available now")
    _cache_lines(cache, meta.kv_bytes_per_token(), lines, warnings)
    _thread_warnings(threads, cores, load, warnings)
    return lines, warnings


def _thread_warnings(threads: int | None, cores: int, load: float, warnings: list[str]) -> None:
    if threads and threads > cores:
        warnings.append(f"--threads {threads} is more than the {cores} usable cores: it will be slower")
    elif load >= cores:
        warnings.append(f"the {cores} usable cores are busy (load {load:.1f}): reading will be slower "
                        "than bookpot's figures; fewer --threads leaves room for the rest")


def run(model_name, ram_cap, threads, cache_dir=None) -> int:
    lines, warnings = report(model_name, ram_cap, threads, cache_dir)
    print("\n".join(lines))
    for w in warnings:
        print(f"warning      {w}")
    if not warnings:
        print("ok           nothing to fix")
    return 0
