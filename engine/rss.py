"""Resident memory of this process, as the kernel counts it.

``peak_rss_bytes`` is the kernel's high-water mark (VmHWM): the figure a
RAM cap is judged by. It includes the mapped model weights that were
touched, so it is what a user's ``top`` or an OOM killer would see.
"""
from __future__ import annotations

import resource


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: ru_maxrss is KiB on Linux/BSD
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024


def current_rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    return (kb or 0) * 1024
