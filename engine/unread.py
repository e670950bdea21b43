"""A Session's book before it is read: the text pass, on-demand prefill, adoption.

``UnreadParts`` is the part of ``engine.session.Session`` that deals with
the parts of a book not read yet (issue #19; textpass.py holds the index):
run the text pass, tell a question how many units it can draw on, prefill
the chunks holding chosen unread units on demand and save them as early
units, place them, and — while reading — adopt a chunk prefilled earlier
instead of decoding it again.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np

from .readers.base import Locator, Segment
from .textpass import SINK_TOKENS, Early


class UnreadParts:
    """Mixed into ``engine.session.Session``; see the module docstring."""

    def text_pass(self, segments: Iterable[Segment], *, progress: Callable[[int, float], None] | None = None,
                  cancel: Callable[[], bool] | None = None):
        """Cut and index the whole book without the model's decode (textpass.py).

        Needs memory units (else a no-op returning None). Resumable like
        ``ingest``; ``progress(tokens, fraction)``. Returns the pass's
        ``PassStats``; afterwards questions find passages anywhere in the
        book, read or not (``text.done``).
        """
        from . import textpass

        if self.text is None:
            return None
        sig = textpass.signature(self.model, n_batch=self.n_batch, unit_tokens=self.unit_cfg.unit_tokens,
                                 separator=self.fmt.doc_separator, sink=SINK_TOKENS, prefix=self.fmt.prefix)
        st = textpass.run(self.text, self.model, segments, sig=sig,
                          text_of=lambda prev, own: self.model.detokenize(list(prev) + list(own)),
                          progress=progress, cancel=cancel)
        self.stats.book_tokens = self.text.n_tokens if self.text.done else 0
        self.stats.text_pass_s = st.seconds
        self.stats.text_pass_tokens_per_s = st.tokens_per_s if st.tokens else None
        return st

    def _adopt(self, index: int, tokens: list[int], loc_id: int) -> bool:
        """Chunk ``index`` was prefilled on demand for a question (textpass.py):
        put its saved KV into the pot instead of decoding it again; False
        (decode it) when it was not, or its files fail their checksums.

        The reused KV was computed next to what the context held then (the
        prefix, the pot read so far) rather than the pot of this point of
        the book; its novelty scores came from the chunk alone (its first
        token scores 0). The first chunk (the book's attention sinks, in no
        unit) is always decoded.
        """
        if self.text is None or index == 0 or self.tail_only:
            return False
        early = self.text.early(index)
        c = self.text.chunk(index) if early is not None else None
        if c is None or c.tokens != list(tokens) or c.first_uid != len(self.units.units) \
                or len(early.units) != c.n_units:
            return False
        spans = [c.unit_span(uid, self.units.cfg.unit_tokens) for uid, _, _ in early.units]
        if any(not self.units.early_ok(uid, d, nb) for uid, d, nb in early.units) or spans[0][0] != 0 \
                or spans[-1][1] != len(tokens):
            return False
        pos0 = self.n_past
        for (uid, _, _), (a, b) in zip(early.units, spans):
            if not self.units.load_early(self.ctx, uid, b - a, pos0 + a):
                self.ctx.seq_rm(0, pos0, -1)
                return False
        keys = early.keys.reshape((len(early.units), *self.units.rec_shape))
        for j, ((uid, digest, nbytes), (a, b)) in enumerate(zip(early.units, spans)):
            self.units.adopt(uid, list(tokens[a:b]), loc_id, digest, nbytes, keys[j])
        self.kept.tokens.extend(tokens)
        self.kept.loc_ids.extend([loc_id] * len(tokens))
        nuc = early.nuc.tolist() if early.nuc.size == len(tokens) else [0.0] * len(tokens)
        self.kept.nuc.extend(nuc)
        self._prev_row = None
        self.stats.max_position = max(self.stats.max_position, self.n_past - 1)
        self.stats.adopted_tokens += len(tokens)
        self._unit_stats()
        return True

    def _n_units(self) -> int:
        """Units a question can draw on: every unit of the book once the text
        pass is done (textpass.py), else those read so far."""
        read = len(self.units.units) if self.units is not None else 0
        return max(read, self.text.n_units) if self.text is not None and self.text.done else read

    def _unread(self) -> bool:
        return self._n_units() > (len(self.units.units) if self.units is not None else 0)

    def _unit_len(self, uid: int) -> int:
        if uid < len(self.units.units):
            return self.units.units[uid].n
        a, b = self.text.chunk_of(uid).unit_span(uid, self.unit_cfg.unit_tokens)
        return b - a

    def _unit_loc(self, uid: int) -> int:
        return self.units.units[uid].loc_id if uid < len(self.units.units) else self.text.chunk_of(uid).loc

    def _unit_tokens(self, uid: int) -> list[int]:
        if uid < len(self.units.units):
            return self.units.unit_tokens(uid)
        c = self.text.chunk_of(uid)
        a, b = c.unit_span(uid, self.unit_cfg.unit_tokens)
        return c.tokens[a:b]

    def _locator(self, lid: int) -> dict:
        if 0 <= lid < len(self.locators):
            return self.locators[lid].to_dict()
        d = self.text.locator(lid) if self.text is not None else None
        return Locator(**d).to_dict() if d else {}

    def _early_unit(self, uid: int):
        """(uid, digest, bytes) of unread unit ``uid``'s saved KV, if its file checks out."""
        c = self.text.chunk_of(uid)
        early = self.text.early(c.index)
        for u in (early.units if early else []):
            if u[0] == uid and self.units.early_ok(*u):
                return u
        return None

    def _prefill_unread(self, uids: list[int], at: int) -> None:
        """Prefill on demand the unread units ``uids`` that have no saved KV.

        Each chunk holding some is decoded at ``at``.. from its start up to
        the end of the last unit needed (``n_batch`` tokens at most): causal
        attention makes those units' KV the same as a whole chunk's. The
        units are cut as reading cuts them, saved as early units (KV files,
        representative keys, novelty) and removed from the context again.
        A chunk prefilled to its end is whole, and reading adopts it.
        """
        t0 = time.perf_counter()
        need: dict[int, tuple] = {}  # chunk index -> (chunk, end of the last unit needed)
        for uid in uids:
            if uid >= len(self.units.units) and self._early_unit(uid) is None:
                c = self.text.chunk_of(uid)
                end = c.unit_span(uid, self.unit_cfg.unit_tokens)[1]
                need[c.index] = (c, max(end, need.get(c.index, (c, 0))[1]))
        if self.unit_cfg.disk_cap is not None:  # beyond --disk-cap: recomputed where placed
            on_disk, kept = self.text.early_bytes(), {}
            for i, (c, end) in need.items():
                if self.units.early_room(end - c.skip, on_disk):
                    kept[i] = (c, end)
                    on_disk += self.units.kv_bytes_for(end - c.skip)
            need = kept
        prev_row, self._prev_row = self._prev_row, None  # reading's row: not this chunk's context
        try:
            for c, end in need.values():
                tokens = c.tokens[:end]
                nuc, att, keys = self._prefill(tokens, at, True, capture=True)
                try:
                    rows, recs = [], []
                    for j, (a, b, rec) in enumerate(self.units.cut(att, keys, c.skip)):
                        digest, nbytes = self.units.write_early(self.ctx, c.first_uid + j, at + a, b - a)
                        rows.append((c.first_uid + j, digest, nbytes))
                        recs.append(rec)
                finally:
                    self.ctx.seq_rm(0, at, -1)
                self.stats.max_position = max(self.stats.max_position, at + len(tokens) - 1)
                self.text.add_early(Early(c.index, rows, np.stack(recs) if recs else np.zeros(0, np.float16),
                                          nuc if nuc is not None else np.zeros(0, np.float32)))
                self.stats.ondemand_tokens += len(tokens)
                self.stats.decoded_tokens += len(tokens)
        finally:
            self._prev_row = prev_row
        if need:
            self.stats.ondemand_s = time.perf_counter() - t0

    def retire_early(self) -> None:
        """After a checkpoint: the chunks read since are ordinary units now
        (adopted from their early KV, or decoded again), so their early rows
        go, then their files (an adopted unit's file keeps its own name)."""
        if self.text is None or self.units is None:
            return
        for uid, _, _ in self.text.retire_early(self.chunks_done):
            self.units.remove_early(uid)

    def _place_unread(self, uid: int, at: int) -> str:
        """Put unread unit ``uid`` at ``at``.. from its early KV file; "early"
        (or "recomputed": its tokens decoded there, when the file would not load)."""
        u = self._early_unit(uid)
        n = self._unit_len(uid)
        if u is not None and self.units.load_early(self.ctx, uid, n, at):
            return "early"
        self.ctx.decode(self._unit_tokens(uid), at, logits="none")
        return "recomputed"
