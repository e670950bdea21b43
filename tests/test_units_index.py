"""The unit index keeps keys and tokens on disk, not in RAM (fast, no model).

A 1M-token book has ~8K units; their representative keys (36 MB) and
tokens (4 MB, ~36 MB as Python ints) would make the process grow with the
book. These tests drive ``UnitStore`` with a stand-in for the llama.cpp
context (only the KV file writes need one) and check that a lookup streamed
from the files in blocks scores exactly like one over an in-RAM copy, that
tokens come back from the file and from the pending buffer alike, that
nothing stays in RAM after a commit, and that a reload from a checkpoint's
counts gives the same answers.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bookpot.engine import units as U


class FakeCtx:
    def seq_rm(self, *a):
        pass

    def seq_cp(self, *a):
        pass

    def state_seq_save(self, seq, path):
        open(path, "wb").write(b"kv" * 10)
        return np.arange(4)

    def state_seq_save_bytes(self, seq):  # not a llama.cpp file: stored as it is
        return b"kv" * 10


MODEL = SimpleNamespace(n_layer=30, n_head=9, n_head_kv=3, head_dim=64)


def fill(store: U.UnitStore, rng, n_chunks: int, chunk: int = 256) -> tuple[list[np.ndarray], list[int]]:
    """Add chunks of random keys/tokens; return what was added (the reference)."""
    keys_ref, toks_ref = [], []
    for c in range(n_chunks):
        toks = rng.integers(0, 49152, chunk).tolist()
        keys = rng.standard_normal((len(store.layers), chunk, store.kv_dim)).astype(np.float32)
        att = rng.random(chunk).astype(np.float32)
        before = len(store.units)
        store.add_chunk(FakeCtx(), c * chunk, toks, c, att, keys)
        toks_ref.extend(toks)
        keys_ref.extend(store._keys_pending[before - store._committed:])
    return keys_ref, toks_ref


def reference_scores(store, keys_ref, queries):
    """The scoring formula over an in-RAM array of every unit's keys."""
    keys = np.stack(keys_ref)
    g = store.n_head // store.n_head_kv
    qbar = queries.mean(axis=1).reshape(len(store.layers), store.n_head_kv, g, store.head_dim).sum(axis=2)
    total = np.zeros(len(keys), np.float32)
    for li in range(len(store.layers)):
        k = keys[:, li].astype(np.float32).reshape(len(keys), -1, store.n_head_kv, store.head_dim)
        s = np.einsum("urgd,gd->u", k, qbar[li])
        total += (s - s.mean()) / s.std()
    return total


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(U, "KEY_BLOCK", 7)  # many blocks, one partial


def test_lookup_from_files_scores_like_ram(tmp_path, small_blocks):
    rng = np.random.default_rng(1)
    st = U.UnitStore(tmp_path, MODEL, U.UnitConfig())
    keys_ref, toks_ref = fill(st, rng, 10)  # 20 units
    counts = st.commit()
    assert st._keys_pending == [] and st._tokens_pending == []  # nothing kept in RAM
    more_keys, more_toks = fill(st, rng, 3)  # 6 pending units after the committed ones
    keys_ref += more_keys
    toks_ref += more_toks
    q = rng.standard_normal((len(st.layers), 5, MODEL.n_head * MODEL.head_dim)).astype(np.float32)
    assert len(st.units) == 26
    np.testing.assert_allclose(st.scores(q), reference_scores(st, keys_ref, q), rtol=1e-5, atol=1e-5)
    for uid in (0, 6, 7, 19, 20, 25):  # committed (block edges) and pending
        u = st.units[uid]
        assert st.unit_tokens(uid) == toks_ref[u.tok0 : u.tok0 + u.n]

    # Reload from the first checkpoint's counts: the pending units are cut off.
    st2 = U.UnitStore(tmp_path, MODEL, U.UnitConfig())
    st2.load(counts)
    assert len(st2.units) == 20 and st2.n_tokens == counts["n_tokens"]
    np.testing.assert_allclose(st2.scores(q), reference_scores(st2, keys_ref[:20], q), rtol=1e-5, atol=1e-5)
    assert st2.unit_tokens(19) == toks_ref[st2.units[19].tok0 : st2.units[19].tok0 + 128]
    assert (tmp_path / "keys.f16").stat().st_size == 20 * st2._rec_bytes


def test_load_refuses_an_index_shorter_than_the_checkpoint(tmp_path):
    rng = np.random.default_rng(2)
    st = U.UnitStore(tmp_path, MODEL, U.UnitConfig())
    fill(st, rng, 2)
    counts = st.commit()
    with open(tmp_path / "keys.f16", "r+b") as f:
        f.truncate(st._rec_bytes)  # one unit's keys left of four
    with pytest.raises(ValueError, match="shorter than the checkpoint"):
        U.UnitStore(tmp_path, MODEL, U.UnitConfig()).load(counts)


def test_the_compact_index_reads_back_every_unit_as_written():
    """UnitIndex (numpy columns) returns exactly the Unit records put in, grows past its first block."""
    import os

    from bookpot.engine.units import Unit, UnitIndex

    units = [Unit(i, 128 * i, 100 + i % 29, i // 3, i % 4 != 0, os.urandom(16).hex() if i % 4 else "",
                  (i % 4 != 0) * 23040 * 128) for i in range(300)]
    idx = UnitIndex(units)
    assert len(idx) == 300 and list(idx) == units
    assert idx[-1] == units[-1] and idx[10:13] == units[10:13]
    assert idx.kv_tokens() == sum(u.n for u in units if u.kv)
    idx[8] = Unit(8, units[8].tok0, units[8].n, units[8].loc_id, True, "ab" * 16, 5)
    assert idx[8].kv and idx[8].digest == "ab" * 16 and idx[7] == units[7]
    with pytest.raises(IndexError):
        idx[300]
    with pytest.raises(ValueError):
        idx.append(units[0])  # a uid is its row
