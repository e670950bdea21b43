"""The pot: InfiniPot's continual context distillation on llama.cpp's KV cache.

When the pot (sequence 0, positions 0..n-1) is full:

1. **Catalyst pass (CaP).** Decode a short catalyst prompt after the pot (the
   user's question when it is known, else a generic "summarize" line) with
   the native attention tap armed: every KV cell gets the attention the
   catalyst rows give it, summed over heads, rows and layers. The cell map
   turns cells into positions. The catalyst is then removed.
2. **Novelty under compression (NuC).** Each token's negative log-likelihood
   when it was prefilled, i.e. given the already-distilled pot before it:
   tokens the compressed context did not predict carry new information.
3. **Select |C| tokens.** alpha·|C| by NuC, the rest by CaP; the prompt
   prefix and the first ``sink`` document tokens are always kept.
4. **Remove and compact (CR-RoPE).** Remove the dropped runs with
   ``seq_rm`` and shift each kept run down with ``seq_add`` so the kept
   tokens sit at positions 0..|C|-1 again, in their original order;
   llama.cpp re-rotates K on the next decode. Positions never leave the
   trained window.

llama.cpp keeps one cell per token for all heads, so tokens are chosen per
cell (heads aggregated), not per head as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GENERIC_CATALYST = "Summarize the previous context highlighting the most important parts."


@dataclass
class PotConfig:
    pot_tokens: int  # |M|: positions the prefix + document may fill
    keep_tokens: int  # |C|: positions kept after a distillation
    alpha: float = 0.5  # share of |C| chosen by NuC
    sink: int = 4  # first document tokens always kept (attention sinks)
    nuc: bool = True  # score novelty (needs every token's logits at prefill)
    layers: tuple[int, ...] | None = None  # None: all layers


def catalyst_scores(ctx, n_past: int, catalyst: list[int], layers, then=None) -> np.ndarray:
    """Attention each position < n_past gets from the catalyst tokens.

    ``then(pos)``, when given, runs after the scored catalyst decode (tap
    disarmed, the catalyst's last logits ready, ``pos`` the next free
    position) and before the catalyst is removed: the summarizer generates
    its section summary there, so one pass both scores the pot and
    summarizes it. Whatever ``then`` decodes is removed with the catalyst.
    """
    tap = ctx.tap
    cell_scores = np.zeros(ctx.cells.n_cells, dtype=np.float32)
    tap.arm(cell_scores, layers, len(catalyst))
    try:
        try:
            ctx.decode(catalyst, n_past, logits="none" if then is None else "last")
        finally:
            tap.disarm()
        if then is not None:
            then(n_past + len(catalyst))
    finally:
        ctx.seq_rm(0, n_past, -1)  # the catalyst leaves no trace
    positions, scores = ctx.cells.by_position(cell_scores, seq=0)
    per_pos = np.zeros(n_past, dtype=np.float32)
    inside = positions < n_past
    per_pos[positions[inside]] = scores[inside]
    return per_pos


def select(cap: np.ndarray, nuc: np.ndarray | None, *, protect: int, keep: int, alpha: float) -> np.ndarray:
    """Boolean mask of positions to keep (``keep`` of them, at most).

    Positions below ``protect`` are always kept and count toward ``keep``.
    """
    n = cap.shape[0]
    mask = np.zeros(n, dtype=bool)
    mask[:protect] = True
    room = max(0, min(keep, n) - protect)
    if room == 0:
        return mask
    cand = np.arange(protect, n)
    n_nuc = int(round(alpha * room)) if nuc is not None else 0
    if n_nuc:
        top = cand[np.argpartition(-nuc[cand], n_nuc - 1)[:n_nuc]] if n_nuc < cand.size else cand
        mask[top] = True
    rest = cand[~mask[cand]]
    n_cap = min(room - int(mask[cand].sum()), rest.size)
    if n_cap > 0:
        top = rest[np.argpartition(-cap[rest], n_cap - 1)[:n_cap]] if n_cap < rest.size else rest
        mask[top] = True
    return mask


def compact(ctx, keep: np.ndarray) -> int:
    """Remove positions where ``keep`` is False; shift the rest down to 0..k-1.

    Returns the number of llama.cpp memory calls made.
    """
    n = keep.shape[0]
    # Runs of equal keep-values: [start, end) with their flag.
    edges = np.flatnonzero(np.diff(keep.astype(np.int8))) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [n]))
    calls = 0
    for a, b in zip(starts, ends):
        if not keep[a]:
            ctx.seq_rm(0, int(a), int(b))
            calls += 1
    removed = 0
    for a, b in zip(starts, ends):
        if keep[a]:
            if removed:
                ctx.seq_add(0, int(a), int(b), -removed)
                calls += 1
        else:
            removed += int(b - a)
    return calls
