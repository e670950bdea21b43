"""A document's KV cache in one context, ready for many questions.

Sequence 0 of the context holds, at compact positions 0..n-1:

    prompt prefix | document tokens (as many as the mode keeps)

A question appends ``suffix(question)`` after that, the answer streams, and
then everything from the question on is removed again, so the next question
finds the document exactly as ingestion left it.

Routing (EdgeInfinite): a document that fits the pot runs plain: every
token stays (``stats.mode == "full"``). When it would not fit, the mode
decides what to drop: ``pot`` (and ``auto``) distils the pot InfiniPot-style
(see pot.py), ``truncate`` keeps the most recent tokens (without memory
units it prefills only those: the usual truncation baseline), ``streaming`` keeps
4 "sink" tokens of the document plus the most recent ones (StreamingLLM,
llama.cpp's context shift) — all under the same budget, so every method is
measured by the same code. Every kept token remembers its locator, so
answers can cite pages.
"""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from . import pot as pot_mod
from . import prompt as prompt_mod
from .errors import BookpotError
from .lexicon import Lexicon
from .llm import Context, Model
from .readers.base import Locator, Segment
from .rss import peak_rss_bytes
from .answering import NOT_SAID, Answer, Answering, usable  # noqa: F401 - Answer, NOT_SAID, usable: re-exported
from .citing import Citing
from .textpass import SINK_TOKENS, TextIndex
from .unread import UnreadParts
from .tokens import token_chunks
from .units import UnitConfig, UnitStore

MODES = ("auto", "full", "pot", "truncate", "streaming")



@dataclass
class Progress:
    tokens: int
    progress: float  # 0..1 of the document
    tokens_per_s: float
    locator: Locator | None


@dataclass
class ReadStats:
    """Reading (``Session.ingest``, the pot, eviction; or a restore from the cache)."""

    doc_tokens: int = 0
    kept_tokens: int = 0
    chars: int = 0
    ingest_s: float = 0.0
    ingest_tokens_per_s: float = 0.0
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
    prompt_style: str = "completion"  # the prompt prefix the KV was built with
    cached: bool = False  # restored from the cache, no prefill
    resumed_from_tokens: int = 0  # an interrupted ingestion resumed here
    adopted_tokens: int = 0  # read by reusing KV prefilled on demand, not decoded again
    reused_tokens: int = 0  # loaded from units the book's reading saved (savedkv.py), not decoded
    reuse_load_s: float = 0.0  # time spent loading them


@dataclass
class UnitStats:
    """Memory units saved while reading (units.py, InfLLM)."""

    units: int = 0  # memory units saved
    units_kv_bytes: int = 0
    units_without_kv: int = 0  # beyond --disk-cap: recomputed when loaded
    units_rebuilt: int = 0


@dataclass
class TextPassStats:
    """The text pass before reading (textpass.py, issue #19)."""

    book_tokens: int = 0  # the whole book's tokens, counted by the text pass (0: no pass)
    text_pass_s: float | None = None  # this run's text pass
    text_pass_tokens_per_s: float | None = None


@dataclass
class AnswerStats:
    """The last question: lookup, units placed, on-demand prefill, generation, evidence."""

    ttft_s: float | None = None
    answer_tokens: int = 0
    gen_tokens_per_s: float | None = None
    units_loaded: list = field(default_factory=list)  # [{"unit", "score", "how"}]
    lookup_s: float | None = None
    evidence_s: float | None = None  # choosing the quotes after the answer
    decoded_tokens: int = 0  # every token decoded for it (lookup, on demand, prompt, answer)
    ondemand_tokens: int = 0  # tokens of unread chunks prefilled for it
    ondemand_s: float | None = None
    units_unread: int = 0  # units placed from parts of the book not read yet


PHASES = {"read": ReadStats, "units": UnitStats, "text_pass": TextPassStats, "answer": AnswerStats}


