"""Headless book summaries inside the same RAM bounds as reading (issue #5).

The book streams through a ``Session`` exactly as for ``ingest``; the
summarizer only decides where sections end and what the catalyst says:

- **Pot full (InfiniPot).** The catalyst prompt *is* the summary
  instruction. The pass that scores the pot for distillation goes on to
  generate the summary of what the pot held (``pot.catalyst_scores``'s
  ``then`` hook, before the catalyst is removed), so summarizing costs no
  extra prefill. The kept |C| tokens carry the chapter into its next section.
- **Chapter change** (the readers' locators: PDF outline, EPUB table of
  contents, Markdown/HTML headings) or the end of the book. The section is
  closed with the same instruction, then the whole document is dropped from
  the window (the prompt prefix stays): every chapter starts from an empty
  pot, so a section speaks of its own chapter, and a chapter boundary is a
  clean point to resume an interrupted run from (nothing else carries over).
  Chapters shorter than ``MIN_SECTION_TOKENS`` (a title page) join the next.
- **No pot** (``--mode full|truncate|streaming``, or no native extension):
  ingestion pauses before the window would overflow and the section is
  closed the same way; sections are then consecutive windows.

After the last section the window is emptied and reused for the text-only
steps: a chapter made of several sections gets one summary of its section
summaries, and the book's overview is a summary of the chapter summaries,
hierarchically in groups that fit the window when there are many. Nothing
ever needs more KV than the pot plus its reserve.

The tiny default model (135M) was measured, not assumed
(bench/summary_prompts.py): see ``PROMPTS``. Its output is checked for
degeneration (empty text, loops): a loop is cut off as it starts, a bad
section is retried once with a stronger repetition penalty, and what stays
bad is replaced by a visible marker, never passed off as a summary.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

from .errors import BookpotError
from .llm import Sampler, generate
from .loops import looping
from .readers.base import Segment
from .rss import peak_rss_bytes
from .session import Catalyst
from .tokens import chapter_streams

SUMMARY_FORMAT = 1  # bump when prompts or section rules change: old cache entries go stale
MIN_SECTION_TOKENS = 128

# Measured on SmolLM2-135M (bench/summary_prompts.py; four ~2.3K-token
# chapters, greedy, 64 new tokens). Every candidate named the topic
# somewhere; they differ in how: with repetition penalty 1.3,
#   completion "In short, this text is about"  topic in 1st sentence 4/4, 3% of 6-grams copied
#   completion "Summary of the text above:"     4/4, 11% copied (often a document sentence)
#   completion InfiniPot's generic catalyst     4/4, 14% copied
#   chat template "Summarize ... in two sentences."  3/4, 3% ("The text above is a continuation ...")
#   chat template "What is the text above about?"    4/4, 0%, but 1/4 degenerate without penalty
# "Summary:" and "TL;DR:" looped without a penalty. So completion style
# primes the answer: the model only has to name the subject and go on.
PROMPTS = {
    "completion": "\n\nIn short, this text is about",
    "chat": "Summarize the text above in two sentences.",
}
LEADS = {"completion": "This text is about ", "chat": ""}  # what the primed answer begins with
REPEAT_PENALTY = 1.3  # without it 2 of 5 completion prompts looped on some chapter
RETRY_PENALTY = 1.6


@dataclass(frozen=True)
class Length:
    section: int  # max new tokens for a section summary
    part: int  # ... for a chapter made of several sections
    overall: int  # ... for the book's overview


LENGTHS = {
    "short": Length(section=48, part=64, overall=80),
    "medium": Length(section=80, part=96, overall=150),
    "long": Length(section=128, part=160, overall=240),
}

MARKER = "[no usable summary: the model's output was {why}]"


class Cancelled(BookpotError):
    """The caller's ``cancel()`` turned true: the run stopped (between chunks or tokens)."""

    def __init__(self) -> None:
        super().__init__("the summary was stopped")


# ---------------------------------------------------------------- output checks
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+")
_SENT = re.compile(r"[^.!?\n]+[.!?]?")


def _norm_sentences(text: str) -> list[str]:
    out = []
    for s in _SENT.findall(text):
        words = _WORD.findall(s.lower())
        if words:
            out.append(" ".join(words))
    return out


