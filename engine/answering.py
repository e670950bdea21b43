"""Answering a question about a Session's book: units placed, the prompt, generation.

``Answering`` is the part of ``engine.session.Session`` that runs once per
question (issue #21 split Session by job): look the question up (BM25 over
the units' text, then the attention keys, lexicon.py and units.py), place
the chosen memory units next to the question (read ones from their files,
unread ones prefilled on demand, unread.py), lay out the prompt with an
answer stem (stems.py, prompt.py), generate (llm.py) and clean up so the
book's sequence ends as it was. ``Answer`` is what it returns.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .errors import BookpotError
from .evidence import raw_words
from .evidence import words as evidence_words
from .llm import Sampler, generate
from .loops import first_sentence_end, looping, said_again
from .rss import peak_rss_bytes
from .stems import answer_stem

NOT_SAID = "The book does not seem to say."


def usable(own: str, question: str, stem: str | None) -> bool:
    """Whether the model's own words (after the stem) say something: a word
    or number that neither the question nor the stem brought."""
    return bool(evidence_words(own) - evidence_words(question + " " + (stem or "")))


def check_question(question: str) -> None:
    """Raise ``BookpotError`` when ``question`` holds no letter or digit
    ("", blanks, "?"): nothing to look up, and the model would answer
    whatever the document's end suggests."""
    if not any(c.isalnum() for c in question):
        raise BookpotError("the question has no words: type what you want to know")


def whole_words(text: str) -> str:
    """``text`` without its last word when that word may still go on (no space,
    punctuation or end after it yet): what a streamed answer has surely said."""
    return re.sub(r"\w+$", "", text)


@dataclass
class Answer:
    text: str
    citations: list[dict]
    stats: object  # engine.session.Stats
    partial: bool = False  # asked before ingestion finished
    answered: bool = True  # False: the model said nothing usable; text is NOT_SAID
    stem: str | None = None  # the answer's first words, written by bookpot (stems.py)
    model_text: str = ""  # stem + what the model said, even when not usable
    passages: list = field(default_factory=list)  # memory units placed next to the question
    from_unread: bool = False  # some of those units come from parts of the book not read yet



