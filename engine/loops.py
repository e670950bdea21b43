"""Telling when a small model's greedy output has started to go round in circles.

Greedy decoding on a 135M model often ends an answer by saying its last
sentence again until the token limit, and the copies can differ only in
where the model puts line breaks (it imitates the document's wrapping), so
two checks: the same block of tokens several times in a row, and a sentence
that repeats an earlier one once whitespace is ignored. Both are cheap
enough to run after every token.
"""
from __future__ import annotations

import re

_SENTENCE = re.compile(r"[^.!?]*[.!?]+")


def looping(pieces: list[str], *, min_span: int = 12, repeats: int = 3) -> int:
    """The period in tokens when the tail of ``pieces`` (one per token) is one
    block said over and over, else 0.

    A block of ``p`` tokens must repeat at least ``repeats`` times and cover
    at least ``min_span`` tokens (so "very very" is fine, a third identical
    sentence is not). Checked after every generated token, so a loop is
    stopped as it begins instead of running to the token limit.
    """
    n = len(pieces)
    for period in range(1, n // repeats + 1):
        times = max(repeats, -(-min_span // period))
        if period * times > n:
            break
        block = pieces[n - period:]
        if all(pieces[n - (k + 1) * period:n - k * period] == block for k in range(1, times)):
            if "".join(block).strip():
                return period
    return 0


def said_again(text: str, *, min_words: int = 5) -> int:
    """Where ``text``'s last complete sentence starts when it repeats an earlier one, else -1.

    Sentences are compared with whitespace collapsed and case folded; short
    ones ("Yes.", a 5-digit key) never count, so an answer may repeat them.
    """
    sentences = [(m.start(), " ".join(m.group(0).split()).lower()) for m in _SENTENCE.finditer(text)]
    if len(sentences) < 2:
        return -1
    start, last = sentences[-1]
    if len(last.split()) < min_words or all(s != last for _, s in sentences[:-1]):
        return -1
    return start + len(text[start:]) - len(text[start:].lstrip())


_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*(?=\s)")
_ABBREV = {"mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "e.g", "i.e", "jr", "sr", "prof", "mt", "ft"}


def first_sentence_end(text: str, start: int = 0) -> int:
    """Where the first sentence ending at or after ``start`` ends in ``text``
    (the index after its punctuation), or -1 while it goes on.

    A sentence ends at . ! ? (closing quotes allowed) followed by white
    space, not after a common abbreviation ("Mr.") or an initial ("J.").
    An answer written after a stem is one sentence: a 135M model's next
    sentences recite or invent (measured in bench/questions.py).
    """
    for m in _END.finditer(text, start):
        before = re.search(r"(\w+)\W*$", text[: m.start()])
        word = before.group(1).lower() if before else ""
        if word in _ABBREV or (len(word) == 1 and word.isalpha() and text[m.start() - 2:m.start() - 1].isupper()):
            continue
        return m.end()
    return -1
