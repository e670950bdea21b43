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

