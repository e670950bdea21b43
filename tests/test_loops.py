"""Catching a small model's answer as it starts going round in circles."""
from __future__ import annotations

from bookpot.engine.loops import looping, said_again


def test_a_sentence_said_again_is_found_across_line_breaks():
    text = ("a woman named Ada\nBrennan. She was a widow, and she was the last keeper of Harrow Point. "
            "She was a\nwidow, and she was the last keeper of Harrow Point.")
    at = said_again(text)
    assert at > 0 and text[:at].rstrip().endswith("Harrow Point.")
    assert text[at:].startswith("She was a\nwidow")


def test_what_is_not_a_repeat():
    assert said_again("She was the keeper. She was the keeper of the light.") == -1
    assert said_again("The key is 52445. It is 52445.") == -1  # short sentences may repeat
    assert said_again("Yes. Yes.") == -1
    assert said_again("One sentence without an end") == -1
    assert said_again("The lamp was lit every night. The lamp was lit every night but") == -1  # not finished


def test_looping_returns_the_period():
    assert looping(["The", " hive", " hums", "."] * 3) == 4
    assert looping(["The", " hive", " hums", "."] * 2) == 0


def test_a_streamed_answer_counts_only_the_words_it_has_finished():
    """" keep" may become " keeper" (a word of the question): until a space or a
    mark follows, the last word does not make the answer say something new."""
    from bookpot.engine.answering import usable, whole_words

    question = "Who was the last keeper of Harrow Point?"
    stem = "The last keeper of Harrow Point was"
    assert whole_words(" the last keep") == " the last "
    assert not usable(whole_words(" the last keep"), question, stem)
    assert usable(" the last keep", question, stem)  # what streaming used to test
    assert not usable(" the last keeper of Harrow Point.", question, stem)
    assert usable(whole_words(" Ada Brennan."), question, stem)
    assert whole_words(" 47 sheep") == " 47 "
