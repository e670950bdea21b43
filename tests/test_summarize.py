"""``bookpot summarize``: sections per chapter, topics named, batch, cache.

The model tests share one generated book (tests/topicbook.py: four chapters
on unrelated topics, ~2.3K tokens each) as PDF (with an outline, as real
books have) and EPUB, and one cache directory. The first PDF summary is a
fixture (``pdf_run``, made once), so the "second run" test finds it in the
cache whatever order the tests run in.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from conftest import run_cli
from docgen import make_corrupt_pdf, make_epub, make_pdf
from topicbook import TOPIC_WORDS, pdf_pages, topic_chapters

from bookpot.engine.summarize import (
    BookSummary, Part, Section, degenerate_reason, drop_repeats, finish_sentence, looping, span,
)

TITLES = list(TOPIC_WORDS)
# On a shared, busy machine one llama.cpp thread is several times faster than
# two fighting for the cores; the output does not depend on it.
THREADS = os.environ.get("BOOKPOT_TEST_THREADS")
THREAD_ARGS = ("--threads", THREADS) if THREADS else ()


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def book(tmp_path_factory):
    d = tmp_path_factory.mktemp("topicbook")
    chapters = topic_chapters(2300)
    pages, outline = pdf_pages(chapters)
    pdf = make_pdf(d / "topics.pdf", pages, outline=outline)
    epub = make_epub(d / "topics.epub", chapters, title="Four Crafts")
    first_page = {title: str(i + 1) for title, i in outline}
    return {"pdf": pdf, "epub": epub, "cache": d / "cache", "dir": d, "first_page": first_page,
            "n_pages": len(pages)}


@pytest.fixture(scope="module")
def pdf_run(book, model_path) -> tuple[dict, float]:
    """The PDF summarized once (a cache miss): its JSON and wall time.

    A 2,048-token pot is smaller than a chapter: each chapter is distilled
    once (the catalyst pass writes a section summary), then closed at its end.
    """
    return _summarize(book, "pdf", "--pot-tokens", "2048")


def _summarize(book, fmt: str, *extra) -> tuple[dict, float]:
    t0 = time.perf_counter()
    p = run_cli("summarize", book[fmt], "--format", "json", "--cache-dir", book["cache"], "-q",
                *THREAD_ARGS, *extra)
    wall = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout), wall


def _check_topics(r: dict) -> None:
    parts = r["parts"]
    assert [p["title"] for p in parts] == TITLES, [p["title"] for p in parts]
    misses = []
    for part in parts:
        text = part["summary"].lower()
        if not any(w in text for w in TOPIC_WORDS[part["title"]]):
            misses.append((part["title"], part["summary"]))
    assert not misses, misses
    assert r["overview"] and not r["overview"].startswith("[no usable")


# ---------------------------------------------------------------- real model
@pytest.mark.model
def test_pdf_summary_one_part_per_chapter_with_pages_and_topics(book, pdf_run):
    r, _ = pdf_run
    print(json.dumps({k: r["stats"][k] for k in ("doc_tokens", "ingest_tokens_per_s", "summary_tokens",
                                                  "total_s", "peak_rss_bytes", "distillations")}))
    for p in r["parts"]:
        print(f"{p['title']} [{p['where']}]: {p['summary']}")
    print("overview:", r["overview"])
    _check_topics(r)
    st = r["stats"]
    assert st["cached"] is False and st["distillations"] >= 4 and st["mode"] == "pot"
    assert st["max_position"] < st["n_ctx"]
    assert any(s["closed_by"] == "pot full" for s in r["sections"])
    # Every token generated is counted, also when the summary stopped at a blank line
    # (each word after the lead took one token at least).
    for s in r["sections"]:
        if s["degenerate"]:  # a marker, not generated text
            continue
        words = len(s["summary"].split()) - len("This text is about".split())
        assert s["summary_tokens"] >= words, s
    assert st["summary_tokens"] >= sum(s["summary_tokens"] for s in r["sections"])
    # Page references: each chapter starts on the page its outline entry names.
    for part, nxt in zip(r["parts"], r["parts"][1:] + [None]):
        assert part["first"]["page"] == book["first_page"][part["title"]]
        last = int(book["first_page"][nxt["title"]]) - 1 if nxt else book["n_pages"]
        assert part["last"]["page"] == str(last)
        assert part["where"] == f"pp. {part['first']['page']}–{last}"


@pytest.mark.model
def test_second_run_returns_the_cached_summary_at_once(book, pdf_run):
    first, first_wall = pdf_run
    assert first["cached"] is False
    again, wall = _summarize(book, "pdf", "--pot-tokens", "2048")
    # Served by the cache lookup (which alone sets cached and lookup_s), before
    # the model is loaded; how fast is printed, not asserted.
    assert again["cached"] is True and again["stats"]["cached"] is True and "lookup_s" in again["stats"]
    assert again["parts"] == first["parts"] and again["overview"] == first["overview"]
    print(f"first run {first_wall:.1f} s, cached {wall:.1f} s (lookup {again['stats']['lookup_s']} s)")


@pytest.mark.model
def test_epub_summary_by_chapter_as_markdown(book, model_path):
    r, _ = _summarize(book, "epub")
    for p in r["parts"]:
        print(f"{p['title']}: {p['summary']}")
    _check_topics(r)
    assert r["stats"]["distillations"] == 0 and len(r["sections"]) == 4  # fits the default pot
    assert r["title"] == "Four Crafts"
    # The Markdown of the same (now cached) result.
    p = run_cli("summarize", book["epub"], "--cache-dir", book["cache"], "--out", book["dir"] / "s.md")
    assert p.returncode == 0, p.stderr
    md = (book["dir"] / "s.md").read_text()
    assert md.startswith("# Four Crafts\n")
    assert [l[3:] for l in md.splitlines() if l.startswith("## ")] == TITLES


@pytest.mark.model
def test_folder_with_a_broken_book_summarizes_the_rest(tmp_path, model_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "notes.md").write_text(
        "# Sourdough\n\n" + topic_chapters(300)[0][1] + "\n\n# Bees\n\n" + topic_chapters(300)[3][1] + "\n")
    make_corrupt_pdf(books / "broken.pdf")
    (books / "cover.jpg").write_bytes(b"\xff\xd8\xff not a book")  # not a book type: skipped
    out = tmp_path / "out"
    p = run_cli("summarize", books, "--out", out, "--cache-dir", tmp_path / "cache", "--length", "short",
                *THREAD_ARGS)
    assert p.returncode == 1, p.stderr  # the others summarized (2: none)
    assert "Traceback" not in p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("bookpot: ")]
    assert any("broken.pdf" in l for l in errors), p.stderr
    assert not any("cover.jpg" in l for l in errors)
    assert "1 of 2 books summarized" in p.stderr
    md = (out / "notes.summary.md").read_text()
    assert "## Sourdough" in md and "## Bees" in md
    assert not (out / "broken.summary.md").exists()


@pytest.mark.model
def test_without_a_pot_sections_are_consecutive_windows_and_nothing_is_skipped(tmp_path, model_path):
    """--mode truncate: reading pauses before the window overflows; every token is in a section."""
    doc = tmp_path / "two.md"
    doc.write_text("".join(f"# {t}\n\n{x}\n\n" for t, x in topic_chapters(700)[1:3]))
    p = run_cli("summarize", doc, "--mode", "truncate", "--pot-tokens", "512", "--length", "short",
                "--json", "--cache-dir", tmp_path / "cache", "-q", *THREAD_ARGS)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    secs = r["sections"]
    assert any(s["closed_by"] == "window full" for s in secs)
    assert sum(s["tokens"] for s in secs) == r["stats"]["doc_tokens"] > 1200
    last_line = len(doc.read_text().rstrip("\n").splitlines())
    assert secs[-1]["last"]["line_end"] == last_line  # the end of the book was read
    assert r["stats"]["max_position"] < r["stats"]["n_ctx"]
    assert [p["title"] for p in r["parts"]] == ["Lighthouse Keeping", "Chess Openings"]


@pytest.mark.model
def test_interrupted_run_resumes_after_the_last_finished_chapter(tmp_path, model_path):
    """A chapter boundary empties the window, so resuming there is exact."""
    from bookpot.engine.llm import Model
    from bookpot.engine.readers import open_document
    from bookpot.engine.session import Session
    from bookpot.engine.summarize import Resume, Summarizer
    from bookpot.engine.pot import PotConfig

    doc = tmp_path / "three.md"
    doc.write_text("".join(f"# {t}\n\n{x}\n\n" for t, x in topic_chapters(250)[:3]))
    model = Model(model_path)

    def fresh():
        return Session(model, n_ctx=1024 + 512, pot=PotConfig(1024, 512),
                       threads=int(THREADS) if THREADS else None)

    whole = Summarizer(fresh(), length="short")
    whole.run(open_document(doc).segments())

    saved = {}

    class Stop(Exception):
        pass

    def checkpoint(state):
        saved.update(state)
        raise Stop

    with pytest.raises(Stop):
        Summarizer(fresh(), length="short", checkpoint=checkpoint).run(open_document(doc).segments())
    assert len(saved["sections"]) == 1
    resumed = Summarizer(fresh(), length="short")
    resumed.run(open_document(doc).segments(), resume=Resume(**saved))
    assert [s.summary for s in resumed.sections] == [s.summary for s in whole.sections]
    assert [s.tokens for s in resumed.sections] == [s.tokens for s in whole.sections]


@pytest.mark.model
def test_a_summary_loads_the_kv_questions_and_reading_saved(book, tmp_path, model_path):
    """Issue #19: a summary decodes no token a question prefilled on demand, nor, after
    ``ingest``, any token the reading saved; it still names every chapter's topic, and a
    damaged unit file is decoded instead."""
    cache = tmp_path / "cache"

    def summary(*extra) -> dict:
        p = run_cli("summarize", book["pdf"], "--pot-tokens", "2048", "--json", "-q", "--cache-dir", cache,
                    *THREAD_ARGS, *extra)
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
        r = json.loads(p.stdout)
        print({k: r["stats"][k] for k in ("doc_tokens", "reused_tokens", "reuse_load_s", "ingest_s", "total_s")})
        _check_topics(r)
        assert r["stats"]["max_position"] < r["stats"]["n_ctx"]
        return r

    # A question about the unread book prefills a few chunks on demand.
    p = run_cli("ask", book["pdf"], "What do beekeepers use to calm the bees?", "--json", "-q",
                "--cache-dir", cache, *THREAD_ARGS)
    assert p.returncode == 0, p.stderr
    asked = json.loads(p.stdout)["stats"]
    assert 0 < asked["ondemand_tokens"] < asked["book_tokens"] / 2
    r = summary()
    # Those chunks' units are loaded (their first chunk's attention sinks are in no unit).
    assert asked["ondemand_tokens"] - 4 <= r["stats"]["reused_tokens"] <= asked["ondemand_tokens"]
    assert "reuse" not in r["settings"]

    p = run_cli("ingest", book["pdf"], "--cache-dir", cache, "-q", *THREAD_ARGS)
    assert p.returncode == 0, p.stderr
    r = summary("--fresh")  # (the same key: the first summary would come back from the cache)
    st = r["stats"]
    # Every token but the book's first four (its attention sinks are in no unit) was loaded.
    assert st["reused_tokens"] == st["doc_tokens"] - 4 and st["reused_from"]
    assert st["distillations"] >= 4

    # A unit file damaged on disk: its chunk (512 tokens at most) is decoded, the rest still loaded.
    units = sorted((cache / "books" / st["reused_from"] / "units" / "units").glob("u*.kv"))
    victim = units[len(units) // 2]
    victim.write_bytes(b"\0" * victim.stat().st_size)
    again = summary("--fresh")
    assert st["reused_tokens"] - 512 <= again["stats"]["reused_tokens"] < st["reused_tokens"]


@pytest.mark.model
def test_the_cache_key_names_the_pot_the_summary_uses(tmp_path):
    """A summary reads through the largest pot its RAM cap allows; the cache key names that
    pot, so a summary made under another cap (another pot, other sections) is not returned."""
    doc = tmp_path / "crafts.txt"
    doc.write_text(topic_chapters(300)[0][1])
    runs = {}
    for cap in ("600M", "2G"):
        p = run_cli("summarize", doc, "--ram-cap", cap, "--json", "-q", "--cache-dir", tmp_path / "cache",
                    *THREAD_ARGS)
        assert p.returncode == 0, p.stderr
        runs[cap] = json.loads(p.stdout)
        assert runs[cap]["settings"]["pot_tokens"] == runs[cap]["stats"]["pot_tokens"]
    assert runs["600M"]["stats"]["pot_tokens"] != runs["2G"]["stats"]["pot_tokens"]
    assert runs["2G"]["cached"] is False


def test_saved_kv_covers_a_chunk_only_with_the_same_tokens(tmp_path):
    """savedkv.SavedKV: book token ranges -> unit files; a gap or other tokens -> None."""
    import numpy as np

    from bookpot.engine.lexicon import Lexicon
    from bookpot.engine.savedkv import SavedKV
    from bookpot.engine.textpass import SINK_TOKENS, Early, TextIndex

    book = tmp_path / "book"
    (book / "units" / "units").mkdir(parents=True)
    toks = list(range(1000, 1000 + 40))  # the book's tokens after its attention sinks
    lines = [json.dumps({"id": i, "tok0": 10 * i, "n": 10, "loc": 0, "kv": i != 2, "digest": f"d{i}",
                         "bytes": 1}) for i in range(4)]
    (book / "units" / "units.jsonl").write_text("\n".join(lines) + "\n")
    np.asarray(toks, np.int32).tofile(book / "units" / "tokens.i32")
    # An early unit (prefilled on demand) past the read ones: chunk 5 holds book tokens 60..80.
    lex = Lexicon(book / "units" / "lexicon.sqlite")
    text = TextIndex(lex)
    text._create()
    early_toks = list(range(5000, 5020))
    lex.db.execute("INSERT INTO tp_chunks VALUES (5, 60, 9, 2, 0, 0, ?)", (np.asarray(early_toks, np.int32).tobytes(),))
    text.add_early(Early(5, [(10, "e10", 1)], np.zeros(0, np.float16), np.zeros(0, np.float32)))
    lex.db.close()

    saved = SavedKV.read(book, n_units=3, unit_tokens=10)  # unit 3: past the checkpoint, not offered
    assert [(u.g0, u.n) for u in saved.units] == [(SINK_TOKENS, 10), (SINK_TOKENS + 10, 10), (70, 10)]
    # Book tokens 9..19 span units 0 and 1.
    got = saved.cover(9, toks[5:15])
    assert [(u.g0, a, b) for u, a, b in got] == [(SINK_TOKENS, 5, 10), (SINK_TOKENS + 10, 0, 5)]
    assert saved.cover(9, toks[5:14] + [7]) is None  # another token
    # A chunk saved in part: its saved runs and the rest (decoded by the session).
    runs = [(a, b, None if p is None else [(u.g0, ua, ub) for u, ua, ub in p]) for a, b, p in saved.runs(9, toks[5:25])]
    assert runs == [(0, 15, [(SINK_TOKENS, 5, 10), (SINK_TOKENS + 10, 0, 10)]), (15, 20, None)]
    changed = toks[5:12] + [7] + toks[13:25]  # one token of unit 1 differs: unit 1 is not used
    assert [(a, b, p is None) for a, b, p in saved.runs(9, changed)] == [(0, 5, False), (5, 20, True)]
    assert saved.cover(20, toks[16:26]) is None  # unit 2 has no KV file: a gap
    assert saved.cover(0, [1, 2, 3]) is None  # the attention sinks are in no unit
    assert saved.cover(70, early_toks[10:20])[0][0].path.name == "e0000010.kv"
    assert saved.cover(60, early_toks[:10]) is None  # unit 9 of chunk 5 was not prefilled
    assert SavedKV.read(book, n_units=1, unit_tokens=10).tokens == 10 + 10  # a reading stopped earlier
    # The book's cache cleared while a summary runs (``bookpot cache clear BOOK``): decoded, no error.
    (book / "units" / "tokens.i32").unlink()
    assert [(a, b, p) for a, b, p in saved.runs(9, toks[5:25])] == [(0, 20, None)]


def test_chapter_streams_have_the_tokens_of_one_reading(tmp_path, model_path):
    """The summarizer reads each chapter as a token stream of its own; together they are the
    tokens a reading of the whole book has (the saved KV it loads is found by those tokens):
    the blank lines before a Markdown heading, or a chapter of blank segments, are not lost."""
    import itertools

    from bookpot.engine.llm import Model
    from bookpot.engine.readers import open_document
    from bookpot.engine.readers.base import Locator, Segment
    from bookpot.engine.tokens import chapter_streams
    from bookpot.engine.tokens import token_chunks

    vocab = Model(model_path, vocab_only=True)
    md = tmp_path / "book.md"
    md.write_text("".join(f"# {t}\n\n{x[:1500]}\n\n\n" for t, x in topic_chapters(400)))
    made = [Segment("  \n", Locator(chapter="Cover")), Segment("One.\n\n", Locator(chapter="A")),
            Segment("\n \n", Locator(chapter="B")), Segment("Two.", Locator(chapter="C")),
            Segment("Three.\n", Locator(chapter="D")), Segment("\tFour.", Locator(chapter="E"))]

    def tokens(segments, **kw) -> list[int]:
        return [t for c in token_chunks(vocab, segments, separator="|", **kw) for t in c.tokens]

    def by_chapter(segments) -> list[int]:  # as Summarizer.run: first=False once a token was read
        out = []
        for _, group in itertools.groupby(segments, key=lambda s: s.locator.chapter):
            out += tokens(group, first=not out)
        return out

    for segments in (lambda: open_document(md).segments(), lambda: iter(made)):
        read = tokens(segments())
        assert by_chapter(segments()) != read  # the case at hand: plain chapter streams lose whitespace
        assert by_chapter(chapter_streams(segments())) == read


def test_errors_are_one_line(tmp_path):
    p = run_cli("summarize", tmp_path / "missing.pdf", "--cache-dir", tmp_path)
    assert p.returncode == 2 and p.stderr.strip().startswith("bookpot: ") and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = run_cli("summarize", tmp_path, "--length", "huge")
    assert p.returncode == 2 and p.stderr.startswith("bookpot: ")


# ---------------------------------------------------------------- no model
def test_degenerate_output_is_recognised():
    assert degenerate_reason("") == "empty"
    assert degenerate_reason("  \n ") == "empty"
    assert degenerate_reason("Bread.") == "empty"
    assert degenerate_reason("The hive hums. The hive hums. The hive hums. The bees sleep.") == "repetitive"
    assert degenerate_reason("bee " * 30) == "repetitive"
    assert degenerate_reason("the keeper lights the lamp and " * 6) == "repetitive"
    assert degenerate_reason("The chapter follows a lighthouse keeper through a winter of storms, "
                             "polishing the lens and logging every passing ship.") is None
    assert degenerate_reason("A baker kneads the dough. The loaf rises overnight. "
                             "In the morning the bread is baked.") is None


def test_loops_are_caught_as_they_start():
    assert looping(["The", " hive", " hums", "."] * 3)
    assert not looping(["The", " hive", " hums", "."] * 2)
    assert looping(["!"] * 12) and not looping(["!"] * 11)
    assert not looping([" very", " very", " good"])
    assert not looping([w + " " for w in "a summary that never repeats itself at all in any way".split()])
    assert not looping(["\n"] * 20)  # whitespace runs are the blank-line stop's business


def test_repeats_dropped_and_sentences_finished():
    assert drop_repeats("Bees make honey. Bees make honey. The hive is warm.") == \
        "Bees make honey. The hive is warm."
    said_twice = ("She is a lighthouse keeper, and she lives in lonely stations on islands. "
                  "She is a lighthouse keeper, who lives in lonely stations on islands. The sea is grey.")
    assert drop_repeats(said_twice) == \
        "She is a lighthouse keeper, and she lives in lonely stations on islands. The sea is grey."
    more = "This text is about bees. The text is about how bees make honey in a hive."
    assert drop_repeats(more) == more  # says more: kept
    assert finish_sentence("The keeper lights the lamp. He climbs the stairs and") == \
        "The keeper lights the lamp."
    assert finish_sentence("A short one") == "A short one…"
    assert finish_sentence("Done.") == "Done."


def test_overview_must_cover_the_parts_or_is_composed_from_them():
    from bookpot.engine.summarize import compose_overview, covers

    parts = [Part(t, [t], {}, {}, f"This text is about {s}.", [i]) for i, (t, s) in enumerate([
        ("Bread Baking", "a baker who kneads dough"), ("Lighthouse Keeping", "a keeper polishing the lamp"),
        ("Chess Openings", "the first moves of a chess game"), ("Bee Keeping", "a beekeeper and her hives")])]
    assert covers("Four crafts: baking bread, keeping a lighthouse lamp, chess openings and bees in hives.", parts)
    # What the 135M model wrote for them: one topic, and an invented story.
    assert not covers("This text is about the story of a village beekeeper who feeds his queen bees.", parts)
    assert not covers("This text is about a young girl who lives in the village of Ashwood.", parts)
    # Seen in a test run: common words ("makes", "young") shared with a
    # part's later sentences must not count; only its title and subject do.
    parts[0].summary += " He makes his own sourdough starter."
    parts[2].summary += " A young player studies openings."
    assert not covers("This text is about a young village beekeeper who makes sure to feed the bees.", parts)
    composed = compose_overview(parts)
    assert composed.startswith("4 chapters: Bread Baking; Lighthouse Keeping; Chess Openings; Bee Keeping.")
    assert "Chess Openings: This text is about the first moves of a chess game." in composed
    assert covers(composed, parts)


def test_span_of_pages_lines_and_chapters():
    assert span({"page": "3"}, {"page": "7"}) == "pp. 3–7"
    assert span({"page": "iv"}, {"page": "iv"}) == "p. iv"
    assert span({"line_start": 1, "line_end": 9}, {"line_start": 40, "line_end": 80}) == "lines 1–80"
    assert span({"chapter": "One"}, {"chapter": "One"}) == ""


def _summary(parts, overview="Four crafts, one per chapter.") -> BookSummary:
    sections = [Section(i, p.summary, p.chapters, p.first, p.last, 1000, "chapter end", p.degenerate)
                for i, p in enumerate(parts)]
    return BookSummary(title="Four Crafts", path="/x/topics.pdf", overview=overview, parts=parts,
                       sections=sections, stats={"doc_tokens": 9000, "distillations": 4,
                                                 "model": "smollm2-135m"})


def test_markdown_has_title_overview_and_a_heading_per_chapter_with_pages():
    from bookpot.app.summarize import render_markdown

    parts = [Part("Bread Baking", ["Bread Baking"], {"page": "1"}, {"page": "5"}, "Bakers knead dough.", [0]),
             Part("Bee Keeping", ["Bee Keeping"], {"page": "6"}, {"page": "9"},
                  "[no usable summary: the model's output was repetitive]", [1], "repetitive")]
    md = render_markdown(_summary(parts))
    lines = md.splitlines()
    assert lines[0] == "# Four Crafts"
    assert "Four crafts, one per chapter." in md
    i = lines.index("## Bread Baking")
    assert lines[i + 2] == "*pp. 1–5*" and lines[i + 4] == "Bakers knead dough."
    assert "*[no usable summary: the model's output was repetitive]*" in md  # marked, not hidden
    assert "9,000 tokens" in md and "topics.pdf" in md


def test_markdown_without_chapters_uses_page_ranges():
    from bookpot.app.summarize import render_markdown

    parts = [Part("pp. 1–4", [], {"page": "1"}, {"page": "4"}, "First part.", [0]),
             Part("pp. 5–8", [], {"page": "5"}, {"page": "8"}, "Second part.", [1])]
    md = render_markdown(_summary(parts))
    assert "## Pp. 1–4" in md and "## Pp. 5–8" in md


def test_json_round_trips_with_the_same_structure():
    from bookpot.app.summarize import render_json

    parts = [Part("Chess Openings", ["Chess Openings"], {"chapter": "Chess Openings"},
                  {"chapter": "Chess Openings"}, "Openings develop pieces.", [0])]
    s = _summary(parts)
    d = json.loads(render_json(s))
    assert d["title"] == "Four Crafts" and d["overview"] == s.overview
    assert d["parts"][0]["title"] == "Chess Openings" and d["parts"][0]["where"] == ""
    assert d["sections"][0]["closed_by"] == "chapter end"
    assert d["stats"]["doc_tokens"] == 9000 and d["cached"] is False and d["format_version"] >= 1
    del d["format_version"]
    assert BookSummary.from_dict(d).to_dict() == d


def test_folders_expand_to_their_books_and_outputs_do_not_collide(tmp_path):
    from bookpot.app.summarize import expand_books, output_paths

    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "b.md").write_text("# B")
    (tmp_path / ".hidden.md").write_text("x")
    (tmp_path / "c.jpg").write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    books = expand_books([str(tmp_path), str(tmp_path / "a.pdf"), str(empty)])
    assert [b for b, e in books if e is None] == [str(tmp_path / "a.pdf"), str(tmp_path / "b.md")]
    assert [e for _, e in books if e] and "no books" in [e for _, e in books if e][0]
    outs = output_paths(["x/a.pdf", "y/a.pdf"], str(tmp_path / "out"), "md")
    assert [o.name for o in outs] == ["a.summary.md", "a-2.summary.md"]
    assert output_paths(["a.pdf"], None, "md") == [None]
    assert output_paths(["a.pdf"], str(tmp_path / "one.json"), "json") == [tmp_path / "one.json"]


def test_saved_kv_is_found_for_the_same_book_model_and_style_unless_no_reuse(tmp_path, model_path):
    """``SummaryModel.saved_kv``: the cached reading of this document, model and prompt style;
    none for another document, or with ``--no-reuse``."""
    from bookpot.engine import store
    from bookpot.engine.bookcache import model_id
    from bookpot.engine.summarycache import SummaryModel, SummaryOptions

    shared = SummaryModel(SummaryOptions(cache_dir=str(tmp_path)))
    d = tmp_path / "books" / "k1"
    (d / "units" / "units").mkdir(parents=True)
    (d / "units" / "units.jsonl").write_text(json.dumps(
        {"id": 0, "tok0": 0, "n": 8, "loc": 0, "kv": True, "digest": "x", "bytes": 1}) + "\n")
    store.atomic_write_json(d / "manifest.json", {
        "document": {"hash": "doc1"}, "model": model_id(shared.path), "units": 1,
        "settings": {"style": shared.prompt_style, "units": True, "unit_tokens": 128}})
    found = shared.saved_kv("doc1")
    assert found is not None and found.dir == d and found.tokens == 8
    assert shared.saved_kv("doc2") is None
    no_reuse = SummaryModel(SummaryOptions(cache_dir=str(tmp_path), reuse=False))
    assert no_reuse.saved_kv("doc1") is None
    # Every token decoded: a cache key of its own; the default's key is the one from before reuse.
    assert no_reuse.settings()["reuse"] is False and "reuse" not in shared.settings()
    other = "chat" if shared.prompt_style == "completion" else "completion"
    assert SummaryModel(SummaryOptions(cache_dir=str(tmp_path), prompt_style=other)).saved_kv("doc1") is None


def test_summary_options_defaults_are_the_command_lines():
    """The reader builds SummaryOptions from these defaults: they must be what
    `bookpot summarize BOOK` gets, or its summaries would miss the CLI's cache."""
    from bookpot.app.cli import build_parser
    from bookpot.app.summarize import summary_options
    from bookpot.engine.summarycache import SummaryOptions

    args = build_parser().parse_args(["summarize", "book"])
    assert summary_options(args) == SummaryOptions()
    args = build_parser().parse_args(["summarize", "book", "--no-nuc", "--no-cache", "--length", "short",
                                      "--ram-cap", "1G", "--fresh", "--no-reuse"])
    o = summary_options(args)
    assert (o.nuc, o.cache, o.length, o.ram_cap, o.fresh, o.reuse) == (False, False, "short", "1G", True, False)
