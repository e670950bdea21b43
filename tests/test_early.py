"""Asking a book before it has been read (issue #19), with the real default model.

A ~30K-token PDF of real prose (GNU manuals, tests/natural.py) that was
never read: ``bookpot ask`` runs the text pass (reader + tokenizer, no
decode), finds the passage over the whole book by BM25, prefills only the
chunks holding the chosen units and answers with a quote and its page.
Then the book is ingested: the chunks prefilled on demand are put into the
pot from their saved KV instead of being decoded again, and the same
question finds the same quote. Runs killed in the text pass and in an
on-demand prefill leave an index that resumes and never vouches for a unit
file the disk lacks.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import natural
from conftest import run_json

pytestmark = [pytest.mark.model,
              pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")]

FACTS = ["F03", "F09", "F14"]  # who / where / when kinds, spread over the book


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    d = tmp_path_factory.mktemp("early")
    doc = natural.build(30000, FACTS, "pdf", offset=200, name="early30k")
    path = doc.write(d)
    cache = d / "cache"
    return path, doc, {"BOOKPOT_CACHE_DIR": str(cache)}, cache


@pytest.fixture(scope="module")
def early(book):
    """Each question asked before any read: (fact, JSON answer)."""
    path, doc, env, _ = book
    return [(f, run_json("ask", path, f.question, "-q", "--threads", "2", env=env)) for f in doc.facts()]


def _fact_quote(fact, r) -> dict | None:
    return next((c for c in r["citations"] if "quote" in c and natural.holds_evidence(fact, c["quote"])), None)


def test_a_new_book_is_answered_with_its_quote_and_page_before_any_read(book, early):
    path, doc, _, _ = book
    pages = natural.pages_by_locator(path)
    right = 0
    for fact, r in early:
        st = r["stats"]
        assert r["read_whole"] is False and st["doc_tokens"] == 0, st  # nothing read into the pot
        assert st["book_tokens"] > 25000, st  # the text pass counted the whole book
        # far fewer tokens decoded than the book holds: the question, the
        # chunks prefilled for it (<= 4 units' chunks of <= 512), the answer
        assert 0 < st["decoded_tokens"] <= 2600 < st["book_tokens"] // 10, st
        q = _fact_quote(fact, r)
        assert q is not None, (fact.question, r["citations"])
        assert pages[q["locator"]][q["start"]:q["end"]] == q["quote"]  # verbatim, from its page
        placed = next(pl for pl in doc.placed if pl.fact == fact.id)
        assert q["page"] == str(placed.page + 1), (q, placed)  # the page the fact is on
        assert q["source"] == "unread" and r["from_unread"]
        right += natural.answer_ok(fact, r["answer"])
    assert right >= 1, [r["answer"] for _, r in early]


def test_a_second_question_reuses_the_units_prefilled_for_the_first(book, early):
    path, _, env, _ = book
    fact = early[0][0]
    again = run_json("ask", path, fact.question, "-q", "--threads", "2", env=env)
    assert again["stats"]["ondemand_tokens"] == 0, again["stats"]  # loaded from their saved KV
    assert {u["how"] for u in again["stats"]["units_loaded"]} == {"early"}
    assert again["answer"] == early[0][1]["answer"]


def test_ingesting_afterwards_reuses_the_prefilled_chunks_and_keeps_the_evidence(book, early):
    path, _, env, cache = book
    prefilled = sum(r["stats"]["ondemand_tokens"] for _, r in early)
    # the chunks prefilled on demand to their end (a question needing only
    # a chunk's first units prefills only those), but the book's first: its
    # attention sinks belong to no unit, so reading decodes it
    con = sqlite3.connect(_lexicon(cache))
    whole = 0
    for chunk, units in con.execute("SELECT chunk, units FROM tp_early"):
        n_units, tokens = con.execute("SELECT n_units, length(tokens) / 4 FROM tp_chunks WHERE chunk=?",
                                      (chunk,)).fetchone()
        if chunk > 0 and len(json.loads(units)) == n_units:
            whole += tokens
    con.close()
    st = run_json("ingest", path, "-q", "--threads", "2", env=env)
    assert st["doc_tokens"] == st["book_tokens"] > 25000, st
    # each of them was put into the pot from its saved KV, not decoded again
    assert 0 < st["adopted_tokens"] == whole <= prefilled, (st, whole, prefilled)
    # read whole and checkpointed: no early unit is kept beside the ordinary ones
    con = sqlite3.connect(_lexicon(cache))
    assert con.execute("SELECT count(*) FROM tp_early").fetchone()[0] == 0
    con.close()
    assert not list(_lexicon(cache).parent.glob("units/e*.kv"))
    for fact, before in early:
        after = run_json("ask", path, fact.question, "-q", "--threads", "2", env=env)
        assert after["read_whole"] and after["stats"]["ondemand_tokens"] == 0
        qa, qb = _fact_quote(fact, before), _fact_quote(fact, after)
        assert qb is not None, (fact.question, after["citations"])
        assert (qa["locator"], qa["start"], qa["end"]) == (qb["locator"], qb["start"], qb["end"])


def test_under_a_disk_cap_nothing_is_prefilled_beyond_it(book, tmp_path):
    path, doc, _, _ = book
    fact = doc.facts()[0]
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "capped")}
    r = run_json("ask", path, fact.question, "-q", "--threads", "2", "--disk-cap", "100K", env=env)
    st = r["stats"]
    assert st["ondemand_tokens"] == 0 and st["units_unread"] > 0, st  # no room for early unit files
    assert {u["how"] for u in st["units_loaded"]} == {"recomputed"}, st["units_loaded"]
    assert _fact_quote(fact, r) is not None, r["citations"]  # the lookup and the quote do not need KV
    assert not list((tmp_path / "capped").glob("books/*/units/units/e*.kv"))


# ------------------------------------------------------------------ kills
CHILD = r"""
import sys
from bookpot.engine import Options, open_book
from bookpot.engine import units

