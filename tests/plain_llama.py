"""The baseline: plain llama.cpp (llama-cpp-python's own ``Llama``) answering
with the whole document in its window, completion style, greedy.

Tests run it side by side with bookpot on the same documents, so bookpot is
held to what the library alone does, measured in the same run.
"""
from __future__ import annotations

import llama_cpp
import llama_cpp.llama_cpp as C

from bookpot.engine.llm import use_extra_buffer_types

_orig_params = C.llama_model_default_params


def _params():
    # Same AMX workaround bookpot uses (see engine/llm.py): without it the
    # library segfaults on this machine's CPU.
    p = _orig_params()
    p.use_extra_bufts = use_extra_buffer_types()
    return p


def plain_answers(model_path, prompts: list[str], *, n_ctx: int = 8192, max_tokens: int = 16,
                  reuse_prefix: bool = False) -> list[str]:
    """Greedy completions of ``prompts``. ``reuse_prefix``: keep the KV cache
    between prompts, so prompts that share a document are prefilled once
    (llama-cpp-python reuses the longest common token prefix)."""
    C.llama_model_default_params = _params
    try:
        llm = llama_cpp.Llama(str(model_path), n_ctx=n_ctx, n_batch=512, verbose=False)
    finally:
        C.llama_model_default_params = _orig_params
    out = []
    for prompt in prompts:
        if not reuse_prefix:
            llm.reset()
        r = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
        out.append(r["choices"][0]["text"])
    llm.close()
    return out
