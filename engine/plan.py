"""RAM planning: from a cap and the GGUF's metadata to a pot size.

Peak RSS, measured on SmolLM2-135M (bench/RESULTS.md), is the sum of:

- the interpreter and libraries (~45 MiB) plus the mapped weights (the
  file size: every weight is touched when decoding) and ~15 MiB of loader
  overhead;
- the KV cache: ``kv_bytes_per_token × n_ctx`` (f16 K and V, every layer);
- llama.cpp's compute buffer, ~0.2 MiB per batch token with flash attention
  off (99.4 MiB at n_batch 512, independent of n_ctx up to 8K);
- memory units (when on): their KV room beside the pot (``k × unit_tokens``
  cells, part of the KV above), one unit's saved state while it is read
  back, and the unit index in RAM (representative keys, 4.6 KB per unit:
  16 MiB covers ~450K tokens in 128-token units);
- a checkpoint of the book's state adds nothing: llama.cpp streams the
  pot's KV straight into the file (``llama_state_seq_save_file``). Through
  ``llama_state_seq_get_data`` into a buffer it peaked up to +158 MiB over
  that buffer, and a 512 MiB cap peaked at 856 and then 567 MiB on a
  64K-token book (bench/RESULTS.md);
- the logits when every token's logits are read for novelty scoring: they
  exist twice (the graph's output tensor and the output buffer), measured
  +150 MiB at n_batch 512 for a 49K vocabulary, so ``1.6 × n_batch × n_vocab
  × 4`` bytes.

The plan finds the largest context that fits the cap with a safety margin
(``plain_tokens``: a book counted to fit it runs plain, EdgeInfinite's
routing) and, for longer books, a pot of at most ``POT_CEILING`` (a bigger
pot was slower and, for the default model, worse), preferring big batches (faster prefill) and shrinking them only when the
cap forces it. A cap below the smallest workable plan is an error that
names that smallest cap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RamCapError

MiB = 1 << 20
BASE_BYTES = 60 * MiB  # interpreter, numpy, llama.cpp libraries, loader overhead
COMPUTE_BYTES_PER_BATCH_TOKEN = int(0.2 * MiB)
MARGIN = 0.92  # plan to this share of the cap: allocator slack, page cache noise
RESERVE_TOKENS = 512  # catalyst / question + answer room beyond the pot
MIN_POT = 512
# The planner's pot never exceeds this unless --pot-tokens asks for more.
# Measured on a 64K-token book under --ram-cap 512M (bench/RESULTS.md,
# session 3): once the checkpoint copy left the plan, the cap allowed a
# 6,400-token pot; it read at 48 tok/s against 80 for a 2,816-token pot,
# and with the right memory unit loaded the default model no longer gave
# the pass key (a small model is distracted by a long pot). Multi-needle
# (8/8 with units) was measured at 1,024; the pass-key grid uses 2,048.
POT_CEILING = 2048


@dataclass
class Plan:
    ram_cap: int
    pot_tokens: int
    keep_tokens: int
    n_batch: int
    n_ctx: int
    nuc: bool
    estimate: dict  # bytes per component
    unit_room: int = 0
    plain_tokens: int = 0  # the largest document the cap lets run plain (full route)

    @property
    def estimated_bytes(self) -> int:
        return sum(self.estimate.values())

    def describe(self) -> str:
        e = self.estimate
        plain = f"; books up to {self.plain_tokens:,} tokens run plain" if self.plain_tokens > self.pot_tokens else ""
        return (f"pot {self.pot_tokens:,} tokens (keeps {self.keep_tokens:,}{plain}), batch {self.n_batch}, "
                f"context {self.n_ctx:,}; estimated peak {self.estimated_bytes / MiB:,.0f} MiB of "
                f"{self.ram_cap / MiB:,.0f} MiB: weights {e['weights'] / MiB:,.0f}, KV {e['kv'] / MiB:,.0f}, "
                f"compute {e['compute'] / MiB:,.0f}, logits {e['logits'] / MiB:,.0f}, "
                f"units {e['units'] / MiB:,.0f} (room {self.unit_room:,} tokens), "
                f"base {e['base'] / MiB:,.0f}")


def parse_size(text: str | int) -> int:
    """"512M", "2G", "1.5GiB", "800MB" or bytes -> bytes (binary units)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", str(text).lower())
    if not m:
        raise RamCapError(f"cannot read the size {text!r}; write it like 512M or 2G")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def default_cap() -> int:
    """Half the machine's available memory, at most 4 GiB: leave room for the rest."""
    try:
        with open("/proc/meminfo") as f:
            info = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f}
        avail = info.get("MemAvailable", info.get("MemTotal", 0))
    except OSError:
        avail = 0
    if not avail:
        return 1 << 30
    # In 256 MiB steps: the plan (and so a book's cache key) must not change
    # with every few MiB the machine's free memory moves.
    step = 256 * MiB
    return max(step, min(4 << 30, avail // 2 // step * step))


UNIT_INDEX_BYTES = 16 * MiB


def estimate(meta, *, pot_tokens: int, n_batch: int, nuc: bool, unit_room: int = 0,
             unit_tokens: int = 128) -> dict:
    n_ctx = pot_tokens + RESERVE_TOKENS + unit_room
    kv = meta.kv_bytes_per_token()
    return {
        "base": BASE_BYTES,
        "weights": meta.file_size,
        "kv": kv * n_ctx,
        "compute": COMPUTE_BYTES_PER_BATCH_TOKEN * n_batch,
        "logits": int(1.6 * (n_batch if nuc else 1) * meta.vocab_size * 4),
        "units": (UNIT_INDEX_BYTES + 2 * kv * unit_tokens) if unit_room else 0,
    }


def make_plan(meta, ram_cap: int, *, pot_tokens: int | None = None, nuc: bool = True,
              keep_ratio: float = 0.5, unit_room: int = 0, plain: bool = False) -> Plan:
    """The pot for a book under ``ram_cap``: at most ``POT_CEILING`` tokens, or, with
    ``plain`` (the book is known to fit ``plain_tokens``), as large as the cap allows.
    ``pot_tokens`` asks for a size (checked).

    ``unit_room``: KV positions kept free for the memory units loaded per
    question; they come out of the same cap and the same trained window.
    """
    window = meta.n_ctx_train
    budget = int(ram_cap * MARGIN)
    best = None
    for n_batch in (512, 256, 128):
        fixed = sum(estimate(meta, pot_tokens=0, n_batch=n_batch, nuc=nuc, unit_room=unit_room).values())
        per_token = meta.kv_bytes_per_token()
        most = (budget - fixed) // per_token if budget > fixed else -1  # fixed holds the reserve
        most = min(most, window - RESERVE_TOKENS - unit_room)
        least = least_pot(n_batch, keep_ratio)
        if pot_tokens is not None:
            if pot_tokens < least:
                continue
            if pot_tokens <= most:
                best = (pot_tokens, n_batch)
                break
            continue
        if most >= least:
            # Round down to a multiple of 256 (llama.cpp pads the KV view so).
            pot = max(least, most // 256 * 256)
            best = (pot, n_batch)
            break
    if best is None:
        if pot_tokens and pot_tokens + RESERVE_TOKENS + unit_room > window:
            raise RamCapError(f"a {pot_tokens:,}-token pot plus {unit_room:,} tokens of memory units exceeds "
                              f"the model's {window:,}-token window; use a smaller --pot-tokens or fewer --units")
        need = smallest_cap(meta, nuc=nuc, pot_tokens=pot_tokens, unit_room=unit_room)
        what = f"a {pot_tokens:,}-token pot" if pot_tokens else "this model"
        raise RamCapError(f"a RAM cap of {ram_cap / MiB:,.0f} MiB is too small for {what}; "
                          f"the smallest that works is {need / MiB:,.0f} MiB")
    first, n_batch = best
    # ``first`` is what the cap and the window allow. A book known to fit it
    # (``plain``: counted before reading) runs plain, every token in view;
    # any other book is distilled into a pot of at most POT_CEILING.
    if pot_tokens is not None or plain:
        pot = first
    else:
        pot = max(least_pot(n_batch, keep_ratio), min(first, POT_CEILING))
    keep = min(int(pot * keep_ratio), pot - n_batch)
    return Plan(ram_cap, pot, keep, n_batch, pot + RESERVE_TOKENS, nuc,
                estimate(meta, pot_tokens=pot, n_batch=n_batch, nuc=nuc, unit_room=unit_room), unit_room,
                plain_tokens=first)


def least_pot(n_batch: int, keep_ratio: float = 0.5) -> int:
    return max(MIN_POT, int(n_batch / (1 - keep_ratio)))


def smallest_cap(meta, *, nuc: bool = True, pot_tokens: int | None = None, unit_room: int = 0) -> int:
    n_batch = 128
    pot = max(pot_tokens or 0, MIN_POT, 2 * n_batch)
    need = sum(estimate(meta, pot_tokens=pot, n_batch=n_batch, nuc=nuc, unit_room=unit_room).values())
    return int(need / MARGIN) + MiB
