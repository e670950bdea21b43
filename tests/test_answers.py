"""Questions as people type them, about real prose, answered with quotes (issue #18).

The prose is GNU manuals that Debian installs under /usr/share/info
(tests/natural.py inserts invented facts). Each test runs the real CLI on
the real default model, beside plain llama.cpp given the same document and
the question as typed, in the same run. Sized for CI: a 3K PDF and a 12K
EPUB, six questions each.
"""
from __future__ import annotations

import json

import pytest

import natural
from conftest import run_cli, run_json
from plain_llama import plain_answers

pytestmark = [pytest.mark.model,
              pytest.mark.skipif(not natural.prose_available(), reason="the GNU manuals in /usr/share/info")]

# A 3K PDF whose printed page labels start at "iv" (so a quote's page is the
# label, not the physical page), and a 12K EPUB (units beyond the pot).
N_QUESTIONS = 6


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from docgen import make_pdf

    d = tmp_path_factory.mktemp("natural")
    small = natural.build(3072, [f.id for f in natural.FACTS[:N_QUESTIONS]], "pdf", name="q3k")
    pdf = d / "q3k.pdf"
    make_pdf(pdf, ["\n\n".join(small.paras[i].text for i in page) for page in small.pages()],
             page_labels={0: ("roman", 4)})
    big = natural.build(12288, [f.id for f in natural.FACTS[N_QUESTIONS:2 * N_QUESTIONS]], "epub",
                        offset=400, name="q12k")
    epub = big.write(d)
    return [(pdf, small), (epub, big)]


@pytest.fixture(scope="module")
def answers(docs, model_path):
    """bookpot's JSON answer to every question of both documents."""
    out = []
    for path, doc in docs:
        for fact in doc.facts():
            out.append((path, doc, fact, run_json("ask", path, fact.question, "-q")))
    return out


def test_plain_questions_beat_plain_llama_cpp(docs, answers, model_path):
    ours = {p: sum(natural.answer_ok(f, r["answer"]) for q, _, f, r in answers if q == p) for p, _ in docs}
    theirs = {}
    for path, doc in docs:
        text = "\n".join(natural.pages_by_locator(path).values())
        # The whole document, or its last window where it does not fit the
        # model's 8K window (~4 characters a token in this prose).
        prompts = [text[-28000:] + "\n" + f.question for f in doc.facts()]
        got = plain_answers(model_path, prompts, n_ctx=8192, max_tokens=48, reuse_prefix=True)
        theirs[path] = sum(natural.answer_ok(f, a) for f, a in zip(doc.facts(), got))
    print("bookpot", {p.name: n for p, n in ours.items()}, "plain llama.cpp", {p.name: n for p, n in theirs.items()})
    for path, _ in docs:
        assert ours[path] >= theirs[path] + 1, (path.name, ours, theirs)
    # bench/questions.py measures 70%+ at 3K and 60%+ at 16K on 40 questions;
    # six questions per document leave a margin of two.
    assert ours[docs[0][0]] >= N_QUESTIONS - 3 and ours[docs[1][0]] >= N_QUESTIONS - 4


def test_no_answer_is_empty_and_every_one_has_quotes(answers):
    for path, _, fact, r in answers:
        assert r["answer"].strip(), (fact.question, r)
        assert r["answered"] or r["answer"] == "The book does not seem to say."
        assert any("quote" in c for c in r["citations"]), (fact.question, r["citations"])


def test_quotes_are_verbatim_page_text_and_hold_the_fact(docs, answers):
    pages = {path: natural.pages_by_locator(path) for path, _ in docs}
    held = 0
    for path, doc, fact, r in answers:
        for c in r["citations"]:
            if "quote" not in c:
                continue
            text = pages[path][c["locator"]]
            assert text[c["start"]:c["end"]] == c["quote"], c
            if path.suffix == ".pdf":
                assert c["page"] in ("iv", "v", "vi", "vii", "viii", "ix"), c  # the printed label
            else:
                assert c.get("chapter"), c
        held += any(natural.holds_evidence(fact, c.get("quote", "")) for c in r["citations"])
    assert held >= len(answers) - 2, held


