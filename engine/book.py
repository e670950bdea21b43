"""Reading a book through the cache: reopen at once, resume after a kill.

``read(session, reader, cache)`` is what the CLI calls instead of
``session.ingest`` when the book's state can be saved (the catalyst is
generic, so the pot serves every question). Under the book's lock it loads
the last checkpoint: a finished book needs no prefill at all; an
interrupted one skips the chunks already in the checkpoint and carries on.
While reading it checkpoints every ``interval`` seconds and at the end.

``Reading`` is the same in steps, for a reader that stops for questions
(the TUI): ``open()`` takes the lock and restores, ``ingest()`` reads on
until the end or until ``cancel()`` (``Session.ingest`` stops between
chunks, losing nothing, and carries on with the same segments next time),
``save_now()`` checkpoints at once, ``close()`` checkpoints an unfinished
book and lets the lock go. The lock is held from ``open()`` until the book
is read to its end or closed, questions in between included, so another
process never reads the same book at the same time.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Callable

from .bookcache import BookCache

CHECKPOINT_S = float(os.environ.get("BOOKPOT_CHECKPOINT_S", "30"))


class Reading:
    """One book being read into ``session`` through ``cache`` (which may be None)."""

    def __init__(self, session, segments, cache: BookCache | None, *,
                 on_wait: Callable[[], None] | None = None, on_note: Callable[[str], None] | None = None,
                 interval: float = CHECKPOINT_S) -> None:
        self.session, self.segments, self.cache = session, segments, cache
        self.on_wait, self.on_note, self.interval = on_wait, on_note, interval
        self._lock: contextlib.ExitStack | None = None
        self._saved: tuple | None = None  # (chunks_done, finished) at the last checkpoint; None: none yet
        self._last = time.monotonic()

    @property
    def held(self) -> bool:
        """The book's lock is ours (so checkpoints are written)."""
        return self._lock is not None

    def open(self, cancel: Callable[[], bool] | None = None) -> bool:
        """Take the book's lock and restore its last checkpoint; True when it was read to the end.

        A finished book is restored with no prefill (``stats.cached``) and
        the lock is let go at once. ``cancel`` stops waiting for another
        holder of the lock (``store.LockCancelled``).
        """
        session, cache = self.session, self.cache
        if cache is None:
            return False
        stack = contextlib.ExitStack()
        stack.enter_context(cache.lock(wait=self.on_wait, cancel=cancel))
        self._lock = stack
        try:
            session.lexicon.reopen()  # the file as the last holder of the lock left it
            saved = cache.load()
            if cache.damaged and self.on_note:
                self.on_note(cache.damaged)
            if saved is not None:
                try:
                    session.restore(saved.header, saved.arrays, saved.kv_path)
                except Exception as e:  # a state that does not fit this session: start over
                    if self.on_note:
                        self.on_note(f"the saved state could not be used ({e}); reading the book again")
                    cache.discard()
                    saved = None
            if saved is None:
                cache.discard()  # leftovers of a run that never checkpointed must not mix with this one
                session.lexicon.reset_reading()  # the text pass's index stays (textpass.py)
            else:
                self._saved = self._mark()
        except BaseException:
            self.close(save=False)
            raise
        if saved is not None and session.finished:
            session.stats.cached = True
            self.close(save=False)
            return True
        if saved is not None:
            session.stats.resumed_from_tokens = session.stats.doc_tokens
            if self.on_note and session.stats.doc_tokens:
                self.on_note(f"resuming after {session.stats.doc_tokens:,} tokens read before")
        self._last = time.monotonic()
        return False

    def ingest(self, *, progress=None, cancel: Callable[[], bool] | None = None):
        """Read on until the end of the book or ``cancel()``; checkpoint every ``interval`` s.

        At the end the state is saved and the lock let go. An exception
        leaves the last checkpoint as it was (call ``close(save=False)``).
        """
        after = self._after_chunk if self.held else None
        stats = self.session.ingest(self.segments, progress=progress, cancel=cancel, after_chunk=after)
        if self.session.finished:
            self.close()
        return stats

    def _after_chunk(self, session) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.save_now()

    def save_now(self) -> None:
        """Checkpoint now if the lock is ours and something was read since the last one."""
        if self.held and self._saved != self._mark() and (self.session.chunks_done or self.session.finished):
            self.cache.save(self.session)
            self._saved = self._mark()
        self._last = time.monotonic()

    def _mark(self) -> tuple:
        return (self.session.chunks_done, self.session.finished)

    def close(self, save: bool = True) -> None:
        """Checkpoint what was read (unless ``save`` is False) and let the lock go."""
        if self._lock is None:
            return
        try:
            if save:
                self.save_now()
        finally:
            stack, self._lock = self._lock, None
            stack.close()


def read(session, segments, cache: BookCache | None, *, progress=None,
         cancel: Callable[[], bool] | None = None, on_wait: Callable[[], None] | None = None,
         on_note: Callable[[str], None] | None = None, interval: float = CHECKPOINT_S):
    """Ingest ``segments`` into ``session``, through ``cache`` when given."""
    if cache is None:
        return session.ingest(segments, progress=progress, cancel=cancel)
    reading = Reading(session, segments, cache, on_wait=on_wait, on_note=on_note, interval=interval)
    if reading.open():
        return session.stats
    try:
        stats = reading.ingest(progress=progress, cancel=cancel)
    except BaseException:
        reading.close(save=False)
        raise
    reading.close()  # stopped by cancel(): checkpoint where it stopped
    return stats
