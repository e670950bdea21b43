"""The sampler chain on the real default model: each token is accepted once.

``llama_sampler_sample`` already accepts the token it returns; a second
``llama_sampler_accept`` would put every generated token twice into the
repetition penalty's window (``repeat_last_n=64`` would then cover 32
tokens). A counting sampler appended to the chain sees every acceptance.
"""
from __future__ import annotations

import ctypes

import pytest
from llama_cpp import llama_cpp as C

from bookpot.engine.llm import Context, Model, Sampler, generate

TEXT = ("The keeper climbed the one hundred and twelve steps every evening to wind the clockwork "
        "that turned the lens, and every morning she polished the brass.")


class CountingSampler:
    """A llama_sampler that changes nothing and records every token it is told to accept."""

    def __init__(self) -> None:
        self.accepted: list[int] = []
        self._accept = C.llama_sampler_i_accept(lambda smpl, tok: self.accepted.append(tok))
        self._apply = C.llama_sampler_i_apply(lambda smpl, cur_p: None)
        self._iface = C.llama_sampler_i()
        for name, ftype in C.llama_sampler_i._fields_:
            setattr(self._iface, name, ftype(0))  # NULL: optional in llama.h
        self._iface.accept = self._accept
        self._iface.apply = self._apply
        self.ptr = C.llama_sampler_init(ctypes.pointer(self._iface), None)

    def attach(self, sampler: Sampler) -> None:
        C.llama_sampler_chain_add(sampler._ptr, self.ptr)  # the chain now owns it

    def detach(self, sampler: Sampler) -> None:
        n = C.llama_sampler_chain_n(sampler._ptr)
        C.llama_sampler_free(C.llama_sampler_chain_remove(sampler._ptr, n - 1))


@pytest.fixture(scope="module")
def model(model_path):
    return Model(model_path)


@pytest.mark.model
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_each_sampled_token_is_accepted_once(model, temperature):
    ctx = Context(model, n_ctx=256, n_batch=64, n_threads=2)
    sampler = Sampler(model.n_vocab, temperature=temperature, repeat_penalty=1.3, repeat_last_n=64)
    counter = CountingSampler()
    counter.attach(sampler)
    try:
        tokens = model.tokenize(TEXT, add_bos=model.add_bos)
        ctx.decode(tokens, 0)
        sampled, pos = [], len(tokens)
        for _ in range(8):
            tok = sampler.sample(ctx)
            sampled.append(tok)
            ctx.decode([tok], pos)
            pos += 1
        assert counter.accepted == sampled
    finally:
        counter.detach(sampler)
        sampler.close()
        ctx.close()


@pytest.mark.model
def test_generate_accepts_what_it_samples(model):
    """Through ``generate`` (the answer and summary path): one acceptance per token sampled."""
    ctx = Context(model, n_ctx=256, n_batch=64, n_threads=2)
    sampler = Sampler(model.n_vocab, repeat_penalty=1.3, repeat_last_n=64)
    counter = CountingSampler()
    counter.attach(sampler)
    try:
        tokens = model.tokenize(TEXT, add_bos=model.add_bos)
        ctx.decode(tokens, 0)
        text = "".join(generate(ctx, len(tokens), max_tokens=12, sampler=sampler))
        assert text.strip()
        # Every sampled token is decoded after it (but an end-of-generation one),
        # so the sequence grew by the tokens accepted, less at most one.
        grown = ctx.pos_max(0) + 1 - len(tokens)
        assert len(counter.accepted) in (grown, grown + 1)
        assert 0 < len(counter.accepted) <= 12
        assert model.detokenize(counter.accepted[:grown]).strip().startswith(text.strip()[:8])
    finally:
        counter.detach(sampler)
        sampler.close()
        ctx.close()
