"""Session behaviour the TUI relies on: pause/resume without loss."""
from __future__ import annotations

import pytest

from bookpot.engine.readers.base import Locator, Segment
from passkey import QUESTION, passkey_text


def _segments(text: str, n: int):
    size = len(text) // n
    cuts = [text.rfind(" ", 0, size * (i + 1)) + 1 for i in range(n - 1)]
    bounds = [0, *cuts, len(text)]
    for i in range(n):
        yield Segment(text[bounds[i]:bounds[i + 1]], Locator(page=str(i + 1)), (i + 1) / n)


@pytest.mark.model
def test_paused_ingestion_resumes_to_the_same_tokens_and_answer(model_path):
    from bookpot.engine.llm import Model
    from bookpot.engine.session import Session

    model = Model(model_path)
    text = passkey_text(1500, 0.4, 60606)
    whole = Session(model)
    whole.ingest(_segments(text, 6))
    assert whole.finished

    paused = Session(model)
    segs = _segments(text, 6)
    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] > 2

    paused.ingest(segs, cancel=stop_after_two)
    assert not paused.finished and 0 < paused.stats.doc_tokens < whole.stats.doc_tokens
    early = paused.ask(QUESTION, max_tokens=8)
    assert early.partial
    paused.ingest(segs)
    assert paused.finished
    assert paused.kept.tokens == whole.kept.tokens  # nothing lost, nothing doubled
    assert paused.ask(QUESTION, max_tokens=8).text == whole.ask(QUESTION, max_tokens=8).text
    whole.close()
    paused.close()



@pytest.mark.model
def test_truncate_without_units_prefills_only_the_last_window(model_path):
    """The truncation baseline: the kept tokens are exactly the book's last ones.

    Compared against ``--mode full`` over the same chunks: the truncated
    session holds the same token ids as the tail of the whole book, fills
    its budget exactly, and (the key sitting in that tail) answers it.
    """
    from bookpot.engine.llm import Model
    from bookpot.engine.session import Session

    model = Model(model_path)
    text = passkey_text(2500, 0.97, 31337)
    whole = Session(model, mode="full")
    whole.ingest(_segments(text, 10))
    short = Session(model, mode="truncate", n_ctx=1024, reserve_tokens=256, n_batch=256)
    assert short.tail_only
    short.ingest(_segments(text, 10))
    assert short.finished and short.stats.evictions > 0
    n = short.n_prefix
    doc = whole.kept.tokens[whole.n_prefix:]
    kept = short.kept.tokens[n:]
    assert len(kept) == short.budget - n < len(doc)  # the budget, filled exactly
    assert kept == doc[-len(kept):]
    assert short.stats.doc_tokens == whole.stats.doc_tokens
    assert "31337" in short.ask(QUESTION, max_tokens=8).text
    whole.close()
    short.close()
