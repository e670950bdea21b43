"""Answer stems, quotes and the lexical index: the parts of issue #18 that need no model."""
from __future__ import annotations

import pytest

from bookpot.engine.evidence import Seen, choose, locate, raw_words, sentence_spans, words
from bookpot.engine.lexicon import Lexicon
from bookpot.engine.loops import first_sentence_end
from bookpot.engine.stems import answer_stem


@pytest.mark.parametrize("question,stem", [
    ("What is the pass key?", "The pass key is"),
    ("what's the name of the dog", "The name of the dog is"),
    ("Where is the spare key kept?", "The spare key is kept"),
    ("Where did the old keeper hide the key?", "The old keeper hid"),
    ("How many sheep did Marta Quill count?", "Marta Quill counted"),
    ("How many ships were there?", "There were"),
    ("Who found the letter?", "The letter was found by"),
    ("Who painted the portrait in the east hall?", "The portrait in the east hall was painted by"),
    ("Who leads the lantern festival in Harwick?", "The lantern festival in Harwick is led by"),
    ("Who came to the party late?", "The one who came to the party late was"),
    ("How many singers are in the choir at Saint Bride's?", "The choir at Saint Bride's has"),
    ("Why did the ship sink?", "The ship sank because"),
    ("When was the lighthouse built?", "The lighthouse was built"),
    ("Which room is the key in?", "The key is in"),
    ("What is the key made of?", "The key is made of"),
    ("Who was the last keeper of Harrow Point?", "The last keeper of Harrow Point was"),
    ("Where does the captain keep the map?", "The captain keeps"),
    ("Why did the ship sink?", "The ship sank because"),
    ("How old was Marta?", "Marta was"),
    ("When did the Pellworth town clock stop?", "The Pellworth town clock stopped"),
    ("When did the storm damage the roof?", "The storm damaged"),
])
def test_stems_of_plain_questions(question, stem):
    assert answer_stem(question) == stem


@pytest.mark.parametrize("request_,stem", [
    ("Tell me how many sheep Marta Quill counted.", "Marta Quill counted"),
    ("Can you tell me how many jars of honey Walter Pym filled?", "Walter Pym filled"),
    ("tell me how many sheep she counted", "She counted"),
    ("Can you tell me where Captain Idris Vale buried the logbook?", "Captain Idris Vale buried"),
    ("I'd like to know when the Pellworth town clock stopped.", "The Pellworth town clock stopped"),
    ("I want to know when the bridge over the Harrow River was opened.",
     "The bridge over the Harrow River was opened"),
    ("Explain why Hettie Larkspur closed her bakery early on Fridays.",
     "Hettie Larkspur closed her bakery early on Fridays because"),
    ("Tell me who the first woman to climb Mount Calder was.", "The first woman to climb Mount Calder was"),
    ("Do you know who drew the map of the salt caves?", "The map of the salt caves was drawn by"),
    ("Tell me what Oona Bright said whenever a storm came.", "Oona Bright said"),
    ("Tell me what the sign on Quentin Drabble's shop says.", "The sign on Quentin Drabble's shop says"),
    ("Tell me the pass key to the archive room.", "The pass key to the archive room is"),
    ("Tell me the last words in Felix Amberley's diary.", "The last words in Felix Amberley's diary are"),
    ("Do you know the motto of the Crane Street Rowing Club?", "The motto of the Crane Street Rowing Club is"),
    ("Tell me about the lighthouse", "The lighthouse"),
    ("Describe Ada Brennan", "Ada Brennan"),
])
def test_stems_of_requests(request_, stem):
    """Requests ("tell me ...", "can you tell me ...", "describe ...") as people type them."""
    assert answer_stem(request_) == stem


@pytest.mark.parametrize("question", [
    "What is the pass key? The pass key is",  # the person began the answer already
    "Did Marta count the sheep?",  # yes/no: no stem
    "Summarize this book",
    "x",
])
def test_no_stem_where_none_fits(question):
    assert answer_stem(question) is None


def test_first_sentence_end_skips_abbreviations_and_decimals():
    assert first_sentence_end("a woman named Ada Brennan. She took") == len("a woman named Ada Brennan.")
    assert first_sentence_end(" Mr. Brennan. x") == len(" Mr. Brennan.")
    assert first_sentence_end(" 3.5 km. Then") == len(" 3.5 km.")
    assert first_sentence_end(" 47 sheep.") == -1  # not ended until white space follows


def test_words_are_lemmatized_content_words():
    assert words("She climbed 112 steps") == {"climb", "112", "step"}
    assert "the" not in words("The key") and "key" in words("The key")


def test_sentence_spans_keep_pdf_line_breaks_inside_a_sentence():
    text = "The keeper counted\nexactly 47 sheep. Then she slept.\n\nA new paragraph"
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == ["The keeper counted\nexactly 47 sheep.", "Then she slept.", "A new paragraph"]


def test_locate_finds_a_unit_in_its_page():
    page = "Intro.\nThe keeper counted exactly 47 sheep. The end."
    assert locate(page, " counted exactly 47") == (page.index("counted"), page.index(" sheep"))
    assert locate(page, "nowhere in the page at all, truly") is None