@dataclass
class Stats(AnswerStats, TextPassStats, UnitStats, ReadStats):
    """Every figure of one session, split by phase (``PHASES``; issue #21).

    Flat on purpose for the callers (``stats.doc_tokens``) and for
    ``--json``, whose keys stay as they were; ``by_phase()`` groups them.
    Times in seconds, sizes in bytes, counts in tokens unless named.
    """

    def start_answer(self) -> None:
        """A new question: the answer phase's figures back to their defaults."""
        for f in dataclasses.fields(AnswerStats):
            setattr(self, f.name, f.default_factory() if f.default_factory is not dataclasses.MISSING
                    else f.default)

    def by_phase(self) -> dict[str, dict]:
        """``{"read": {...}, "units": {...}, "text_pass": {...}, "answer": {...}}``."""
        return {name: {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)}
                for name, cls in PHASES.items()}

    def to_dict(self) -> dict:
        return dict(self.__dict__)



@dataclass
class Catalyst:
    """A catalyst given to ``Session.ingest`` for the pot's distillations.

    ``tokens``: appended after the pot for the CaP pass (InfiniPot's
    catalyst prompt), scored by the attention it pays to each kept token
    (pot.catalyst_scores). ``after(pos)``: runs inside that pass with the
    catalyst's KV in place just before ``pos`` (the summarizer writes a
    section summary there), before the catalyst is removed.
    """

    tokens: list[int]
    after: Callable[[int], None] | None = None


@dataclass
class _Kept:
    """Per position of sequence 0: which token and which locator sits there."""

    tokens: list[int] = field(default_factory=list)
    loc_ids: list[int] = field(default_factory=list)
    nuc: list[float] = field(default_factory=list)  # novelty when prefilled