def degenerate_reason(text: str) -> str | None:
    """Why ``text`` is not a usable summary ("empty", "repetitive"), or None.

    Empty: fewer than three words. Repetitive: a sentence said three times,
    or repeats making up half the sentences, or under half of the word
    4-grams distinct, or one word over 40% of the text.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return "empty"
    sents = [s for s in _norm_sentences(text) if len(s.split()) >= 3]
    if sents:
        counts: dict[str, int] = {}
        for s in sents:
            counts[s] = counts.get(s, 0) + 1
        if max(counts.values()) >= 3 or (len(sents) >= 4 and len(counts) <= len(sents) / 2):
            return "repetitive"
    grams = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
    if len(grams) >= 10 and len(set(grams)) < len(grams) / 2:
        return "repetitive"
    if len(words) >= 8:
        top = max(words.count(w) for w in set(words))
        if top > 0.4 * len(words):
            return "repetitive"
    return None


def drop_repeats(text: str, *, overlap: float = 0.7) -> str:
    """``text`` without sentences that say again what an earlier one said.

    A sentence is dropped when it is identical to an earlier one, or (five
    words or more) shares ``overlap`` of its distinct words with one: the
    small model likes to restate its first sentence with a word changed.
    """
    kept: list[set[str]] = []
    out = []
    for m in _SENT.finditer(text):
        words = _WORD.findall(m.group(0).lower())
        if not words:
            continue
        ws = set(words)
        if any(ws == k or (len(words) >= 5 and len(ws & k) >= overlap * max(len(ws), len(k)))
               for k in kept):
            continue
        kept.append(ws)
        out.append(m.group(0).strip())
    return " ".join(out)


def finish_sentence(text: str) -> str:
    """Cut a summary that hit its token limit back to its last full sentence."""
    text = text.strip()
    if not text or text[-1] in ".!?\"”)":
        return text
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    if cut >= len(text) * 0.4:
        return text[:cut + 1]
    return text + "…"


def tidy(text: str) -> str:
    """One paragraph: collapse whitespace, drop list bullets and stray quotes."""
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", l) for l in text.splitlines()]
    return re.sub(r"\s+", " ", " ".join(lines)).strip().strip('"').strip()


# ---------------------------------------------------------------- generation
@dataclass
class Generated:
    text: str
    tokens: int
    degenerate: str | None = None  # why the text is not a usable summary
    retried: bool = False
    seconds: float = 0.0


def generate_summary(ctx, pos: int, *, max_tokens: int, repeat_penalty: float = REPEAT_PENALTY,
                     stop_blank_line: bool = True, lead: str = "",
                     cancel: Callable[[], bool] | None = None) -> Generated:
    """Generate after the last decoded token (at ``pos - 1``), greedily.

    Ends at end-of-generation, at ``max_tokens``, at the first blank line
    after some text (a completion-style summary is one paragraph), or as
    soon as the tail loops; raises ``Cancelled`` as soon as ``cancel()``
    is true (checked before every token). The decoded tokens stay in the KV
    cache: the caller removes them (from ``pos`` on).
    """
    t0 = time.perf_counter()
    max_tokens = max(0, min(max_tokens, ctx.n_ctx - pos))
    sampler = Sampler(ctx.model.n_vocab, repeat_penalty=repeat_penalty, repeat_last_n=64)
    pieces: list[str] = []
    looped = False
    n = 0  # tokens generated (``pieces`` is cut to the text kept at a blank line)
    try:
        for piece in generate(ctx, pos, max_tokens=max_tokens, sampler=sampler):
            if cancel is not None and cancel():
                raise Cancelled()
            n += 1
            pieces.append(piece)
            text = "".join(pieces)
            if stop_blank_line and "\n\n" in text.lstrip():
                pieces = [text.lstrip().split("\n\n", 1)[0]]
                break
            if looping(pieces):
                looped = True
                break
    finally:
        sampler.close()
    text = drop_repeats(tidy("".join(pieces)))  # a sentence said twice is never news
    if n >= max_tokens or looped:
        text = finish_sentence(text)
    why = degenerate_reason(text)
    if why is None and looped and len(_WORD.findall(text)) < 6:
        why = "repetitive"
    if lead and why is None:
        text = lead + text
    return Generated(text, n, why, seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------- results
@dataclass
class Section:
    """One summarization step: what the pot/window held since the last one."""

    index: int
    summary: str
    chapters: list[str]  # chapter titles of the new tokens, in order (may be empty)
    first: dict  # Locator.to_dict() of the first new chunk
    last: dict  # ... of the last one
    tokens: int  # document tokens read since the previous section
    closed_by: str  # "pot full" | "chapter end" | "window full" | "end"
    degenerate: str | None = None
    retried: bool = False
    summary_tokens: int = 0


@dataclass
class Part:
    """A chapter (or a page range, for books without chapters) in the output."""

    title: str
    chapters: list[str]
    first: dict
    last: dict
    summary: str
    sections: list[int]
    degenerate: str | None = None

    @property
    def where(self) -> str:
        return span(self.first, self.last)


def span(first: dict, last: dict) -> str:
    """"pp. 3–7", "p. 3", "lines 10–80", or "" (EPUB chapters have no pages)."""
    a, b = first.get("page"), last.get("page")
    if a is not None:
        return f"p. {a}" if a == b or b is None else f"pp. {a}–{b}"
    a, b = first.get("line_start"), last.get("line_end", last.get("line_start"))
    if a is not None:
        return f"line {a}" if a == b or b is None else f"lines {a}–{b}"
    return ""


@dataclass
class BookSummary:
    title: str
    path: str
    overview: str
    parts: list[Part]
    sections: list[Section]
    stats: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    overview_degenerate: str | None = None
    overview_method: str = "model"  # "model" | "single part" | "composed" (the model's missed the parts)
    cached: bool = False
    resumed_sections: int = 0  # sections reused from an interrupted run

    def to_dict(self) -> dict:
        d = asdict(self)
        for p, obj in zip(d["parts"], self.parts):
            p["where"] = obj.where
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BookSummary":
        d = dict(d)
        parts = [Part(**{k: v for k, v in p.items() if k != "where"}) for p in d.pop("parts")]
        sections = [Section(**s) for s in d.pop("sections")]
        return cls(parts=parts, sections=sections, **d)

    @property
    def degenerate_count(self) -> int:
        return sum(1 for p in self.parts if p.degenerate) + bool(self.overview_degenerate)


# ---------------------------------------------------------------- the overview
_GENERIC = set("""text about this that chapter chapters book story part section also which their there
they them with from into have been being what when where while other some many more most very
just like only over such than then these those through will would could should your yours""".split())


def _topic_words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _GENERIC}


def covers(overview: str, parts: list[Part], share: float = 2 / 3) -> bool:
    """Does the overview speak of (at least ``share`` of) the parts?

    A part counts as covered when the overview uses a word (5-letter stem)
    of its title or of its summary's first sentence (which, primed with
    "this text is about", names the subject) that no other part uses: the 135M model, asked
    to summarize summaries of unrelated chapters, mostly picks one of them or
    invents a story (measured: 6 of 6 prompt layouts on the four-topic book),
    and such an overview must not stand for the book.
    """
    own = [_topic_words(p.title + " " + _first_sentence(p.summary)) for p in parts]
    said = _topic_words(overview)
    covered = 0
    for i, words in enumerate(own):
        others = set().union(*(w for j, w in enumerate(own) if j != i))
        if said & (words - others):
            covered += 1
    return covered >= share * len(parts)


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


def compose_overview(parts: list[Part], limit: int = 6) -> str:
    """The overview made from the parts themselves when the model's does not cover them:
    the chapter list, and (for a few parts) each one's first sentence."""
    named = [p.title for p in parts if p.chapters]
    lines = []
    if named:
        shown = named[:40] + ([f"{len(named) - 40} more"] if len(named) > 40 else [])
        lines.append(f"{len(named)} chapters: " + "; ".join(shown) + ".")
    if len(parts) <= limit:
        for p in parts:
            if p.degenerate:
                continue
            lines.append(f"{p.title if p.chapters else p.where or p.title}: {_first_sentence(p.summary)}")
    return " ".join(lines)


