"""The standard pass-key document, shared by tests and benchmarks.

Filler ("The grass is green. The sky is blue. ...") with one sentence
"The pass key is NNNNN. Remember it. NNNNN is the pass key." at a chosen
depth, and the completion-style question after it. Token counts are for
SmolLM2's tokenizer (about 25 tokens per filler block).
"""
from __future__ import annotations

import random

FILLER = ("The grass is green. The sky is blue. The sun is yellow. "
          "Here we go. There and back again.")
QUESTION = "What is the pass key? The pass key is"
FILLER_TOKENS = 25  # SmolLM2 tokens per FILLER block, measured


def passkey_text(n_tokens: int, depth: float, key: int) -> str:
    """About ``n_tokens`` tokens with the key sentence at ``depth`` (0..1)."""
    n_blocks = max(2, n_tokens // FILLER_TOKENS)
    at = min(n_blocks - 1, max(0, round(depth * n_blocks)))
    blocks = [FILLER] * n_blocks
    blocks.insert(at, f"The pass key is {key}. Remember it. {key} is the pass key.")
    return " ".join(blocks)


def keys(n: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(10000, 99999) for _ in range(n)]
