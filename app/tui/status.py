"""The reader's status line: ingestion progress and the memory gauge.

Kept apart from the screen so the numbers (tokens, tokens/s, ETA, RSS) are
formatted in one place, and tests can replace the RSS source with a fixed
number (snapshots must not depend on this process's memory). The gauge
compares RSS with the RAM cap the session was planned for (``set_cap``
once the engine has made its plan: the settings' cap, or the default one).
"""
from __future__ import annotations

import math
from typing import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

MB = 1024 * 1024


def fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_progress(tokens: int, tokens_per_s: float | None, eta_s: float | None) -> str:
    parts = [f"{tokens:,} tok"]
    if tokens_per_s:
        parts.append(f"{tokens_per_s:,.0f} tok/s")
    parts.append(f"ETA {fmt_eta(eta_s)}")
    return " · ".join(parts)


class Eta:
    """Time left, from a moving average of seconds per unit of work (issue #22 item 6).

    Units are tokens (reading) or fractions of the job (summaries). The
    average is over *work done*, each interval weighing by the work in it
    (``1 - exp(-work / horizon)``), not over wall-clock ticks, and the clock
    only runs between samples of one stretch of work: ``pause()`` (a
    question, a pause) makes the next sample start a new interval, so time
    spent answering never counts as time spent reading.
    """

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self.seconds_per_unit: float | None = None
        self._last: tuple[float, float] | None = None  # (work done, time) of the last sample

    def pause(self) -> None:
        self._last = None

    def add(self, done: float, now: float) -> None:
        """A sample: ``done`` units so far (cumulative) at time ``now`` (seconds)."""
        if self._last is not None:
            work, dt = done - self._last[0], now - self._last[1]
            if work > 0 and dt >= 0:
                rate = dt / work
                a = 1.0 - math.exp(-work / self.horizon)
                old = self.seconds_per_unit
                self.seconds_per_unit = rate if old is None else old + a * (rate - old)
            elif work < 0:  # started over
                self.seconds_per_unit = None
        self._last = (done, now)

    def eta(self, remaining: float | None) -> float | None:
        """Seconds for ``remaining`` units; None before two samples."""
        if remaining is None or self.seconds_per_unit is None:
            return None
        return max(0.0, remaining) * self.seconds_per_unit

    @property
    def per_second(self) -> float | None:
        s = self.seconds_per_unit
        return 1.0 / s if s else None


def fmt_ram(rss_bytes: int, cap_mb: int | None) -> str:
    used = rss_bytes / MB
    return f"RAM {used:,.0f}/{cap_mb:,} MB" if cap_mb else f"RAM {used:,.0f} MB"


class StatusBar(Horizontal):
    """[progress bar] state · tokens · tok/s · ETA   [RAM gauge] RAM n MB."""

    def __init__(self, rss: Callable[[], int], cap_mb: int | None, **kw) -> None:
        super().__init__(**kw)
        self._rss = rss
        self.cap_mb = cap_mb
        self._warned = False
        self.state: tuple[str, float | None] = ("", None)  # the last set_state

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, show_percentage=False, id="ingest-bar")
        yield Label("", id="ingest-stats")
        yield ProgressBar(total=100, show_eta=False, show_percentage=False, id="ram-bar")
        yield Label("", id="ram")

    def on_mount(self) -> None:
        self._show_gauge()
        self.update_ram()
        self.set_interval(1.0, self.update_ram)

    def on_resize(self) -> None:
        self._show_gauge()

    def _show_gauge(self) -> None:
        """The RAM bar beside its numbers from 100 columns; narrower, the numbers alone
        (the state text gets the room: at 80x24 it must say tok/s and ETA)."""
        self.query_one("#ram-bar").display = bool(self.cap_mb) and self.outer_size.width >= 100

    def set_cap(self, cap_mb: int | None) -> None:
        """The cap the session's RAM plan was made for."""
        if cap_mb == self.cap_mb:
            return
        self.cap_mb = cap_mb
        self._warned = False
        self._show_gauge()
        self.update_ram()

    def set_state(self, text: str, progress: float | None = None) -> None:
        self.state = (text, progress if progress is not None else self.state[1])
        self.query_one("#ingest-stats", Label).update(text)
        if progress is not None:
            self.query_one("#ingest-bar", ProgressBar).update(progress=round(progress * 100, 1))

    def update_ram(self) -> None:
        try:
            rss = self._rss()
        except Exception:  # noqa: BLE001 - a gauge must never take the app down
            return
        label = self.query_one("#ram", Label)
        label.update(fmt_ram(rss, self.cap_mb))
        if self.cap_mb:
            frac = rss / (self.cap_mb * MB)
            self.query_one("#ram-bar", ProgressBar).update(progress=min(100.0, frac * 100))
            over = frac > 1.0
            label.set_class(over, "-over")
            if over and not self._warned:
                self._warned = True
                self.app.notify(f"memory use ({rss / MB:,.0f} MB) is above the RAM cap "
                                f"({self.cap_mb:,} MB)", severity="warning")