class Answering:
    """Mixed into ``engine.session.Session``; see the module docstring."""

    def ask_stream(self, question: str, *, max_tokens: int = 200, temperature: float = 0.0,
                   cancel: Callable[[], bool] | None = None) -> Iterator[str]:
        """Stream the answer; afterwards ``self.last_answer`` holds it all.

        The prompt is the document (the window, or pot + the question's
        memory units placed next to it), the question as typed, and an
        answer stem derived from it (stems.py; ``self.use_stem``), so the
        model continues a sentence that can only be finished by the fact.
        The stem is streamed first, with the first piece that says something
        the question did not (until then pieces are held back). The
        first token can be neither a blank line nor the end of text
        (``generate(must_start=True)``). Greedy decoding on a small model
        often says its last sentence again and again: the answer stops as
        soon as a sentence repeats an earlier one or a block of tokens comes
        three times in a row (``loops``), and the final text keeps one copy.

        Afterwards the units, question and answer are removed: sequence 0
        ends exactly as it was. ``last_answer.citations`` starts with 1-3
        quotes (evidence.py); when the model said nothing usable,
        ``last_answer.answered`` is False and its text is ``NOT_SAID``.
        """
        check_question(question)
        t0 = time.perf_counter()
        base = self.n_past
        stem = answer_stem(question) if self.use_stem else None
        suffix = self.fmt.suffix(self.model, question, stem)
        if base + len(suffix) + 8 > self.ctx.n_ctx:
            raise BookpotError("the question is too long for the room left in the window")
        sampler = Sampler(self.model.n_vocab, temperature=temperature)
        st = self.stats
        st.start_answer()
        parts: list[str] = []
        n_gen = 0
        shown = 0  # pieces streamed so far
        t_first = None
        used: list[dict] = []
        try:
            at = base + self._load_units(question, base, used)
            max_tokens = min(max_tokens, self.ctx.n_ctx - at - len(suffix))
            self.ctx.decode(suffix, at, logits="last")
            for piece in generate(self.ctx, at + len(suffix), max_tokens=max_tokens, sampler=sampler,
                                  stop=self.fmt.stop, cancel=cancel, must_start=True):
                if t_first is None:
                    t_first = time.perf_counter()
                    self.stats.ttft_s = t_first - t0
                n_gen += 1
                ended = False
                if stem and self.one_sentence:
                    so_far = "".join(parts)
                    end = first_sentence_end(so_far + piece, max(0, len(so_far) - 4))
                    if end >= 0 and evidence_words(so_far + piece):
                        piece = (so_far + piece)[len(so_far):end] if end > len(so_far) else ""
                        ended = True
                parts.append(piece)
                # Nothing is shown until the model's words say something the
                # question did not: a non-answer never streams half a sentence.
                # Only whole words count: " keep" may yet become " keeper", a word of the question.
                if shown < len(parts) and (shown or usable(whole_words("".join(parts)), question, stem)):
                    if not shown and stem:
                        yield stem
                    yield "".join(parts[shown:])
                    shown = len(parts)
                if ended:
                    break
                if any(c in piece for c in ".!?"):
                    text = "".join(parts)
                    at_repeat = said_again((stem or "") + text) - len(stem or "")
                    if at_repeat >= 0:
                        parts[:] = [text[:at_repeat]]
                        break
                period = looping(parts)
                if period:
                    del parts[-2 * period:]
                    break
            if not shown and usable("".join(parts), question, stem):  # the answer's last word said it
                if stem:
                    yield stem
                yield "".join(parts)
            self.stats.max_position = max(self.stats.max_position, at + len(suffix) + n_gen - 1)
        finally:
            # Forget units, question and answer: the document stays as it was.
            self.ctx.seq_rm(0, base, -1)
            sampler.close()
            own = "".join(parts)
            answered = usable(own, question, stem)
            text = ((stem or "") + own).strip() if answered else NOT_SAID
            if t_first is not None and n_gen > 1:
                self.stats.gen_tokens_per_s = (n_gen - 1) / max(time.perf_counter() - t_first, 1e-9)
            self.stats.answer_tokens = n_gen
            self.stats.units_loaded = used
            self.stats.decoded_tokens += len(suffix) + n_gen
            t_ev = time.perf_counter()
            quotes = self.quotes(question, own if answered else "", stem, used)
            self.stats.evidence_s = time.perf_counter() - t_ev
            self.stats.peak_rss_bytes = peak_rss_bytes()
            citations = quotes + [c for c in self.cite(question, own, used)
                                  if c["locator"] not in {q["locator"] for q in quotes}]
            self.last_answer = Answer(text, citations, self.stats, partial=not self.finished,
                                      answered=answered, stem=stem, model_text=((stem or "") + own).strip(),
                                      passages=self.passages(used), from_unread=self.stats.units_unread > 0)

    def ask(self, question: str, **kw) -> Answer:
        for _ in self.ask_stream(question, **kw):
            pass
        return self.last_answer

    def _load_units(self, question: str, base: int, used: list[dict]) -> int:
        """Look up and place the question's units at ``base``..; return positions used.

        Also when nothing was dropped (the whole book is in the window): the
        passage placed again next to the question is what the model answers
        from best (issue #18: 8/9 with the passage beside the question
        against 5/9 with the whole document alone).
        """
        if self.units is None or self.unit_cfg.k <= 0 or not self._n_units():
            return 0
        dropped = self.stats.distillations or self.stats.evictions
        if not (dropped or self._unread()) and not self.units_in_window:
            return 0
        t0 = time.perf_counter()
        ranked = self._lookup(question, base)
        chosen = self._with_neighbours(ranked, self.unit_cfg.k)
        self.stats.lookup_s = time.perf_counter() - t0
        self._prefill_unread([uid for run in chosen for uid, _, _ in run], base)
        at = base
        for run in chosen:  # weakest run first, the best last: nearest the question
            for uid, score, rank in run:
                if uid < len(self.units.units):
                    how = self.units.place(self.ctx, uid, at)
                else:
                    how = self._place_unread(uid, at)
                at += self._unit_len(uid)
                used.insert(0, {"unit": uid, "score": round(score, 4), "rank": rank, "how": how})
        used.sort(key=lambda u: u["rank"])
        self.stats.decoded_tokens += sum(self._unit_len(u["unit"]) for u in used
                                         if u["how"] in ("rebuilt", "recomputed"))
        self.stats.units_rebuilt = self.units.rebuilt
        self.stats.units_unread = sum(1 for u in used if u["unit"] >= len(self.units.units))
        self.stats.max_position = max(self.stats.max_position, at - 1)
        return at - base

    def _lookup(self, question: str, base: int) -> list[tuple[int, float]]:
        """Every candidate unit for ``question``, best first: [(uid, score)].

        BM25 over the units' text first (lexicon.py), then the units that
        only the question's pre-RoPE queries found against the units'
        representative keys (InfLLM). Measured on the 16K natural-question
        documents (bench/RESULTS.md): BM25 ranks the fact's unit first for
        26 of 27 questions, the attention keys for none; fusing the two by
        reciprocal rank loaded it for 20 of 27, BM25 first for 27 of 27.
        The keys still serve questions none of whose words is in the book.
        """
        depth = max(64, 16 * self.unit_cfg.k)
        by_keys = []
        if self.units.units:  # the keys of units read so far; before any read there are none to score
            q_tokens = self.model.tokenize(question)[: self.ctx.n_batch] or [self.model.bos]
            queries = np.zeros((len(self.units.layers), len(q_tokens), self.model.n_embd), dtype=np.float32)
            self.ctx.tap.capture(queries, self.units.layers, "Q", len(q_tokens))
            try:
                self.ctx.decode(q_tokens, base, logits="none")
            finally:
                self.ctx.tap.end_capture()
                self.ctx.seq_rm(0, base, -1)
            self.stats.decoded_tokens += len(q_tokens)
            by_keys = self.units.top(queries, depth)
        if not self.lexical_lookup:
            by_words = []
        elif self._unread():  # the whole book's units, read or not (textpass.py)
            by_words = self.text.search(raw_words(question), depth)
        else:
            by_words = self.lexicon.search(raw_words(question), depth, below=len(self.units.units))
        seen = {uid for uid, _ in by_words}
        return by_words + [(uid, score) for uid, score in by_keys if uid not in seen]

    def _with_neighbours(self, ranked: list[tuple[int, float]], k: int) -> list[list[tuple[int, float, int]]]:
        """At most ``k`` units: the best one with its neighbours, then the next best.
        Returned as runs of consecutive units in reading order, weakest run first.

        ``neighbours`` 1 (the default) loads the unit before the best one: a
        unit's index row holds the previous unit's last words (lexicon.OVERLAP),
        so a fact cut by a boundary matches the later unit, and the pair
        brings it back whole with the best unit still last, next to the
        question. With 2 the next unit follows it too (measured: a 6K pass-key
        book then lost its key, the filler after it standing between the key
        and the question; with 0 or 1 it answered).
        """
        if not ranked:
            return []
        n = self._n_units()
        rank_of = {uid: r for r, (uid, _) in enumerate(ranked)}
        score_of = dict(ranked)
        best = ranked[0][0]
        pick = [best]
        for nb in (best - 1, best + 1)[: self.neighbours]:
            if 0 <= nb < n and len(pick) < k:
                pick.append(nb)
        for uid, _ in ranked[1:]:
            if len(pick) >= k:
                break
            if uid not in pick:
                pick.append(uid)
        runs: list[list[int]] = []
        for uid in sorted(pick):
            if runs and runs[-1][-1] == uid - 1:
                runs[-1].append(uid)
            else:
                runs.append([uid])
        runs.sort(key=lambda run: -min(rank_of.get(u, 10**9) for u in run))
        return [[(u, score_of.get(u, 0.0), rank_of.get(u, len(ranked))) for u in run] for run in runs]
