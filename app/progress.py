"""One self-rewriting progress line on stderr, only when stderr is a terminal.

Scripts and cron jobs (no terminal) get nothing decorative: their stderr
stays free for the one-line errors they may need to log.
"""
from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressLine:
    def __init__(self, label: str, *, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = label
        self.t0 = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, p) -> None:
        """``p`` is an engine Progress: tokens, progress (0..1), tokens_per_s, locator."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and p.progress < 1.0:
            return
        self._last = now
        frac = min(1.0, max(0.0, p.progress))
        width = 24
        filled = int(frac * width)
        bar = "█" * filled + "░" * (width - filled)
        elapsed = now - self.t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0
        where = f"  {p.locator}" if p.locator is not None else ""
        line = (f"{self.label} ▕{bar}▏ {frac:4.0%}  {p.tokens:,} tok  "
                f"{p.tokens_per_s:,.0f} tok/s  ETA {_clock(eta)}{where}")
        self.stream.write("\r\x1b[2K" + line[:200])
        self.stream.flush()
        self._shown = True

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
