"""Quoted evidence: the book's own sentences under an answer, copied verbatim.

An answer from a 135M model is only as good as the passage it can be
checked against. After each answer, bookpot picks 1-3 sentences from what
was in front of the model (the memory units placed next to the question,
and the pages the window or pot holds) and cites them with their page or
chapter and their character offsets in that page's text, so a quote is
always ``page_text[start:end]`` — never a paraphrase, never a page the
model did not see.

Choosing: sentences are scored by the words they share with the answer's
own words (those the question and the stem did not bring: "47", "attic"),
weighted by rarity in the candidates, then by the question's words; a
sentence from a unit ranked high by the lookup wins ties. When the answer
said nothing usable, the question's words alone choose (the passages a
person should read).
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from dataclasses import dataclass

MAX_QUOTE = 320  # characters; a longer sentence is cut around its matching words
ANSWER_WEIGHT = 1.5  # an answer word counts this much more than a question word

_STOP = set("""the a an and or of to in on at for is are was were be been it its this that
these those with as by from what which who whom how why when where do does did not no yes
you your i me my we our he she they them his her their there here than then so if into
about after before again also can could would should will just only more most very has have had
one many much""".split())
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
# A sentence ends at . ! ? (closing quotes/brackets allowed) before white space,
# or at a blank line; a lone line break inside a PDF paragraph does not end one.
_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+|\n\s*\n")


def raw_words(text: str) -> set[str]:
    """Content words as written (lower case): what the lexicon's BM25 search takes."""
    return {w for w in _WORDS.findall(text.lower()) if w.isdigit() or (len(w) >= 3 and w not in _STOP)}


def words(text: str) -> set[str]:
    """Content words, lemmatized: letters of 3+ characters (not stop words)
    and any number, lower case ("climbed" -> "climb", "steps" -> "step")."""
    out = set()
    for w in _WORDS.findall(text.lower()):
        if w.isdigit() or (len(w) >= 3 and w not in _STOP):
            out.add(_lemma(w))
    return out


@lru_cache(maxsize=65536)
def _lemma(w: str) -> str:
    if w.isdigit() or not w.isascii():
        return w
    from lemminflect import getAllLemmas

    lem = getAllLemmas(w)
    for pos in ("VERB", "NOUN", "ADJ"):
        if pos in lem:
            return lem[pos][0]
    return w


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, leading/trailing space excluded.

    A full stop followed by a lower-case word ends no sentence ("patches,
    etc. to the list", "e.g. the"): an abbreviation, not an end.
    """
    spans = []
    pos = 0
    for m in _END.finditer(text):
        if m.group(0).count("\n") < 2 and text[m.start() - 1] == "." and text[m.end():m.end() + 1].islower():
            continue
        _add(text, pos, m.start() + len(m.group(0).rstrip()) if m.group(0).strip() else m.start(), spans)
        pos = m.end()
    _add(text, pos, len(text), spans)
    return spans


def _add(text: str, a: int, b: int, spans: list) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b - a >= 2:
        spans.append((a, b))


@dataclass
class Seen:
    """A stretch of a page that was in front of the model.

    ``loc``: the session's locator id; ``start``/``end``: character offsets
    in that page's text (the whole page when a unit could not be placed in
    it); ``rank``: 0 for the lookup's best unit, larger is weaker (pages in
    the window come after every unit).
    """

    loc: int
    start: int
    end: int
    rank: int
    source: str  # "unit" | "pot" | "window"
    held: set | None = None  # pot: the words it still holds; a sentence must share half of its own


@dataclass
class Quote:
    loc: int
    start: int
    end: int
    text: str
    score: float
    source: str


def locate(page: str, piece: str) -> tuple[int, int] | None:
    """Where ``piece`` (a unit's detokenized text) sits in ``page``, or None."""
    core = piece.strip()
    if not core:
        return None
    at = page.find(core)
    if at >= 0:
        return at, at + len(core)
    # Byte-level BPE reproduces text exactly; white space may differ at the
    # edges. Fall back to the longest stripped line of the piece.
    best = max(core.splitlines(), key=len).strip()
    if len(best) >= 20 and (at := page.find(best)) >= 0:
        return at, at + len(best)
    return None


def choose(pages: dict[int, str], seen: list[Seen], question: str, answer_words: set[str],
           k: int = 3) -> list[Quote]:
    """Up to ``k`` sentences from ``seen``, best first (see the module doc).

    ``pages``: loc -> page text; ``answer_words``: the answer's own content
    words (``words(answer) - words(question + stem)``); empty when the
    answer said nothing usable.
    """
    q_words = words(question)
    cands = []  # (sentence words, loc, a, b, rank, source)
    done: set[tuple[int, int, int]] = set()
    for s in seen:
        text = pages.get(s.loc)
        if not text:
            continue
        for a, b in sentence_spans(text):
            if b <= s.start or a >= s.end or (s.loc, a, b) in done:
                continue
            w = words(text[a:b])
            if s.held is not None and len(w & s.held) * 2 < len(w):
                continue
            done.add((s.loc, a, b))
            cands.append((w, s.loc, a, b, s.rank, s.source))
    if not cands:
        return []
    df: dict[str, int] = {}
    for w, *_ in cands:
        for x in w:
            df[x] = df.get(x, 0) + 1
    n = len(cands)

    def idf(x: str) -> float:
        return math.log(1 + n / df.get(x, n))

    scored = []
    for w, loc, a, b, rank, source in cands:
        ans = sum(idf(x) for x in answer_words & w)
        qs = sum(idf(x) for x in q_words & w)
        score = ANSWER_WEIGHT * ans + qs
        if score <= 0:
            continue
        scored.append((score - 0.01 * rank, loc, a, b, source))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    out: list[Quote] = []
    for score, loc, a, b, source in scored[:k]:
        a, b = _trim(pages[loc], a, b, answer_words | q_words)
        out.append(Quote(loc, a, b, pages[loc][a:b], round(score, 3), source))
    return out


def _trim(text: str, a: int, b: int, keep: set[str]) -> tuple[int, int]:
    """Cut a sentence longer than MAX_QUOTE to the window around its first kept word."""
    if b - a <= MAX_QUOTE:
        return a, b
    hit = a
    for m in _WORDS.finditer(text, a, b):
        if m.group(0).lower() in keep:
            hit = m.start()
            break
    lo = max(a, min(hit - MAX_QUOTE // 3, b - MAX_QUOTE))
    hi = min(b, lo + MAX_QUOTE)
    while lo > a and not text[lo - 1].isspace():  # whole words only
        lo += 1
    while hi < b and not text[hi].isspace():
        hi -= 1
    return lo, hi
