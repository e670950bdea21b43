"""Answer stems: the first words of the answer, derived from the question as typed.

A small model asked "How many sheep did Marta count?" after a document
often says nothing (its first token is a blank line or the end of text) or
starts a new topic. Given the beginning of the answer instead — "Marta
counted" — it continues with the fact (issue #18's measurement on
SmolLM2-135M: 1/9 with the question alone, 5/9 with question + stem, 8/9
with the passage next to question + stem). So the person types a plain
question; bookpot writes the stem, and the answer shown is stem +
continuation, which reads as a sentence.

The rules cover English wh-questions (what / who / where / when / which /
why / how many / how + adjective) in their common shapes:

    What is the pass key?                 -> The pass key is
    Where is the spare key kept?          -> The spare key is kept
    Where did the keeper hide the key?    -> The keeper hid
    How many sheep did Marta count?       -> Marta counted
    How many ships were there?            -> There were
    Who painted the portrait?             -> The portrait was painted by
    How many singers are in the choir?    -> The choir has
    Why did the ship sink?                -> The ship sank because

Requests are typed as often as questions; the question inside them is
answered the same way (``_request``):

    Tell me how many sheep Marta counted.          -> Marta counted
    Can you tell me where Vale buried the logbook? -> Vale buried
    I want to know when the bridge was opened.     -> The bridge was opened
    Explain why the ship sank.                      -> The ship sank because
    Tell me the pass key.                           -> The pass key is
    Tell me about the lighthouse. / Describe Ada.   -> The lighthouse / Ada

Verb forms (hide -> hid, hidden) come from ``lemminflect``'s English
lexicon. A question of no known shape, or one the person already followed
with the beginning of an answer ("What is the pass key? The pass key is"),
gets no stem (``None``): the question is asked as typed.
"""
from __future__ import annotations

import re
from functools import lru_cache

_DET = {"the", "a", "an", "his", "her", "their", "its", "my", "our", "your", "this", "that",
        "these", "those", "some", "every", "each", "no", "any"}
_PREP = {"in", "on", "at", "of", "from", "to", "with", "by", "for", "under", "behind", "into",
         "near", "about", "after", "before", "inside", "onto", "over", "beside", "between"}
_CONTRACT = [(re.compile(r"\b(what|who|where|when|how|why|which)'s\b", re.I), r"\1 is"),
             (re.compile(r"\b(what|who|where|when|how|why|which)'re\b", re.I), r"\1 are")]
_BE = {"is", "are", "was", "were"}
_DO = {"did": "VBD", "does": "VBZ", "do": "VB"}
# "How many sheep did Marta count?": "bare" -> "Marta counted", "exactly" ->
# "Marta counted exactly", "number" -> "The number of sheep Marta counted was"
# (chosen by bench/questions.py).
HOW_MANY = "bare"
# "Where did Vale bury the logbook?": True -> "Vale buried the logbook",
# False -> "Vale buried" (the model copies the book's own object).
DO_OBJECT = False
_HOW_ADJ = {"old", "long", "far", "tall", "big", "high", "deep", "wide", "heavy", "much", "large", "often"}


@lru_cache(maxsize=1)
def _lemmas():
    import lemminflect

    return lemminflect


def _verb_lemma(word: str) -> str | None:
    """The verb lemma of ``word`` if it can be a verb (lower case words only)."""
    if not word.isalpha() or not word.islower():
        return None
    lem = _lemmas().getAllLemmas(word).get("VERB")
    return lem[0] if lem else None


def _inflect(lemma: str, tag: str) -> str:
    if tag == "VB":
        return lemma
    forms = _lemmas().getInflection(lemma, tag=tag)
    return forms[0] if forms else lemma


def _is_participle(word: str) -> bool:
    lemma = _verb_lemma(word)
    return bool(lemma) and word in (_lemmas().getInflection(lemma, tag="VBN") or ())


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _split_subject(words: list[str]) -> tuple[list[str], str, list[str]] | None:
    """``words`` after "did/does/do": (subject, verb, rest), or None.

    The verb is the first word, after at least one subject word, that can
    be a verb's base form and does not follow a determiner ("did the ship
    sink": "ship" follows "the", so "sink" is the verb), nor is a noun
    followed by another verb ("did the town clock stop": "stop").
    """
    for i in range(1, len(words)):
        w = words[i]
        if words[i - 1].lower() in _DET:
            continue
        lemma = _verb_lemma(w)
        if lemma and lemma == w:
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if _verb_lemma(nxt) == nxt and _lemmas().getAllLemmas(w).get("NOUN"):
                continue  # "the town clock stop": a noun before the verb
            return words[:i], w, words[i + 1:]
    return None