def test_a_question_that_gave_an_empty_answer_now_says_something(tmp_path):
    """Before issue #18 this document and question gave "" with exit 0 (the
    model's first token was a blank line): bench/out/questions-baseline.jsonl."""
    doc = natural.build(3072, ["F26", "F27", "F28", "F29", "F30"], "epub", name="empty")
    path = doc.write(tmp_path)
    p = run_cli("ask", path, natural.BY_ID["F29"].question, "-q")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines and lines[0].strip(), p.stdout
    assert any(line.startswith('> "') for line in lines), p.stdout
    r = json.loads(run_cli("ask", path, natural.BY_ID["F29"].question, "--json", "-q").stdout)
    assert r["answer"].strip() and (r["answered"] or r["passages"] or r["citations"])


def test_a_non_answer_prints_only_the_not_said_line(tmp_path):
    """The streamed answer is the answer: the model restating the question
    ("The last keeper of Harrow Point was the last keeper of Harrow Point.")
    once streamed its words, then "The book does not seem to say." after
    them, because " keep" counted as a new word before it became " keeper".
    The document is this project's README, which holds the sample question
    but not its answer."""
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "README.md"
    book = tmp_path / "readme.md"
    book.write_text(readme.read_text(encoding="utf-8"), encoding="utf-8")
    question = "Who was the last keeper of Harrow Point?"
    p = run_cli("ask", book, question, "-q")
    assert p.returncode == 0, p.stderr
    r = json.loads(run_cli("ask", book, question, "--json", "-q").stdout)
    printed = p.stdout.split("The passages nearest your question:")[0].split("\n> ")[0].strip()
    assert printed == r["answer"].strip(), (p.stdout, r["answer"])


def test_a_fact_cut_by_a_unit_boundary_is_found_and_quoted(tmp_path, model_path):
    """The fact's key sits across the boundary between two memory units (the
    first chunk's units start at token 4, the attention sinks, then every
    128 tokens): the lookup loads the best unit's neighbours with it, and the
    quote is cut from the page, not from one unit."""
    from bookpot.engine.llm import Model
    from bookpot.engine.readers import open_document
    from bookpot.engine.tokens import token_chunks

    fact = natural.BY_ID["F01"]  # "... counted exactly 47 sheep ..." key "47 sheep"
    base = natural.build(1400, [], "txt", offset=900, name="straddle").text()
    vocab = Model(model_path, vocab_only=True)
    path = tmp_path / "straddle.txt"
    path.write_text(base)
    first = next(token_chunks(vocab, open_document(str(path)).segments()))
    boundary = 4 + 128 * 2  # the end of the document's second unit
    cut_at = len(vocab.detokenize(first.tokens[:boundary]).lstrip())
    # put the key across the boundary: try the word starts near where its
    # middle would fall on it, keep the first that really straddles
    want = cut_at - (fact.sentence.index(fact.key) + len(fact.key) // 2)
    starts = sorted((i + 1 for i, c in enumerate(base) if c == " " and abs(i - want) < 120),
                    key=lambda i: abs(i - want))
    for at in starts:
        text = base[:at] + fact.sentence + " " + base[at:]
        path.write_text(text)
        first = next(token_chunks(vocab, open_document(str(path)).segments()))
        left = vocab.detokenize(first.tokens[4 + 128:boundary])
        right = vocab.detokenize(first.tokens[boundary:boundary + 128])
        if fact.key not in left and fact.key not in right and fact.key in left + right:
            break
    else:
        pytest.fail("no placement puts the key across the unit boundary")
    vocab.close()

    r = run_json("ask", path, fact.question, "-q")
    joined = "".join(p["text"] for p in sorted(r["passages"], key=lambda p: p["unit"]))
    assert fact.key in joined, r["passages"]
    assert natural.answer_ok(fact, r["answer"]), r["answer"]
    quotes = [c["quote"] for c in r["citations"] if "quote" in c]
    assert any(natural.holds_evidence(fact, q) for q in quotes), quotes
