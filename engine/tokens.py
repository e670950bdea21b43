"""Reader segments -> token chunks that remember their locator.

Each segment is tokenized on its own as plain text (never parsing special
tokens) and joined to the previous one with the prompt's separator, so the
model sees one continuous document while every token still knows which
page or chapter it came from.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Iterator

from .readers.base import Locator, Segment


@dataclass
class TokenChunk:
    tokens: list[int]
    locator: Locator
    progress: float  # fraction of the document read after this chunk
    chars: int
    text: str | None = None  # the segment's text as the reader gave it, on its first chunk


def token_chunks(model, segments: Iterable[Segment], *, separator: str = "\n",
                 max_tokens: int = 512, first: bool = True) -> Iterator[TokenChunk]:
    """Tokenize segments; split long ones into chunks of ``max_tokens``.

    Segments are joined back as the document had them: a reader that keeps
    whitespace (plain text) is reproduced exactly; between segments that
    carry none (PDF pages, EPUB chapters) goes ``separator``. Trailing
    whitespace is held back until more text follows, so the document never
    ends in blank lines (the model answers worse after "\n\n").
    ``first=False`` continues a document already begun (joins with the
    separator). Progress is interpolated across a long segment's chunks.
    """
    started = not first
    done = 0.0
    pending = ""  # whitespace held back from the end of the last segment
    for seg in segments:
        text = seg.text
        body = text.rstrip()
        if not body.strip():
            started, pending = _held(started, pending, text)
            continue
        if not started:
            body = body.lstrip()
        else:
            lead = pending if (pending or body[:1].isspace()) else separator
            body = lead + body
        started, pending = _held(started, pending, text)
        toks = model.tokenize(body, special=False)
        n_chunks = max(1, -(-len(toks) // max_tokens))
        for j, i in enumerate(range(0, len(toks), max_tokens)):
            frac = done + (seg.progress - done) * (j + 1) / n_chunks
            yield TokenChunk(toks[i : i + max_tokens], seg.locator, frac,
                             len(body) if i == 0 else 0, seg.text if i == 0 else None)
        done = seg.progress


def _held(started: bool, pending: str, text: str) -> tuple[bool, str]:
    """After segment ``text``: (the document has begun, the whitespace held back)."""
    if not text.strip():
        return started, pending + (text if started else "")
    return True, text[len(text.rstrip()):]


def chapter_streams(segments: Iterable[Segment]) -> Iterator[Segment]:
    """``segments``, each chapter's first one led by the whitespace one reading holds there.

    The summarizer tokenizes each chapter as a stream of its own
    (``token_chunks(..., first=False)``), which starts with nothing held
    back and so joins with the separator; one stream over the whole book
    joins with the whitespace that ended the previous chapter (the blank
    lines before a Markdown heading). A summary finds the KV its book's
    reading saved by book token offset and tokens (savedkv.py), so the
    chapters' streams must give the one stream's tokens: each chapter's
    first segment gets the whitespace ``token_chunks`` holds at that point
    (``_held``, its own rule). Yields as many Segments as ``segments``.
    """
    started, pending, chapter = False, "", None
    for i, seg in enumerate(segments):
        yield dataclasses.replace(seg, text=pending + seg.text) \
            if i and seg.locator.chapter != chapter and pending else seg
        chapter = seg.locator.chapter
        started, pending = _held(started, pending, seg.text)


def count_upto(model, segments: Iterable[Segment], limit: int) -> int:
    """The document's tokens as ``token_chunks`` cuts them, counting stops past ``limit``.

    Routing needs to know whether a book fits the plain context before
    reading it; a long book costs only its first ``limit`` tokens' worth of
    tokenizing (milliseconds), never a full read.
    """
    n = 0
    for chunk in token_chunks(model, segments):
        n += len(chunk.tokens)
        if n > limit:
            break
    return n