class Session(UnreadParts, Answering, Citing):
    """Ingest one document into a context; answer questions about it.

    Split by job (issue #21): answering is in answering.py, quotes and
    citations in citing.py, the parts not read yet in unread.py (mixins
    sharing this object's context and kept tokens). What stays here is
    larger than ~250 lines because it is one state machine: the kept
    tokens with their locators, the three eviction policies that share one
    budget (truncate, streaming, the pot) and the snapshot/restore that
    must see all of it at once.
    """

    def __init__(self, model: Model, *, prompt_style: str = "completion", mode: str = "auto",
                 n_ctx: int | None = None, threads: int | None = None,
                 reserve_tokens: int = 512, n_batch: int = 512,
                 pot: pot_mod.PotConfig | None = None, question: str | None = None,
                 units: UnitConfig | None = None, units_dir=None) -> None:
        """``pot`` sizes the pot (default: the whole window, so only books
        longer than the window are distilled). ``question``, when known
        before ingestion, becomes the catalyst prompt (InfiniPot's CaP-Q).
        ``units`` + ``units_dir``: save every chunk as memory units there
        and load the best ``units.k`` of them for each question; the
        context gets ``units.room()`` more cells for them."""
        if mode not in MODES:
            raise BookpotError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.model = model
        self.fmt = prompt_mod.build(model, prompt_style)
        window = n_ctx or model.n_ctx_train
        self.reserve = reserve_tokens  # room for catalyst / question + answer
        tap = None
        self.pot_cfg = None
        self.units_why = ""  # why units are off, when asked for but unavailable
        if units is not None and mode == "full":
            units = None  # nothing is ever dropped: every unit would already be in view
        if mode in ("auto", "pot") or units is not None:
            tap, why = _tap_or_reason(model)
            if tap is None and units is not None:
                self.units_why, units = why, None
        if mode in ("auto", "pot"):
            if tap is not None:
                self.pot_cfg = pot or pot_mod.PotConfig(pot_tokens=window - reserve_tokens,
                                                        keep_tokens=(window - reserve_tokens) // 2)
                window = self.pot_cfg.pot_tokens + reserve_tokens
                _check_pot(self.pot_cfg, model, window, n_batch)
            elif mode == "pot":
                raise BookpotError(f"pot mode is unavailable: {why}")
        self.window = window  # the pot (or whole window) plus question room; units come on top
        self.unit_cfg = units
        room = units.room() if units else 0
        if units and window + room > model.n_ctx_train:
            raise BookpotError(f"the pot plus {units.k} memory units of {units.unit_tokens} tokens exceed the "
                               f"model's trained window ({model.n_ctx_train}); use fewer --units or a smaller pot")
        # The llama.cpp context is made when KV work first needs it (``ctx``): a text pass, or a
        # collection looking books up, needs none (~70 ms and its KV memory saved per book).
        self._ctx: Context | None = None
        self._ctx_args = dict(n_ctx=window + room, n_batch=n_batch, n_threads=threads, tap=tap,
                              n_seq_max=2 if units else 1)
        self.n_batch = n_batch
        # Each page's text and the units' BM25 index: quotes and lookup.
        if units and units_dir:
            Path(units_dir).mkdir(parents=True, exist_ok=True)
        self.lexicon = Lexicon(Path(units_dir) / "lexicon.sqlite" if units and units_dir else None)
        self.units = UnitStore(units_dir, model, units, lexicon=self.lexicon) if units else None
        # The whole book cut and indexed before reading (textpass.py); units only.
        self.text = TextIndex(self.lexicon) if units else None
        self.use_stem = True  # answer stems (stems.py); measured in bench/questions.py
        self.units_in_window = True  # place units next to the question even when nothing was dropped
        self.lexical_lookup = True  # BM25 over the units' text first, then the attention keys' finds
        self.one_sentence = True  # with a stem, the answer ends with its first sentence
        self.neighbours = 1  # the best unit's neighbours loaded with it (0; 1: the one before; 2: both)
        self.mode = mode
        self.question = question
        self.stats = Stats(mode="full" if mode in ("auto", "pot") else mode, n_ctx=window + room,
                           prompt_style=prompt_style)
        if self.pot_cfg:
            self.stats.pot_tokens = self.pot_cfg.pot_tokens
            self.stats.keep_tokens = self.pot_cfg.keep_tokens
        self.locators: list[Locator] = []
        self._loc_index: dict[Locator, int] = {}
        self.kept = _Kept()
        self.finished = False
        self.chunks_done = 0
        self.last_progress = 0.0
        self._prev_row: np.ndarray | None = None  # logits predicting the next chunk's first token
        self.saved_kv = None  # engine.savedkv.SavedKV: chunks loaded instead of decoded (``use_saved_kv``)
        self._catalyst: list[int] | None = None
        # ``truncate`` without memory units prefills only the book's last
        # ``budget`` tokens (see ``_hold``), unless ``ingest(whole=True)``.
        self._tail_only = mode == "truncate" and units is None
        self._feed_src = None  # the segments ``ingest`` is reading, and its chunk iterator
        self._feed = None
        self._tail: deque[tuple[list[int], int]] = deque()
        self._tail_tokens = 0
        self._held_chunks = 0
        self.n_prefix = len(self.fmt.prefix)  # positions 0..n_prefix-1: the prompt prefix, never evicted
        self.kept.tokens.extend(self.fmt.prefix)  # decoded into the context when it is made (``ctx``)
        self.kept.loc_ids.extend([-1] * self.n_prefix)
        self.kept.nuc.extend([0.0] * self.n_prefix)
        self.stats.max_position = max(0, self.n_prefix - 1)

    @property
    def ctx(self) -> Context:
        """The llama.cpp context (engine/llm.py ``Context``, ``llama_init_from_model``), made on
        first use with the prompt prefix decoded at positions 0..n_prefix-1.

        Until then the Session holds no KV memory: the text pass and the
        lookup work from the tokenizer and the book's index alone. Raises
        ``ModelError`` when llama.cpp cannot make the context.
        """
        if self._ctx is None:
            ctx = Context(self.model, **self._ctx_args)
            try:
                if self.n_prefix:
                    ctx.decode(self.fmt.prefix, 0, logits="last")
            except BaseException:
                ctx.close()
                raise
            self._ctx = ctx
            self.stats.n_ctx = ctx.n_ctx
        return self._ctx

    # ------------------------------------------------------------ ingestion
    @property
    def n_past(self) -> int:
        return len(self.kept.tokens)

    @property
    def budget(self) -> int:
        """Positions the document may use: the pot, or the window minus question room."""
        if self.pot_cfg:
            return self.pot_cfg.pot_tokens
        return self.window - self.reserve

    @property
    def tail_only(self) -> bool:
        """Whether ``ingest`` prefills only the book's last ``budget`` tokens
        (``truncate`` without memory units: the usual truncation baseline)."""
        return self._tail_only

    def _read_fraction(self, reader_fraction: float) -> float:
        """How much of the book is read, 0..1: tokens read over the book's tokens
        once the text pass has counted them, else where the reader got to (a
        reader that hands a short book over in one piece is at 1.0 after its
        first chunk: the reader showed "paused 100%" at 171 of 922 tokens)."""
        t = self.text
        if t is not None and t.done and t.n_tokens:
            return min(1.0, self.stats.doc_tokens / t.n_tokens)
        return reader_fraction

    @property
    def _scoring_nuc(self) -> bool:
        return bool(self.pot_cfg and self.pot_cfg.nuc)

    def _append(self, tokens: list[int], loc_id: int) -> None:
        if not tokens:
            return
        pos0 = self.n_past
        capture = self.units is not None and loc_id >= 0
        nuc, att, keys = self._prefill(tokens, pos0, loc_id >= 0, capture)
        self.kept.tokens.extend(tokens)
        self.kept.loc_ids.extend([loc_id] * len(tokens))
        self.kept.nuc.extend(nuc.tolist() if nuc is not None else [0.0] * len(tokens))
        self.stats.max_position = max(self.stats.max_position, self.n_past - 1)
        if capture:
            sink = self.n_prefix + SINK_TOKENS - pos0
            self.units.add_chunk(self.ctx, pos0, tokens, loc_id, att, keys, skip=max(0, sink))
            self._unit_stats()

    def use_saved_kv(self, saved) -> None:
        """Load chunks from ``saved`` (engine.savedkv.SavedKV: units a reading of this book
        saved) instead of decoding them, wherever it holds every token of a chunk.

        For a session that saves no units of its own (the summarizer's): call
        before the context is made (``ctx``), which then gets the scratch
        sequence the loads go through. Raises ``RuntimeError`` otherwise.
        """
        if self._ctx is not None or self.units is not None:
            raise RuntimeError("use_saved_kv needs a session without units or a context yet")
        self.saved_kv = saved
        self._ctx_args["n_seq_max"] = 2

    def _load_saved(self, tokens: list[int], loc_id: int) -> bool:
        """The chunk ``tokens`` (book tokens from ``stats.doc_tokens`` on) into the pot's next
        positions, its saved runs loaded from ``saved_kv`` and the rest decoded, in order;
        False (decode it all) when no token of it was saved.

        Loaded tokens get no novelty score (NaN: ``_distill`` then scores by
        the catalyst alone), nor does the first token decoded after them.
        """
        if self.saved_kv is None or loc_id < 0:
            return False
        runs = self.saved_kv.runs(self.stats.doc_tokens, tokens)
        if all(pieces is None for _, _, pieces in runs):
            return False
        pos0 = self.n_past
        nuc = np.full(len(tokens), np.nan, dtype=np.float32)
        for a, b, pieces in runs:
            t0 = time.perf_counter()
            if pieces is not None and self.saved_kv.load(self.ctx, pieces, pos0 + a):
                self._prev_row = None
                self.stats.reused_tokens += b - a
                self.stats.reuse_load_s += time.perf_counter() - t0
            else:  # not saved, or its file would not load: decoded
                got = self._decode_doc(tokens[a:b], pos0 + a, True)
                nuc[a:b] = got if got is not None else 0.0
        self.kept.tokens.extend(tokens)
        self.kept.loc_ids.extend([loc_id] * len(tokens))
        self.kept.nuc.extend(nuc.tolist())
        self.stats.max_position = max(self.stats.max_position, self.n_past - 1)
        return True

    def _unit_stats(self) -> None:
        self.stats.units = len(self.units.units)
        self.stats.units_kv_bytes = self.units.kv_bytes
        self.stats.units_without_kv = self.units.without_kv

    def _prefill(self, tokens: list[int], pos0: int, doc: bool, capture: bool):
        """Decode ``tokens`` into sequence 0 at pos0..; (nuc, attention, keys).

        ``nuc``: each token's novelty (NLL, InfiniPot's NuC) when the pot
        scores it and ``doc``, else None; the last row of logits is kept in
        ``_prev_row`` for the next chunk's first token. With ``capture``
        the native tap also records the chunk's pre-RoPE keys (layers, n,
        kv_dim) and the attention each token received from the chunk's
        queries (n,), for its memory units; else both are None.
        """
        n = len(tokens)
        keys = att = None
        if capture:  # keys and received attention for this chunk's memory units
            keys = np.zeros((len(self.units.layers), n, self.units.kv_dim), dtype=np.float32)
            cell_att = np.zeros(self.ctx.cells.n_cells, dtype=np.float32)
            self.ctx.tap.capture(keys, self.units.layers, "K", n)
            self.ctx.tap.arm(cell_att, self.units.layers, n)
        try:
            nuc = self._decode_doc(tokens, pos0, doc)
        finally:
            if capture:
                self.ctx.tap.disarm()
                self.ctx.tap.end_capture()
        if capture:
            positions, scores = self.ctx.cells.by_position(cell_att, seq=0)
            att = np.zeros(n, dtype=np.float32)
            mine = (positions >= pos0) & (positions < pos0 + n)
            att[positions[mine] - pos0] = scores[mine]
        return nuc, att, keys

    def _decode_doc(self, tokens: list[int], pos0: int, doc: bool) -> np.ndarray | None:
        if self._scoring_nuc and doc:
            nuc = np.zeros(len(tokens), dtype=np.float32)
            if self._prev_row is not None:
                last = self._prev_row
                m = last.max()
                nuc[0] = float(m + np.log(np.exp(last - m).sum()) - last[tokens[0]])

            def on_logits(start, rows, tokens=tokens, nuc=nuc):
                from ..native.kernels import nll

                n = rows.shape[0]
                targets = tokens[start + 1 : start + n + 1]
                if targets:
                    nuc[start + 1 : start + 1 + len(targets)] = nll(rows[: len(targets)], np.asarray(targets))
                if start + n == len(tokens):  # the last row predicts the next chunk
                    self._prev_row = rows[-1].astype(np.float64)

            self.ctx.decode(tokens, pos0, logits="all", on_logits=on_logits)
            return nuc
        self.ctx.decode(tokens, pos0, logits="last")
        return None

    def _loc_id(self, loc: Locator) -> int:
        i = self._loc_index.get(loc)
        if i is None:
            i = self._loc_index[loc] = len(self.locators)
            self.locators.append(loc)
        return i

    def ingest(self, segments: Iterable[Segment], *, progress: Callable[[Progress], None] | None = None,
               cancel: Callable[[], bool] | None = None,
               after_chunk: Callable[["Session"], None] | None = None,
               catalyst: "Catalyst | None" = None, whole: bool = False) -> Stats:
        """Stream the document into the KV cache, chunk by chunk.

        Resumable: when ``cancel()`` turns true ingestion stops *between*
        chunks, losing nothing; calling ``ingest`` again with the same
        ``segments`` object carries on where it stopped (a question can be
        answered in between). ``finished`` is set only when the document
        has been read to its end.

        ``catalyst``: what the pot's distillations score against instead of
        the question or the generic catalyst (the summarizer passes its
        instruction and writes a section inside the catalyst's pass).
        ``whole``: prefill every token even where ``tail_only`` would hold
        all but the book's end (the summarizer summarizes every token).
        """
        if self._feed_src is not segments:
            self._feed_src = segments
            self.finished = False  # a new stream of segments is not read yet
            resuming = self.chunks_done > 0 and self._feed is None
            self._feed = token_chunks(self.model, segments, separator=self.fmt.doc_separator,
                                      max_tokens=self.ctx.n_batch,
                                      first=resuming or self.stats.doc_tokens == 0)
            if resuming:  # a restored checkpoint: the same chunks again, already in the KV
                for _ in range(self.chunks_done):
                    if next(self._feed, None) is None:
                        raise BookpotError("the document is shorter than its saved state; it changed")
        t0 = time.perf_counter()
        spent = self.stats.ingest_s
        while True:
            if cancel is not None and cancel():
                break
            chunk = next(self._feed, None)
            if chunk is None:
                self._decode_tail()
                self.finished = True
                break
            if chunk.text is not None:
                self.lexicon.add_page(self._loc_id(chunk.locator), chunk.text)
            if self._tail_only and not whole:
                self._hold(chunk.tokens, self._loc_id(chunk.locator))
            else:
                if self.n_past + len(chunk.tokens) > self.budget:
                    self._make_room(len(chunk.tokens), catalyst)
                loc_id = self._loc_id(chunk.locator)
                if not self._adopt(self.chunks_done, chunk.tokens, loc_id) \
                        and not self._load_saved(chunk.tokens, loc_id):
                    self._append(chunk.tokens, loc_id)
                self.chunks_done += 1
            self.stats.doc_tokens += len(chunk.tokens)
            self.stats.chars += chunk.chars
            self.last_progress = self._read_fraction(chunk.progress)
            if after_chunk is not None and not self._tail:
                self.stats.ingest_s = spent + time.perf_counter() - t0
                after_chunk(self)
            if progress is not None:
                dt = spent + time.perf_counter() - t0
                progress(Progress(self.stats.doc_tokens, self.last_progress,
                                  self.stats.doc_tokens / dt if dt > 0 else 0.0, chunk.locator))
        dt = spent + time.perf_counter() - t0
        self.stats.ingest_s = dt
        self.stats.ingest_tokens_per_s = self.stats.doc_tokens / dt if dt > 0 else 0.0
        self.stats.kept_tokens = self.n_past - self.n_prefix
        self.stats.peak_rss_bytes = peak_rss_bytes()
        if self.text is not None and self.text.done:
            self.stats.book_tokens = self.text.n_tokens
        return self.stats


    def _hold(self, tokens: list[int], loc_id: int) -> None:
        """``truncate`` without units: keep the chunk in RAM, not in the KV, yet.

        Only the last ``budget`` tokens of the book are ever prefilled (the
        usual truncation baseline), so a long book costs its tokenizing plus
        one window of prefill. What is held stays below one window.
        """
        self._tail.append((tokens, loc_id))
        self._tail_tokens += len(tokens)
        self._held_chunks += 1
        room = self.budget - self.n_past
        while len(self._tail) > 1 and self._tail_tokens - len(self._tail[0][0]) >= room:
            self._tail_tokens -= len(self._tail.popleft()[0])
            self.stats.evictions += 1

    def _decode_tail(self) -> None:
        """The end of the book: prefill the last ``budget`` tokens held by ``_hold``."""
        if not self._tail:
            return
        excess = self._tail_tokens - (self.budget - self.n_past)
        n_chunks = self._held_chunks
        while self._tail:
            tokens, loc_id = self._tail.popleft()
            if excess > 0:
                tokens, excess = tokens[excess:], 0
                self.stats.evictions += 1
            self._append(tokens, loc_id)
        self._tail_tokens = 0
        self.chunks_done += n_chunks
        self._held_chunks = 0

    def _make_room(self, need: int, catalyst: "Catalyst | None" = None) -> None:
        """The pot/window is full: distil or drop document tokens as the mode says."""
        mode = self.mode
        if mode == "full":
            raise BookpotError(
                f"the document is longer than the model's window ({self.ctx.n_ctx} tokens); "
                "use --mode auto"
            )
        if self.pot_cfg:
            self._distill(catalyst)
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

    def drop_document(self) -> None:
        """Empty the window down to the prompt prefix (``llama_memory_seq_rm``
        from ``n_prefix`` on), forgetting the kept tokens, their locators and
        the novelty row carried to the next chunk, so the next ``ingest``
        starts as a fresh read resumed at this point would. The summarizer
        calls it after each section; ``stats`` keep counting."""
        p = self.n_prefix
        if self.n_past > p:
            self.ctx.seq_rm(0, p, -1)
            self._forget(slice(p, None))
        self._prev_row = None

    def _distill(self, override: "Catalyst | None" = None) -> None:
        """One InfiniPot distillation: CaP + NuC scores, keep |C|, compact."""
        cfg = self.pot_cfg
        n = self.n_past
        if self._catalyst is None:  # the same for every distillation of this book
            self._catalyst = self.fmt.suffix(self.model, self.question or pot_mod.GENERIC_CATALYST)
        catalyst, then = self._catalyst, None
        if override is not None:  # summarize: the catalyst is the summary prompt
            catalyst, then = override.tokens, override.after
        layers = cfg.layers or range(self.model.n_layer)
        cap = pot_mod.catalyst_scores(self.ctx, n, catalyst, layers, then=then)
        self.stats.max_position = max(self.stats.max_position, n + len(catalyst) - 1)
        nuc = np.asarray(self.kept.nuc, dtype=np.float32) if cfg.nuc else None
        alpha = cfg.alpha if cfg.nuc else 0.0
        if nuc is not None and np.isnan(nuc).any():  # tokens loaded, not decoded (``_load_saved``)
            nuc, alpha = None, 0.0
        keep = pot_mod.select(cap, nuc, protect=min(n, self.n_prefix + cfg.sink),
                              keep=cfg.keep_tokens, alpha=alpha)
        pot_mod.compact(self.ctx, keep)
        self._forget(keep.tolist())
        self.stats.distillations += 1
        self.stats.mode = "pot"


    # ------------------------------------------------------------ save / restore
    def snapshot(self, kv_path) -> tuple[dict, dict] | None:
        """Write sequence 0's KV to ``kv_path``; return (header, arrays) for the rest.

        None when llama.cpp could not write the file (a full disk).
        """
        positions = self.ctx.state_seq_save(0, kv_path)
        if positions is None:
            return None
        self.lexicon.commit()
        header = {"chunks_done": self.chunks_done, "finished": self.finished,
                  "last_progress": self.last_progress, "n_prefix": self.n_prefix,
                  "stats": self.stats.to_dict(), "locators": [l.__dict__ for l in self.locators],
                  "units": self.units.commit() if self.units else None}
        arrays = {"tokens": np.asarray(self.kept.tokens, np.int32),
                  "loc_ids": np.asarray(self.kept.loc_ids, np.int32),
                  "nuc": np.asarray(self.kept.nuc, np.float32),
                  "positions": np.asarray(positions, np.int32),
                  "prev_row": (self._prev_row if self._prev_row is not None else np.zeros(0)).astype(np.float32)}
        return header, arrays

    def restore(self, header: dict, arrays: dict, kv_path) -> None:
        """Put a ``snapshot`` back into this (fresh) session's context."""
        tokens = arrays["tokens"].tolist()
        if tokens[: self.n_prefix] != self.kept.tokens[: self.n_prefix] or header["n_prefix"] != self.n_prefix:
            raise BookpotError("the saved state was made with another prompt format")
        self.ctx.clear()
        positions = self.ctx.state_seq_load(kv_path, 0)
        if not np.array_equal(positions, arrays["positions"]):
            raise BookpotError("the saved KV does not match its checkpoint")
        self.kept = _Kept(tokens, arrays["loc_ids"].tolist(), arrays["nuc"].tolist())
        self.locators = [Locator(**d) for d in header["locators"]]
        self._loc_index = {l: i for i, l in enumerate(self.locators)}
        self._prev_row = arrays["prev_row"].astype(np.float64) if arrays["prev_row"].size else None
        self.chunks_done = int(header["chunks_done"])
        self.finished = bool(header["finished"])
        self.last_progress = float(header.get("last_progress", 0.0))
        known = set(Stats.__dataclass_fields__)
        now = self.stats
        self.stats = Stats(**{k: v for k, v in header["stats"].items() if k in known})
        # this run's context and plan, not the saved run's
        self.stats.n_ctx, self.stats.ram_cap_bytes, self.stats.plan = now.n_ctx, now.ram_cap_bytes, now.plan
        self.stats.start_answer()  # the saved run's last answer is not this run's
        if self.lexicon.damaged or (self.locators and not self.lexicon.n_pages()):
            raise BookpotError("the book's page text and word index are missing or damaged")
        n_units = 0
        if self.units is not None and header.get("units"):
            self.units.load(header["units"])
            n_units = len(self.units.units)
        self.lexicon.cut(n_units, len(self.locators))
        if self.units is not None:
            self.lexicon.fill(n_units, self.units.text_for_index)
        self._feed_src = None
        self._feed = None

    def close(self) -> None:
        try:
            if self._ctx is not None:
                self._ctx.close()
        finally:
            self.lexicon.close()


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
