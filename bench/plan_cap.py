"""Tiny helper: a --ram-cap string in MiB (no engine import needed)."""


def parse_cap_mib(text: str) -> float:
    t = text.strip().upper().rstrip("B").rstrip("I")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024}.get(t[-1], None)
    return float(t[:-1]) * scale if scale else float(t) / 2**20