# ---------------------------------------------------------------- the run
@dataclass
class Resume:
    """Sections finished at chapter boundaries by an interrupted run."""

    sections: list[dict]
    segments: int  # reader segments those sections consumed
    doc_tokens: int
    chars: int
    distillations: int
    seconds: float


class Summarizer:
    """Summarize one book through ``session`` (freshly made, nothing ingested).

    ``progress(p)`` gets the session's ingestion progress; ``message(text)``
    says what is being written; ``checkpoint(state)`` is called at every
    chapter boundary with what a later run may resume from (a dict);
    ``on_section(section)`` gets every ``Section`` as soon as it is written
    (those reused from ``resume`` first), so a front end can show them
    while the rest of the book is read. ``cancel()`` is checked between
    chunks and before every generated token: when true, ``run``/``finish``
    raise ``Cancelled``.

    Larger than ~250 lines: the chapter walk, the map and reduce prompts
    and resuming from a checkpoint share one running state (sections so far,
    the chapter being read); the prompts themselves are module functions.
    """

    def __init__(self, session, *, length: str = "medium",
                 progress: Callable | None = None, message: Callable[[str], None] | None = None,
                 checkpoint: Callable[[dict], None] | None = None,
                 on_section: Callable[[Section], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> None:
        if length not in LENGTHS:
            raise BookpotError(f"unknown length {length!r}; choose one of {', '.join(LENGTHS)}")
        self.session = session
        self.model = session.model
        self.ctx = session.ctx
        self.length = LENGTHS[length]
        self.progress = progress
        self.message = message or (lambda text: None)
        self.checkpoint = checkpoint
        self.on_section = on_section
        self.cancel = cancel
        fmt = session.fmt
        self.style = fmt.style
        if fmt.style == "chat":
            self.instruction = fmt.suffix(self.model, PROMPTS["chat"])
        else:  # the instruction's own newlines separate it from the text
            self.instruction = self.model.tokenize(PROMPTS["completion"], special=False)
        self.lead = LEADS[fmt.style]
        room = self.ctx.n_ctx - session.budget
        self.section_tokens = max(16, min(self.length.section, room - len(self.instruction) - 1))
        self.sections: list[Section] = []
        self._open: dict | None = None  # the section being read: locators, tokens
        self._segments_done = 0
        self._gen_tokens = 0
        self._gen_s = 0.0
        self._retries = 0
        self._progress_max = 0.0
        # The pot's distillations score against the summary instruction, and
        # each writes the section it closes inside the catalyst's pass.
        self._catalyst = Catalyst(self.instruction, self._summarize_at_distillation) \
            if session.pot_cfg is not None else None

    # -- reading ------------------------------------------------------------
    def _check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled()

    def _on_progress(self, p) -> None:
        self._check()  # after each chunk: stop before the next one is read
        o = self._open
        if o is None:
            o = self._open = {"first": p.locator, "last": p.locator, "chapters": [], "tokens0": 0}
        o["last"] = p.locator
        ch = p.locator.chapter if p.locator is not None else None
        if ch and (not o["chapters"] or o["chapters"][-1] != ch):
            o["chapters"].append(ch)
        if self.progress is not None:
            # Each chapter is a new token stream whose progress starts from 0
            # inside a long segment: never let the bar run backwards.
            self._progress_max = max(self._progress_max, p.progress)
            self.progress(dataclasses.replace(p, progress=self._progress_max))

    def _summarize_at_distillation(self, pos: int) -> None:
        """Inside a distillation's catalyst pass (pot.catalyst_scores): the
        instruction sits before ``pos`` after the full pot; summarize it."""
        self._summarize_here(pos, closed_by="pot full")

    def _window_full(self) -> bool:
        """Without a pot: pause before the next chunk could overflow the window."""
        s = self.session
        return s.pot_cfg is None and s.n_past + s.ctx.n_batch > s.budget

    def run(self, segments: Iterable[Segment], *, resume: Resume | None = None) -> list[Section]:
        """Read the whole book, closing sections as it goes; return them."""
        s = self.session
        it = chapter_streams(segments)  # each chapter a stream of its own, as one reading's tokens
        if resume is not None:
            for _ in itertools.islice(it, resume.segments):
                pass  # read but not prefilled: these chapters are summarized already
            self.sections = [Section(**d) for d in resume.sections]
            self._segments_done = resume.segments
            s.stats.doc_tokens, s.stats.chars = resume.doc_tokens, resume.chars
            s.stats.distillations, s.stats.ingest_s = resume.distillations, resume.seconds
            if self.on_section is not None:
                for sec in self.sections:
                    self.on_section(sec)
        for _, group in itertools.groupby(it, key=lambda seg: seg.locator.chapter):
            group = self._counted(group)
            before = len(self.sections)
            self._group_done = False
            while True:
                # whole: every token is summarized, not only the book's end
                s.ingest(group, progress=self._on_progress, cancel=self._window_full,
                         catalyst=self._catalyst, whole=True)
                # (Not ``s.finished``: it stays true from the previous chapter's stream.)
                if self._group_done:
                    break
                if self._open_tokens() == 0:
                    raise BookpotError("the window is too small to summarize in; use a larger --ram-cap")
                self._close_section("window full")
            # A short tail still closes a chapter that had sections; a short
            # chapter of its own (a title page) joins the next one.
            left = self._open_tokens()
            if left >= MIN_SECTION_TOKENS or (left > 0 and len(self.sections) > before):
                self._close_section("chapter end")
                if self.checkpoint is not None:
                    self.checkpoint(self._resume_state())
        if self._open_tokens() > 0:
            self._close_section("end")
        s.stats.kept_tokens = s.n_past - s.n_prefix
        s.stats.peak_rss_bytes = peak_rss_bytes()
        return self.sections

    def _counted(self, group: Iterator[Segment]) -> Iterator[Segment]:
        for seg in group:
            yield seg
            self._segments_done += 1  # the session has taken all of this segment
        self._group_done = True

    def _open_tokens(self) -> int:
        done = sum(x.tokens for x in self.sections)
        return self.session.stats.doc_tokens - done

    def _resume_state(self) -> dict:
        st = self.session.stats
        return asdict(Resume([asdict(x) for x in self.sections], self._segments_done, st.doc_tokens,
                             st.chars, st.distillations, st.ingest_s))

    # -- summarizing what the window holds ------------------------------------
    def _close_section(self, closed_by: str) -> None:
        """Summarize the window now, then drop the document from it."""
        s = self.session
        base = s.n_past
        try:
            self.ctx.decode(self.instruction, base, logits="last")
            self._summarize_here(base + len(self.instruction), closed_by=closed_by)
        finally:
            self.ctx.seq_rm(0, base, -1)
        s.drop_document()

    def _summarize_here(self, pos: int, *, closed_by: str) -> None:
        """The instruction sits just before ``pos``; write this section's summary."""
        self._check()
        o = self._open or {"first": None, "last": None, "chapters": []}
        self.message(f"summarizing section {len(self.sections) + 1}"
                     + (f" · {o['first']}" if o["first"] is not None else ""))
        out = self._generate(pos, self.section_tokens)
        self.session.stats.max_position = max(self.session.stats.max_position, pos + out.tokens - 1)
        first = o["first"].to_dict() if o["first"] is not None else {}
        last = o["last"].to_dict() if o["last"] is not None else {}
        # (When the pot is full, the chunk that did not fit is not counted yet.)
        self.sections.append(Section(len(self.sections), out.text, list(o["chapters"]), first, last,
                                     self._open_tokens(), closed_by, out.degenerate, out.retried,
                                     out.tokens))
        self._open = None
        if self.on_section is not None:
            self.on_section(self.sections[-1])

    def _generate(self, pos: int, max_tokens: int) -> Generated:
        """A summary at ``pos``; retried once with a stronger penalty if degenerate."""
        out = generate_summary(self.ctx, pos, max_tokens=max_tokens, repeat_penalty=REPEAT_PENALTY,
                               stop_blank_line=self.style == "completion", lead=self.lead,
                               cancel=self.cancel)
        self.ctx.seq_rm(0, pos, -1)
        self._gen_tokens += out.tokens
        self._gen_s += out.seconds
        if out.degenerate:
            self._retries += 1
            again = generate_summary(self.ctx, pos, max_tokens=max_tokens, repeat_penalty=RETRY_PENALTY,
                                     stop_blank_line=self.style == "completion", lead=self.lead,
                                     cancel=self.cancel)
            self.ctx.seq_rm(0, pos, -1)
            self._gen_tokens += again.tokens
            self._gen_s += again.seconds
            again.retried = True
            if again.degenerate:
                again.text = MARKER.format(why=again.degenerate)
            out = again
        return out

    # -- text-only steps after reading ------------------------------------------
    def _reduce(self, items: list[tuple[str, str]], max_tokens: int) -> Generated:
        """One summary of several ``(heading, summary)`` items, inside the window.

        Items that do not fit together are summarized in groups first, then
        the group summaries, and so on (each level at least halves the count).
        """
        s = self.session
        budget = s.budget - s.n_prefix
        items = [(h, t) for h, t in items if not t.startswith("[no usable summary")]
        if not items:
            why = "unusable for every section"
            return Generated(MARKER.format(why=why), 0, why)
        while True:
            docs = [self.model.tokenize((f"{h}: " if h else "") + t + "\n\n", special=False)
                    for h, t in items]
            limit = max(64, budget // 2)
            docs = [d[:limit] for d in docs]
            if sum(len(d) for d in docs) <= budget or len(items) == 1:
                return self._summarize_tokens([t for d in docs for t in d][:budget], max_tokens)
            groups, cur, size = [], [], 0
            for (h, t), d in zip(items, docs):
                if cur and size + len(d) > budget:
                    groups.append(cur)
                    cur, size = [], 0
                cur.append((h, t, d))
                size += len(d)
            groups.append(cur)
            if len(groups) >= len(items):  # cannot happen with limit <= budget/2; be safe
                groups = [items[i:i + 2] for i in range(0, len(items), 2)]
                groups = [[(h, t, self.model.tokenize(t, special=False)[:limit]) for h, t in g]
                          for g in groups]
            items = []
            for g in groups:
                toks = [t for _, _, d in g for t in d]
                out = self._summarize_tokens(toks[:budget], max_tokens)
                items.append(("", out.text))

    def _summarize_tokens(self, doc: list[int], max_tokens: int) -> Generated:
        s = self.session
        s.drop_document()
        base = s.n_prefix
        # Drop trailing blank-line tokens: the instruction brings its own.
        while doc and not self.model.detokenize(doc[-1:]).strip():
            doc = doc[:-1]
        try:
            self.ctx.decode(doc + self.instruction, base, logits="last")
            pos = base + len(doc) + len(self.instruction)
            s.stats.max_position = max(s.stats.max_position, pos - 1)
            return self._generate(pos, max_tokens)
        finally:
            self.ctx.seq_rm(0, base, -1)

    def finish(self) -> tuple[str, str | None, list[Part], str]:
        """Parts (chapters or page ranges) and the overview, from the sections.

        Returns ``(overview, why_degenerate, parts, method)``; ``method`` is
        "model", "single part" or "composed" (see ``compose_overview``).
        """
        parts: list[Part] = []
        groups: list[list[Section]] = []
        for sec in self.sections:
            if groups and sec.chapters and groups[-1][-1].chapters == sec.chapters:
                groups[-1].append(sec)
            else:
                groups.append([sec])
        for g in groups:
            title = "; ".join(g[0].chapters) if g[0].chapters else span(g[0].first, g[-1].last) or "Text"
            if len(g) == 1:
                text, why = g[0].summary, g[0].degenerate
            else:
                self.message(f"summarizing “{title}” from its {len(g)} sections")
                out = self._reduce([("", x.summary) for x in g], self.length.part)
                text, why = out.text, out.degenerate
            parts.append(Part(title, list(g[0].chapters), g[0].first, g[-1].last, text,
                              [x.index for x in g], why))
        if len(parts) == 1:
            return parts[0].summary, parts[0].degenerate, parts, "single part"
        self.message("writing the overview")
        out = self._reduce([(p.title if p.chapters else "", p.summary) for p in parts], self.length.overall)
        if out.degenerate is None and covers(out.text, parts):
            return out.text, None, parts, "model"
        return compose_overview(parts), None, parts, "composed"

    def stats(self) -> dict:
        return {"summary_tokens": self._gen_tokens, "generation_s": round(self._gen_s, 3),
                "generation_tokens_per_s": round(self._gen_tokens / self._gen_s, 1) if self._gen_s else None,
                "retries": self._retries, "sections": len(self.sections)}
