"""The engine's one door, ``bookpot.engine.open_book``, used from Python."""
from __future__ import annotations

import pytest

from conftest import ROOT

SAMPLE = ROOT / "app" / "sample" / "sample.pdf"


def test_a_bad_document_fails_before_any_model_work(tmp_path):
    from bookpot.engine import Options, open_book
    from bookpot.engine.errors import BookpotError

    # An unknown model would fail too: the document is checked first, as the CLI promises.
    with pytest.raises(BookpotError, match="no such file"):
        open_book(tmp_path / "missing.pdf", Options(model="no-such-model"))


@pytest.mark.model
def test_open_read_ask_and_reopen_from_the_cache(tmp_path, model_path):
    from bookpot.engine import Book, Options, open_book

    opts = Options(cache_dir=str(tmp_path / "cache"), threads=2)
    notes = []
    with open_book(SAMPLE, opts, on_note=notes.append) as book:
        assert isinstance(book, Book)
        stats = book.read()
        assert stats.doc_tokens > 300 and not stats.cached
        answer = book.ask("Who was the last keeper of Harrow Point? The last keeper was", max_tokens=12)
        assert "Ada" in answer.text
        assert answer.citations and all(c["locator"].startswith("p. ") for c in answer.citations)
        pieces = list(book.ask_stream("Who was the last keeper of Harrow Point? The last keeper was",
                                      max_tokens=12))
        streamed, final = "".join(pieces).strip(), book.last_answer.text.strip()
        assert final and streamed.startswith(final[:10])
    # The same options reopen the book from its saved state, with no prefill.
    with open_book(SAMPLE, opts, model=book.model) as again:
        assert again.read().cached
