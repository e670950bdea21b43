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