_WH = ("what", "who", "where", "when", "which", "whose", "why", "how")
_YOU = r"(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?"
# "Tell me ...", "Can you tell me ...", "I want to know ...", "Do you know ...": the question follows.
_ASKING = re.compile(r"^(?:" + _YOU + r"(?:tell|show|give)\s+me|" + _YOU + r"explain|(?:do|does)\s+(?:you|anyone)\s+know|"
                     r"i(?:\s+want|\s+would\s+like|'d\s+like|\s+wish)\s+to\s+know|i\s+wonder)\s+(.+)$", re.I)
# "Tell me about X", "Describe X", "What about X": a subject, no question.
_ABOUT = re.compile(r"^(?:" + _YOU + r"(?:tell\s+me\s+(?:about|of)|describe|talk\s+about)|what\s+about)\s+(.+)$",
                    re.I)
_BE_ALL = _BE | {"be", "been", "am"}
_PRON = {"i", "you", "he", "she", "it", "we", "they"}


def _inflected(word: str) -> bool:
    """A finite verb form a person typed in a statement: "counted", "keeps", "has" (not "shop")."""
    lemma = _verb_lemma(word)
    return bool(lemma) and (word != lemma or word in _BE_ALL) and word not in (_lemmas().getInflection(lemma, tag="VBG") or ())


def _clause_stem(words: list[str]) -> str | None:
    """A statement's words as a stem: all of them when it has a form of "be", else up to
    its first finite verb ("Vale buried the logbook" -> "Vale buried")."""
    if not words:
        return None
    if any(w.lower() in _BE for w in words[1:]):
        return _cap(" ".join(words))
    for i in range(1, len(words)):
        if words[i - 1].lower() not in _DET and _inflected(words[i]):
            return _cap(" ".join(words[: i + 1]))
    return None


def _request(q: str) -> str | None:
    """The stem of a request: "Tell me where Vale buried the logbook" -> "Vale buried";
    "Tell me about the lighthouse" -> "The lighthouse"; None if it is none."""
    m = _ABOUT.match(q)
    if m and m.group(1).split(" ")[0].lower() not in _WH:
        return _cap(m.group(1))
    m = _ASKING.match(q)
    if not m:
        return None
    rest = m.group(1)
    if rest.lower().startswith(("me ", "us ")):
        rest = rest[3:]  # "explain me"
    words = rest.split(" ")
    w0 = words[0].lower()
    if w0 not in _WH:  # "Tell me the pass key": what it is
        if w0 in _DET and len(words) >= 2:
            head = next((words[i - 1] for i in range(2, len(words)) if words[i].lower() in _PREP), words[-1])
            plural = head.lower().endswith("s") and not head.lower().endswith(("ss", "'s", "us"))
            return _cap(rest) + (" are" if plural else " is")  # "the last words in ... are"
        return None
    direct = answer_stem(rest)  # "how many singers are in the choir", "who painted the portrait"
    if direct is not None and w0 != "why":
        return direct
    clause = words[1:]
    if w0 == "how" and clause and clause[0].lower() in ("many", "much"):
        clause = clause[2:]  # the asked noun ("sheep", "jars of honey"): up to the subject
        while len(clause) > 1 and clause[0].islower() and clause[0] not in _DET | _PRON:
            clause = clause[1:]
        return _clause_stem(clause)
    if w0 in ("what", "which", "whose") and clause and clause[0].lower() not in _DET and not clause[0][:1].isupper():
        clause = clause[1:]  # "what colour the door is"
    if w0 == "why":
        return _cap(" ".join(clause + ["because"])) if clause else None
    if w0 in ("what", "which", "whose", "who") and clause and clause[-1].lower() in _BE:
        return _cap(" ".join(clause))  # "what the pass key is" -> "The pass key is"
    return _clause_stem(clause)