what, path = sys.argv[1], sys.argv[2]
if what == "ask":
    write = units.UnitStore.write_early
    def loud(self, *a, **k):
        out = write(self, *a, **k)
        print("wrote", flush=True)
        return out
    units.UnitStore.write_early = loud
with open_book(path, Options(threads=1)) as book:
    book.index(progress=lambda tokens, frac: print("tokens", tokens, flush=True))
    if what == "ask":
        print(book.ask(sys.argv[3]).text, flush=True)
    else:
        print("meta", book.session.text.meta()["chunks"], book.session.stats.text_pass_s, flush=True)
"""


def _child(args, env, kill_when=None):
    p = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, **env))
    lines = []
    for line in p.stdout:
        lines.append(line.strip())
        if kill_when is not None and kill_when(line):
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=600)
    return p.returncode, lines, p.stderr.read()


def _lexicon(cache: Path) -> Path:
    found = list(cache.glob("books/*/units/lexicon.sqlite"))
    assert len(found) == 1, found
    return found[0]


def _meta(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM tp_meta")}
    finally:
        con.close()


def test_a_text_pass_killed_midway_resumes_to_the_same_index(tmp_path):
    # ~400K tokens of prose: the pass commits every 64 chunks (~32K tokens)
    paras = [p.text for p in natural.prose()]
    text = "\n\n".join(f"{i}. {paras[i % len(paras)]}" for i in range(6000)) + "\n\nThe last word is zanzibarite.\n"
    path = tmp_path / "long.txt"
    path.write_text(text)
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")}
    rc, lines, err = _child(["index", path], env, kill_when=lambda line: line.startswith("tokens")
                            and int(line.split()[1]) > 120_000)
    assert rc == -signal.SIGKILL, (rc, lines[-3:], err[-2000:])
    db = _lexicon(tmp_path / "cache")
    cut = _meta(db)
    assert 0 < cut["chunks"] and not cut["done"], cut
    rc, lines, err = _child(["index", path], env)
    assert rc == 0, err[-2000:]
    resumed = _meta(db)
    fresh_env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "fresh")}
    assert _child(["index", path], fresh_env)[0] == 0
    fresh = _meta(_lexicon(tmp_path / "fresh"))
    assert resumed["done"] and {k: resumed[k] for k in ("chunks", "units", "tokens", "locs")} == \
        {k: fresh[k] for k in ("chunks", "units", "tokens", "locs")}
    for d in (db, _lexicon(tmp_path / "fresh")):
        con = sqlite3.connect(d)
        (n_fts,) = con.execute("SELECT count(*) FROM tp_fts").fetchone()
        (last,) = con.execute("SELECT rowid FROM tp_fts WHERE tp_fts MATCH 'zanzibarite'").fetchone()
        con.close()
        assert n_fts == fresh["units"] and last == fresh["units"] - 1


def test_an_ask_killed_during_its_prefill_never_trusts_a_missing_unit(book, tmp_path):
    from bookpot.engine.store import file_digest

    path, doc, _, _ = book
    env = {"BOOKPOT_CACHE_DIR": str(tmp_path / "cache")}
    question = doc.facts()[1].question
    rc, lines, err = _child(["ask", path, question], env, kill_when=lambda line: line.startswith("wrote"))
    assert rc == -signal.SIGKILL, (rc, lines[-3:], err[-2000:])
    db = _lexicon(tmp_path / "cache")

    def vouched() -> list:
        con = sqlite3.connect(db)
        try:
            rows = [u for (js,) in con.execute("SELECT units FROM tp_early") for u in json.loads(js)]
        finally:
            con.close()
        for uid, digest, nbytes in rows:  # every unit the index vouches for is on disk, whole
            f = db.parent / "units" / f"e{uid:07d}.kv"
            assert f.stat().st_size == nbytes and file_digest(f) == digest, uid
        return rows

    before = vouched()
    assert _meta(db)["done"]  # the text pass had finished before the prefill began
    r = run_json("ask", path, question, "-q", "--threads", "2", env=env)
    assert r["stats"]["ondemand_tokens"] > 0  # the chunk the kill cut short was prefilled again
    assert _fact_quote(doc.facts()[1], r) is not None, r["citations"]
    assert len(vouched()) > len(before)


def test_reading_progress_counts_tokens_once_the_text_pass_has_counted_them(tmp_path):
    """A TXT reader hands a small book over in one piece, so its own fraction is
    1.0 after the first chunk: the reader's library showed "paused 100%" at 171
    of 922 tokens. With the book's tokens counted by the text pass, the
    progress is tokens read over tokens in the book."""
    from bookpot.engine import Options, open_book

    doc = natural.build(2500, [], "txt", offset=300, name="progress")
    path = doc.write(tmp_path)
    seen = []
    with open_book(path, Options(threads=1, cache_dir=str(tmp_path / "cache"))) as b:
        b.index()
        total = b.session.text.n_tokens
        b.read(progress=seen.append)
    assert len(seen) >= 3, seen  # several chunks of at most 512 tokens
    assert [p.progress for p in seen] == pytest.approx([min(1.0, p.tokens / total) for p in seen])
    assert seen[0].progress < 0.5 and seen[-1].progress == pytest.approx(1.0)
