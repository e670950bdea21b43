"""A document's KV cache in one context, ready for many questions.

Sequence 0 of the context holds, at compact positions 0..n-1:

    prompt prefix | document tokens (as many as the mode keeps)

A question appends ``suffix(question)`` after that, the answer streams, and
then everything from the question on is removed again, so the next question
finds the document exactly as ingestion left it.

Routing (EdgeInfinite): a document that fits the pot runs plain: every
token stays (``stats.mode == "full"``). When it would not fit, the mode
decides what to drop: ``pot`` (and ``auto``) distils the pot InfiniPot-style
(see pot.py), ``truncate`` keeps the most recent tokens, ``streaming`` keeps
4 "sink" tokens of the document plus the most recent ones (StreamingLLM,
llama.cpp's context shift) — all under the same budget, so every method is
measured by the same code. Every kept token remembers its locator, so
answers can cite pages.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from . import pot as pot_mod
from . import prompt as prompt_mod
from .errors import BookpotError
from .llm import Context, Model, Sampler, generate
from .readers.base import Locator, Segment
from .rss import peak_rss_bytes
from .tokens import token_chunks

MODES = ("auto", "full", "pot", "truncate", "streaming")
SINK_TOKENS = 4


@dataclass
class Progress:
    tokens: int
    progress: float  # 0..1 of the document
    tokens_per_s: float
    locator: Locator | None


@dataclass
class Stats:
    doc_tokens: int = 0
    kept_tokens: int = 0
    chars: int = 0
    ingest_s: float = 0.0
    ingest_tokens_per_s: float = 0.0
    ttft_s: float | None = None
    answer_tokens: int = 0
    gen_tokens_per_s: float | None = None
    peak_rss_bytes: int = 0
    mode: str = "full"
    n_ctx: int = 0
    evictions: int = 0
    distillations: int = 0
    pot_tokens: int = 0
    keep_tokens: int = 0
    max_position: int = 0  # highest KV position ever used (must stay < n_ctx)
    ram_cap_bytes: int | None = None
    plan: str | None = None
    prompt_style: str = "completion"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Answer:
    text: str
    citations: list[dict]
    stats: Stats
    partial: bool = False  # asked before ingestion finished


@dataclass
class _Kept:
    """Per position of sequence 0: which token and which locator sits there."""

    tokens: list[int] = field(default_factory=list)
    loc_ids: list[int] = field(default_factory=list)
    nuc: list[float] = field(default_factory=list)  # novelty when prefilled


class Session:
    """Ingest one document into a context; answer questions about it."""

    def __init__(self, model: Model, *, prompt_style: str = "completion", mode: str = "auto",
                 n_ctx: int | None = None, threads: int | None = None,
                 reserve_tokens: int = 512, n_batch: int = 512,
                 pot: pot_mod.PotConfig | None = None, question: str | None = None) -> None:
        """``pot`` sizes the pot (default: the whole window, so only books
        longer than the window are distilled). ``question``, when known
        before ingestion, becomes the catalyst prompt (InfiniPot's CaP-Q)."""
        if mode not in MODES:
            raise BookpotError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.model = model
        self.fmt = prompt_mod.build(model, prompt_style)
        window = n_ctx or model.n_ctx_train
        self.reserve = reserve_tokens  # room for catalyst / question + answer
        tap = None
        self.pot_cfg = None
        if mode in ("auto", "pot"):
            tap, why = _tap_or_reason(model)
            if tap is not None:
                self.pot_cfg = pot or pot_mod.PotConfig(pot_tokens=window - reserve_tokens,
                                                        keep_tokens=(window - reserve_tokens) // 2)
                window = self.pot_cfg.pot_tokens + reserve_tokens
                _check_pot(self.pot_cfg, model, window, n_batch)
            elif mode == "pot":
                raise BookpotError(f"pot mode is unavailable: {why}")
        self.ctx = Context(model, n_ctx=window, n_batch=n_batch, n_threads=threads, tap=tap)
        self.mode = mode
        self.question = question
        self.stats = Stats(mode="full" if mode in ("auto", "pot") else mode, n_ctx=self.ctx.n_ctx,
                           prompt_style=prompt_style)
        if self.pot_cfg:
            self.stats.pot_tokens = self.pot_cfg.pot_tokens
            self.stats.keep_tokens = self.pot_cfg.keep_tokens
        self.locators: list[Locator] = []
        self._loc_index: dict[Locator, int] = {}
        self.kept = _Kept()
        self.finished = False
        self._prev_row_nll = None  # logits row predicting the next chunk's first token
        self._catalyst: list[int] | None = None
        self._append(self.fmt.prefix, loc_id=-1)
        self.n_prefix = len(self.fmt.prefix)

    # ------------------------------------------------------------ ingestion
    @property
    def n_past(self) -> int:
        return len(self.kept.tokens)

    @property
    def budget(self) -> int:
        """Positions the document may use: the pot, or the window minus question room."""
        if self.pot_cfg:
            return self.pot_cfg.pot_tokens
        return self.ctx.n_ctx - self.reserve

    @property
    def _scoring_nuc(self) -> bool:
        return bool(self.pot_cfg and self.pot_cfg.nuc)

    def _append(self, tokens: list[int], loc_id: int) -> None:
        if not tokens:
            return
        pos0 = self.n_past
        if self._scoring_nuc and loc_id >= 0:
            nuc = np.zeros(len(tokens), dtype=np.float32)
            if self._prev_row_nll is not None:
                nuc[0] = self._prev_row_nll(tokens[0])

            def on_logits(start, rows, tokens=tokens, nuc=nuc):
                from ..native.kernels import nll

                n = rows.shape[0]
                targets = tokens[start + 1 : start + n + 1]
                if targets:
                    nuc[start + 1 : start + 1 + len(targets)] = nll(rows[: len(targets)], np.asarray(targets))
                if start + n == len(tokens):  # the last row predicts the next chunk
                    last = rows[-1].astype(np.float64)
                    m = last.max()
                    lse = m + np.log(np.exp(last - m).sum())
                    self._prev_row_nll = lambda t, last=last, lse=lse: float(lse - last[t])

            self.ctx.decode(tokens, pos0, logits="all", on_logits=on_logits)
            self.kept.nuc.extend(nuc.tolist())
        else:
            self.ctx.decode(tokens, pos0, logits="last")
            self.kept.nuc.extend([0.0] * len(tokens))
        self.kept.tokens.extend(tokens)
        self.kept.loc_ids.extend([loc_id] * len(tokens))
        self.stats.max_position = max(self.stats.max_position, self.n_past - 1)

    def _loc_id(self, loc: Locator) -> int:
        i = self._loc_index.get(loc)
        if i is None:
            i = self._loc_index[loc] = len(self.locators)
            self.locators.append(loc)
        return i

    def ingest(self, segments: Iterable[Segment], *, progress: Callable[[Progress], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> Stats:
        """Stream the document into the KV cache, chunk by chunk.

        Resumable: when ``cancel()`` turns true ingestion stops *between*
        chunks, losing nothing; calling ``ingest`` again with the same
        ``segments`` object carries on where it stopped (a question can be
        answered in between). ``finished`` is set only when the document
        has been read to its end.
        """
        if getattr(self, "_feed_src", None) is not segments:
            self._feed_src = segments
            self._feed = token_chunks(self.model, segments, separator=self.fmt.doc_separator,
                                      max_tokens=self.ctx.n_batch, first=self.stats.doc_tokens == 0)
        t0 = time.perf_counter()
        spent = self.stats.ingest_s
        while True:
            if cancel is not None and cancel():
                break
            chunk = next(self._feed, None)
            if chunk is None:
                self.finished = True
                break
            if self.n_past + len(chunk.tokens) > self.budget:
                self._make_room(len(chunk.tokens))
            self._append(chunk.tokens, self._loc_id(chunk.locator))
            self.stats.doc_tokens += len(chunk.tokens)
            self.stats.chars += chunk.chars
            if progress is not None:
                dt = spent + time.perf_counter() - t0
                progress(Progress(self.stats.doc_tokens, chunk.progress,
                                  self.stats.doc_tokens / dt if dt > 0 else 0.0, chunk.locator))
        dt = spent + time.perf_counter() - t0
        self.stats.ingest_s = dt
        self.stats.ingest_tokens_per_s = self.stats.doc_tokens / dt if dt > 0 else 0.0
        self.stats.kept_tokens = self.n_past - self.n_prefix
        self.stats.peak_rss_bytes = peak_rss_bytes()
        return self.stats

    def _make_room(self, need: int) -> None:
        """The pot/window is full: distil or drop document tokens as the mode says."""
        mode = self.mode
        if mode == "full":
            raise BookpotError(
                f"the document is longer than the model's window ({self.ctx.n_ctx} tokens); "
                "use --mode auto"
            )
        if self.pot_cfg:
            self._distill()
            return
        if mode == "auto":
            mode = "truncate"  # no native extension: the plain fallback
        self.stats.mode = mode
        keep_head = self.n_prefix + (SINK_TOKENS if mode == "streaming" else 0)
        # Drop a quarter of the window at a time: each shift re-rotates K.
        drop = max(need + self.n_past - self.budget, self.budget // 4)
        drop = min(drop, self.n_past - keep_head)
        p0, p1 = keep_head, keep_head + drop
        self.ctx.seq_rm(0, p0, p1)
        self.ctx.seq_add(0, p1, -1, -drop)
        self._forget(slice(p0, p1))
        self.stats.evictions += 1

    def _forget(self, where) -> None:
        for name in ("tokens", "loc_ids", "nuc"):
            seq = getattr(self.kept, name)
            if isinstance(where, slice):
                del seq[where]
            else:  # a keep mask
                setattr(self.kept, name, [x for x, k in zip(seq, where) if k])

    def _distill(self) -> None:
        """One InfiniPot distillation: CaP + NuC scores, keep |C|, compact."""
        cfg = self.pot_cfg
        n = self.n_past
        if self._catalyst is None:  # the same for every distillation of this book
            self._catalyst = self.fmt.suffix(self.model, self.question or pot_mod.GENERIC_CATALYST)
        catalyst = self._catalyst
        layers = cfg.layers or range(self.model.n_layer)
        cap = pot_mod.catalyst_scores(self.ctx, n, catalyst, layers)
        self.stats.max_position = max(self.stats.max_position, n + len(catalyst) - 1)
        nuc = np.asarray(self.kept.nuc, dtype=np.float32) if cfg.nuc else None
        keep = pot_mod.select(cap, nuc, protect=min(n, self.n_prefix + cfg.sink),
                              keep=cfg.keep_tokens, alpha=cfg.alpha if cfg.nuc else 0.0)
        pot_mod.compact(self.ctx, keep)
        self._forget(keep.tolist())
        self.stats.distillations += 1
        self.stats.mode = "pot"

    # ------------------------------------------------------------ questions
    def ask_stream(self, question: str, *, max_tokens: int = 200, temperature: float = 0.0,
                   cancel: Callable[[], bool] | None = None) -> Iterator[str]:
        """Stream the answer; afterwards ``self.last_answer`` holds it all."""
        t0 = time.perf_counter()
        base = self.n_past
        suffix = self.fmt.suffix(self.model, question)
        if base + len(suffix) + 8 > self.ctx.n_ctx:
            raise BookpotError("the question is too long for the room left in the window")
        max_tokens = min(max_tokens, self.ctx.n_ctx - base - len(suffix))
        sampler = Sampler(self.model.n_vocab, temperature=temperature)
        parts: list[str] = []
        n_gen = 0
        t_first = None
        try:
            self.ctx.decode(suffix, base, logits="last")
            for piece in generate(self.ctx, base + len(suffix), max_tokens=max_tokens,
                                  sampler=sampler, stop=self.fmt.stop, cancel=cancel):
                if t_first is None:
                    t_first = time.perf_counter()
                    self.stats.ttft_s = t_first - t0
                parts.append(piece)
                n_gen += 1
                yield piece
            self.stats.max_position = max(self.stats.max_position,
                                          base + len(suffix) + n_gen - 1)
        finally:
            # Forget the question and answer: the document stays as it was.
            self.ctx.seq_rm(0, base, -1)
            sampler.close()
            text = "".join(parts).strip()
            if t_first is not None and n_gen > 1:
                self.stats.gen_tokens_per_s = (n_gen - 1) / max(time.perf_counter() - t_first, 1e-9)
            self.stats.answer_tokens = n_gen
            self.stats.peak_rss_bytes = peak_rss_bytes()
            self.last_answer = Answer(text, self.cite(question, text), self.stats,
                                      partial=not self.finished)

    def ask(self, question: str, **kw) -> Answer:
        for _ in self.ask_stream(question, **kw):
            pass
        return self.last_answer

    # ------------------------------------------------------------ citations
    def cite(self, question: str, answer: str, top: int = 3) -> list[dict]:
        """Locators whose kept text holds the answer's (and question's) words.

        Ranked by distinct answer words found (question words count half).
        A textual match over what the model actually had in its window, so
        every cited page was really in front of the model.
        """
        a_words = _content_words(answer)
        q_words = _content_words(question) - a_words
        if not a_words and not q_words:
            return []
        by_loc: dict[int, list[int]] = {}
        for tok, lid in zip(self.kept.tokens, self.kept.loc_ids):
            if lid >= 0:
                by_loc.setdefault(lid, []).append(tok)
        scored = []
        for lid, toks in by_loc.items():
            words = _content_words(self.model.detokenize(toks))
            score = len(a_words & words) + 0.5 * len(q_words & words)
            if a_words & words:
                scored.append((score, lid))
        scored.sort(key=lambda x: (-x[0], x[1]))
        return [dict(self.locators[lid].to_dict(), score=s) for s, lid in scored[:top]]

    def close(self) -> None:
        self.ctx.close()


_STOP = set("""the a an and or of to in on at for is are was were be been it its this that
these those with as by from what which who whom how why when where do does did not no yes
you your i me my we our he she they them his her their there here than then so if into
about after before again also can could would should will just only more most very""".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]{3,}", text.lower()) if w not in _STOP}


def _tap_or_reason(model: Model):
    """The native attention tap, or (None, why pot mode cannot run)."""
    from .. import native

    if not native.available():
        return None, f"bookpot's native extension is not usable ({native.reason()})"
    if model.n_swa > 0:
        return None, ("this model has sliding-window attention layers; llama.cpp keeps their KV in "
                      "a separate window cache the pot cannot score or compact "
                      "(use --mode truncate, streaming or full)")
    return native.kernels.Tap(), ""


def _check_pot(cfg: pot_mod.PotConfig, model: Model, window: int, n_batch: int) -> None:
    if window > model.n_ctx_train:
        raise BookpotError(f"a pot of {cfg.pot_tokens} tokens plus question room exceeds the "
                           f"model's trained window ({model.n_ctx_train})")
    if cfg.keep_tokens + n_batch > cfg.pot_tokens:
        raise BookpotError(f"the pot ({cfg.pot_tokens} tokens) must hold the kept tokens "
                           f"({cfg.keep_tokens}) plus one chunk ({n_batch}); use a larger --pot-tokens")
