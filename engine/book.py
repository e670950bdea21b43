"""Reading a book through the cache: reopen at once, resume after a kill.

``read(session, reader, cache)`` is what the CLI and the TUI call instead
of ``session.ingest`` when the book's state can be saved (the catalyst is
generic, so the pot serves every question). Under the book's lock it loads
the last checkpoint: a finished book needs no prefill at all; an
interrupted one skips the chunks already in the checkpoint and carries on.
While reading it checkpoints every ``interval`` seconds and at the end.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from .bookcache import BookCache

CHECKPOINT_S = float(os.environ.get("BOOKPOT_CHECKPOINT_S", "30"))


def read(session, segments, cache: BookCache | None, *, progress=None,
         cancel: Callable[[], bool] | None = None, on_wait: Callable[[], None] | None = None,
         on_note: Callable[[str], None] | None = None, interval: float = CHECKPOINT_S):
    """Ingest ``segments`` into ``session``, through ``cache`` when given."""
    if cache is None:
        return session.ingest(segments, progress=progress, cancel=cancel)
    with cache.lock(wait=on_wait):
        saved = cache.load()
        if cache.damaged and on_note:
            on_note(cache.damaged)
        if saved is not None:
            try:
                session.restore(saved.header, saved.arrays, saved.state)
            except Exception as e:  # a state that does not fit this session: start over
                if on_note:
                    on_note(f"the saved state could not be used ({e}); reading the book again")
                cache.discard()
                saved = None
        if saved is None:
            cache.discard()  # leftovers of a run that never checkpointed must not mix with this one
        if saved is not None and session.finished:
            session.stats.cached = True
            return session.stats
        if saved is not None:
            session.stats.resumed_from_tokens = session.stats.doc_tokens
            if on_note:
                on_note(f"resuming after {session.stats.doc_tokens:,} tokens read before")
        last = time.monotonic()

        def after_chunk(s) -> None:
            nonlocal last
            if time.monotonic() - last >= interval:
                cache.save(s)
                last = time.monotonic()

        stats = session.ingest(segments, progress=progress, cancel=cancel, after_chunk=after_chunk)
        cache.save(session)
        return stats