def test_quotes_are_verbatim_and_prefer_the_answers_words():
    pages = {0: "The meadow lay north of the village. Marta Quill counted exactly 47 sheep there.\n"
                "She counted the geese too.",
             1: "On page two the sheep were sold at the market in Selby."}
    seen = [Seen(0, 0, len(pages[0]), 0, "unit"), Seen(1, 0, len(pages[1]), 1000, "window")]
    quotes = choose(pages, seen, "How many sheep did Marta Quill count?", words("47 sheep"))
    assert quotes and "47" in quotes[0].text
    for q in quotes:
        assert pages[q.loc][q.start:q.end] == q.text
    # a stretch of the page the model did not see is never quoted
    only = choose(pages, [Seen(0, 0, 20, 0, "unit")], "How many sheep did Marta count?", words("47"))
    assert all(q.end <= len("The meadow lay north of the village.") + 1 for q in only)


def test_a_pot_page_is_quoted_only_where_the_pot_still_holds_its_words():
    pages = {0: "Marta Quill counted exactly 47 sheep. The weather was fine and warm."}
    seen = [Seen(0, 0, len(pages[0]), 1000, "pot", held=words("weather fine warm"))]
    assert choose(pages, seen, "How many sheep did Marta count?", words("47")) == []
    warm = choose(pages, seen, "What was the weather like?", words("warm"))
    assert [q.text for q in warm] == ["The weather was fine and warm."]


def test_lexicon_search_cut_and_fill(tmp_path):
    lex = Lexicon(tmp_path / "lexicon.sqlite")
    texts = ["the meadow and the sheep", "Marta Quill counted sheep", "a storm over Selby harbour"]
    for uid, t in enumerate(texts):
        lex.add_unit(uid, t)
    lex.add_page(0, "page zero")
    lex.add_page(0, "more of page zero")
    lex.commit()
    assert lex.page(0) == "page zero\nmore of page zero"
    assert lex.search(words("Where is Selby?"))[0][0] == 2
    assert lex.search(raw_words("How many sheep did Marta count?"))[0][0] == 1
    assert lex.search(raw_words("Who counts sheep?"))[0][0] == 1  # Porter stems: counts ~ counted
    assert [u for u, _ in lex.search(words("sheep"), below=1)] == [0]
    # a checkpoint that vouches for 1 unit and no page: the rest is cut ...
    lex.cut(1, 0)
    assert lex.search(words("Selby")) == [] and lex.page(0) is None
    # ... and units below it that a crash lost are indexed again
    lex.db.execute("DELETE FROM units_fts")
    assert lex.fill(2, lambda uid: texts[uid]) == 2
    assert lex.search(words("Quill"))[0][0] == 1
    lex.close()
    again = Lexicon(tmp_path / "lexicon.sqlite")  # durable across processes
    assert again.search(words("Quill"))[0][0] == 1
    again.reset()
    assert again.search(words("Quill")) == []
    again.close()


def test_lexicon_query_words_cannot_inject_fts_syntax(tmp_path):
    lex = Lexicon(None)
    lex.add_unit(0, 'NEAR AND OR "quoted" column:text')
    assert lex.search(['"', "NEAR(", "text:x", "quoted"]) == [(0, pytest.approx(lex.search(["quoted"])[0][1]))]
    lex.close()


def test_the_first_answer_token_cannot_end_or_be_blank():
    import numpy as np

    from bookpot.engine.llm import _ban_first

    logits = np.zeros(1000, dtype=np.float32)
    logits[[7, 8, 9]] = [9.0, 8.0, 7.0]  # end of text, "\n\n", then a word

    class Ctx:
        def logits_ith(self, i):
            return logits

    class Vocab:
        def cannot_start(self, t):
            return t in (7, 8)

    _ban_first(Ctx(), Vocab())
    assert int(np.argmax(logits)) == 9 and np.isinf(logits[[7, 8]]).all()


def test_a_damaged_lexicon_file_is_started_again(tmp_path):
    path = tmp_path / "lexicon.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    lex = Lexicon(path)
    assert lex.damaged and lex.n_pages() == 0
    lex.add_page(0, "fresh")
    lex.commit()
    assert lex.page(0) == "fresh"
    lex.close()


def test_a_full_disk_while_indexing_is_a_cache_error(tmp_path):
    import resource

    from bookpot.engine.store import CacheError

    lex = Lexicon(tmp_path / "lexicon.sqlite")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, hard))
    try:
        with pytest.raises(CacheError, match="space|write"):
            for uid in range(10000):
                lex.add_unit(uid, "words " * 200)
            lex.commit()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        lex.close()


@pytest.mark.model
def test_a_number_can_start_an_answer(model_path):
    """SmolLM2 writes " 48213" as a lone space, then a token per digit: the
    space must stay allowed as a first token, blank lines and stops not."""
    from bookpot.engine.llm import Model

    m = Model(model_path, vocab_only=True)
    space, *digits = m.tokenize(" 48213")
    assert m.piece(space) == b" " and not m.cannot_start(space)
    assert not any(m.cannot_start(t) for t in digits)
    assert all(m.cannot_start(t) for t in m.tokenize("\n\n") + m.tokenize(".") + [m.eos])
    m.close()


def test_a_full_stop_before_a_lower_case_word_ends_no_sentence():
    """procps's bugs.md: the quote stopped at "etc." and lost where to send them."""
    from bookpot.engine.evidence import sentence_spans

    text = ("Alternatively send comments, bug reports, patches, etc. to the email list procps@freelists.org. "
            "Use a tool, e.g. the one below. It ends.\n\nlower case after a blank line.")
    got = [text[a:b] for a, b in sentence_spans(text)]
    assert got == ["Alternatively send comments, bug reports, patches, etc. to the email list procps@freelists.org.",
                   "Use a tool, e.g. the one below.", "It ends.", "lower case after a blank line."]