def answer_stem(question: str) -> str | None:
    """The start of a natural answer to ``question``, or None for other shapes.

    ``question``: one line as a person typed it (case and a trailing "?"
    are free), a question or a request ("tell me ...", ``_request``). The
    stem never ends with a space; the model's continuation brings its own
    leading space.
    """
    q = " ".join(question.strip().split())
    if "?" in q.rstrip("?. "):
        return None  # the person already began the answer after the question
    for pat, rep in _CONTRACT:
        q = pat.sub(rep, q)
    q = q.rstrip("?.! ").strip()
    if len(q) > 300:
        return None
    if _ASKING.match(q) or _ABOUT.match(q):
        return _request(q)
    words = q.split(" ")
    if len(words) < 2 or len(q) > 300:
        return None
    w0 = words[0].lower()
    # "How many sheep did Marta count" / "How many ships were there"
    if w0 == "how" and words[1].lower() in ("many", "much"):
        k = next((i for i in range(2, len(words)) if words[i].lower() in _DO or words[i].lower() in _BE), None)
        if k is None or k == 2:
            return None
        aux, rest = words[k].lower(), words[k + 1:]
        if aux in _BE:
            if rest[:1] and rest[0].lower() == "there":
                return f"There {aux}"
            if len(rest) >= 2 and rest[0].lower() in ("in", "on", "at", "inside", "aboard"):
                # "How many singers are in the choir" -> "The choir has"
                return _cap(" ".join(rest[1:] + ["has" if aux in ("is", "are") else "had"]))
            return None
        split = _split_subject(rest)
        if not split:
            return None
        subj, verb, obj = split
        if HOW_MANY == "number":  # "The number of sheep Marta counted was"
            return _cap(" ".join(["the", "number", "of"] + words[2:k] + subj + [_inflect(verb, "VBD")] + obj
                                 + ["was"]))
        return _cap(" ".join(subj + [_inflect(verb, _DO[aux])] + (["exactly"] if HOW_MANY == "exactly" else [])))
    if w0 == "how" and words[1].lower() in _HOW_ADJ and len(words) > 3 and words[2].lower() in _BE:
        return _cap(" ".join(words[3:] + [words[2].lower()]))
    # "What colour is the door" / "Which room is the key in": skip the asked noun
    k = 1
    if w0 in ("what", "which", "whose") and len(words) > 2 and words[1].lower() not in _BE | set(_DO):
        k = 2
    if w0 not in _WH:
        return None
    aux = words[k].lower() if k < len(words) else ""
    rest = words[k + 1:]
    if aux in _BE and rest:
        if w0 == "why":
            return _cap(" ".join(rest[:1] + [aux] + rest[1:] + ["because"]))
        if len(rest) >= 2 and (_is_participle(rest[-1]) or rest[-1].lower() in _PREP):
            j = len(rest) - 1
            if j >= 2 and _is_participle(rest[-2]) and rest[-1].lower() in _PREP:
                j -= 1  # "made of", "kept in"
            return _cap(" ".join(rest[:j] + [aux] + rest[j:]))
        return _cap(" ".join(rest + [aux]))
    if aux in _DO and rest:
        split = _split_subject(rest)
        if not split:
            return None
        subj, verb, obj = split
        verb = _inflect(verb, _DO[aux])
        if w0 in ("what", "which", "whose", "who") or (w0 == "how" and k == 1 and not obj):
            return _cap(" ".join(subj + [verb]))
        if w0 == "why":
            return _cap(" ".join(subj + [verb] + obj + ["because"]))
        return _cap(" ".join(subj + [verb] + (obj if DO_OBJECT else [])))
    if w0 == "who" and k == 1 and len(words) > 2:  # "Who painted the portrait": the subject is asked
        verb = words[1]
        lemma = _verb_lemma(verb)
        if lemma and verb != lemma:
            past = verb in (_lemmas().getInflection(lemma, tag="VBD") or ())
            participle = _inflect(lemma, "VBN")
            obj = words[2:]
            if obj[0].lower() in _DET or obj[0][:1].isupper():  # an object: say it in the passive
                return _cap(" ".join(obj + ["was" if past else "is", participle, "by"]))
            return "The one who " + " ".join(words[1:]) + (" was" if past else " is")
    return None
