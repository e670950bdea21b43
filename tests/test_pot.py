"""The bounded engine (pot) end to end on the real default model."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli, run_json
from passkey import QUESTION, keys, passkey_text
from plain_llama import plain_answers


@pytest.mark.model
def test_pot_passkey_matches_plain_llama_with_whole_text(tmp_path, model_path):
    """~6K-token documents through a 1,024-token pot (several distillations)."""
    depths = (0.1, 0.3, 0.5, 0.7, 0.9)
    docs = []
    for depth, key in zip(depths, keys(5, seed=6000)):
        path = tmp_path / f"pk-{depth}.txt"
        path.write_text(passkey_text(6000, depth, key))
        docs.append((path, key))
    ours = []
    for path, key in docs:
        r = run_json("ask", path, QUESTION, "--mode", "pot", "--pot-tokens", "1024", "--max-tokens", "12",
                     "--read", "first")  # the pot distilled through the whole book
        s = r["stats"]
        assert s["mode"] == "pot" and s["distillations"] >= 5, s
        assert s["max_position"] < s["n_ctx"] <= 8192, s  # positions never left the window
        assert s["kept_tokens"] <= 1024
        ours.append(str(key) in r["answer"])
    theirs = [str(k) in a for (_, k), a in
              zip(docs, plain_answers(model_path, [p.read_text() + "\n" + QUESTION for p, _ in docs]))]
    print(f"pot {sum(ours)}/5 plain llama.cpp (whole text in window) {sum(theirs)}/5")
    assert sum(ours) >= sum(theirs) - 1


@pytest.mark.model
def test_pot_peak_rss_does_not_grow_with_length(tmp_path, model_path):
    short, long = tmp_path / "short.txt", tmp_path / "long.txt"
    short.write_text(passkey_text(3000, 0.5, 11111))
    long.write_text(passkey_text(12000, 0.5, 22222))
    # The pot alone: units and the cache checkpoints are left out (their peak is an open issue, see bench/RESULTS.md).
    a = run_json("ingest", short, "--mode", "pot", "--pot-tokens", "1024", "--no-units", "--no-cache")
    b = run_json("ingest", long, "--mode", "pot", "--pot-tokens", "1024", "--no-units", "--no-cache")
    assert b["doc_tokens"] > 3.5 * a["doc_tokens"]
    assert b["distillations"] > a["distillations"] >= 2
    print(f"peak RSS {a['peak_rss_bytes'] >> 20} MiB at {a['doc_tokens']} tokens, "
          f"{b['peak_rss_bytes'] >> 20} MiB at {b['doc_tokens']} tokens")
    assert b["peak_rss_bytes"] <= a["peak_rss_bytes"] * 1.03 + (8 << 20)


@pytest.mark.model
def test_checkpoints_and_units_add_no_peak_and_do_not_grow_with_length(tmp_path, model_path):
    """The default path (units and cache on), checkpointing every second.

    Saving the pot's KV through ``llama_state_seq_get_data`` peaked up to
    +158 MiB over the state inside llama.cpp, at some checkpoints and not
    others (a 512M cap was exceeded on a 64K-token book); the file route
    adds nothing. Same long document with and without the cache, and a
    4x shorter one with it.
    """
    short, long = tmp_path / "short.txt", tmp_path / "long.txt"
    short.write_text(passkey_text(3000, 0.5, 11111))
    long.write_text(passkey_text(12000, 0.5, 22222))
    env = {"BOOKPOT_CHECKPOINT_S": "1"}
    args = ("--mode", "pot", "--pot-tokens", "1024", "--catalyst", "generic")
    a = run_json("ingest", short, *args, "--cache-dir", tmp_path / "c1", env=env)
    b = run_json("ingest", long, *args, "--cache-dir", tmp_path / "c2", env=env)
    c = run_json("ingest", long, *args, "--no-cache", env=env)
    assert b["units"] > 3.5 * a["units"] > 0 and not b["cached"]
    assert len(list((tmp_path / "c2").glob("books/*/kv-*.bin"))) == 1  # old checkpoints' KV removed
    mib = {k: r["peak_rss_bytes"] >> 20 for k, r in zip("abc", (a, b, c))}
    print(f"peak RSS MiB: {mib}")
    assert b["peak_rss_bytes"] <= c["peak_rss_bytes"] + (12 << 20)  # checkpoints add (almost) nothing
    assert b["peak_rss_bytes"] <= a["peak_rss_bytes"] * 1.03 + (8 << 20)


@pytest.mark.model
def test_ram_cap_plans_under_the_cap(tmp_path, model_path):
    doc = tmp_path / "d.txt"
    doc.write_text(passkey_text(3000, 0.5, 33333))
    r = run_json("ingest", doc, "--ram-cap", "320M", "--no-units")
    assert r["peak_rss_bytes"] < 320 << 20, r
    assert r["distillations"] >= 1 and "pot" in r["plan"]


@pytest.mark.model
def test_ram_cap_too_small_names_the_minimum(tmp_path, model_path):
    doc = tmp_path / "d.txt"
    doc.write_text("Some text.")
    p = run_cli("ingest", doc, "--ram-cap", "64M")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "too small" in p.stderr and "smallest that works is" in p.stderr
    p = run_cli("ingest", doc, "--ram-cap", "lots")
    assert p.returncode == 2 and "512M" in p.stderr


def test_select_keeps_protected_then_nuc_then_cap():
    from bookpot.engine.pot import select

    cap = np.array([0, 0, 9, 1, 8, 2, 7, 3, 0, 0], dtype=np.float32)
    nuc = np.array([0, 0, 0, 9, 0, 8, 0, 0, 0, 0], dtype=np.float32)
    keep = select(cap, nuc, protect=2, keep=6, alpha=0.5)
    assert keep.sum() == 6
    assert set(np.flatnonzero(keep)) == {0, 1, 3, 5, 2, 4}
    only_cap = select(cap, None, protect=1, keep=4, alpha=0.5)
    assert set(np.flatnonzero(only_cap)) == {0, 2, 4, 6}


@pytest.mark.model
def test_compact_gives_compact_positions_and_map_agrees(model_path):
    from llama_cpp import llama_cpp as C

    from bookpot.engine.llm import Context, Model
    from bookpot.engine.pot import compact

    model = Model(model_path)
    ctx = Context(model, n_ctx=1024, n_batch=256)
    toks = model.tokenize(passkey_text(700, 0.5, 12345))[:600]
    ctx.decode(toks, 0)
    rng = np.random.default_rng(0)
    for _ in range(3):  # distil, refill the holes, distil again
        n = ctx.pos_max(0) + 1
        keep = rng.random(n) < 0.5
        keep[:4] = True
        compact(ctx, keep)
        k = int(keep.sum())
        assert ctx.pos_min(0) == 0 and ctx.pos_max(0) == k - 1
        ctx.cells.check(ctx.mem, C)
        _, positions = ctx.cells.cells_of(0)
        assert list(positions) == list(range(k))
        ctx.decode(toks[:200], k)
    ctx.close()


@pytest.mark.model
def test_pot_refused_clearly_for_sliding_window_model(tmp_path):
    from bookpot.models import resolve

    gemma = resolve("gemma3-270m")
    doc = tmp_path / "d.txt"
    doc.write_text(passkey_text(600, 0.5, 44444))
    p = run_cli("ingest", doc, "--model", gemma, "--mode", "pot")
    assert p.returncode == 2 and "sliding-window" in p.stderr and "Traceback" not in p.stderr
    r = run_json("ingest", doc, "--model", "gemma3-270m", "--mode", "streaming", "--pot-tokens", "1024")
    assert r["doc_tokens"] > 500
