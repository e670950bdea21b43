"""Where an answer stands: quotes, passages and citations of a Session's answer.

``Citing`` is the part of ``engine.session.Session`` that, after an answer,
picks the sentences shown under it (evidence.py: verbatim page text with
offsets), lists the memory units that were placed next to the question,
and ranks the pages the answer drew on (issue #21 split Session by job).
Every quote and citation names a page the model really had in front of it.
"""
from __future__ import annotations

from .evidence import Seen, locate, raw_words
from .evidence import choose as choose_quotes
from .evidence import words as evidence_words


class Citing:
    """Mixed into ``engine.session.Session``; see the module docstring."""

    def quotes(self, question: str, own: str, stem: str | None, used: list[dict], k: int = 3) -> list[dict]:
        """1-3 sentences copied from what the model was shown, best first.

        Candidates: the loaded units' stretches of their pages, then the
        pages in the window (all of a page when nothing was dropped; in a
        pot, a page's sentences whose words the pot still holds). Each is
        ``page_text[start:end]`` of the cited page (evidence.py).
        """
        pages: dict[int, str] = {}
        seen: list[Seen] = []

        def page(loc: int) -> str | None:
            if loc not in pages:
                pages[loc] = self.lexicon.page(loc) or (self.text.page(loc) if self.text is not None else "") or ""
            return pages[loc] or None

        for u in used:
            lid = self._unit_loc(u["unit"])
            text = page(lid)
            if text is None:
                continue
            span = locate(text, self.model.detokenize(self._unit_tokens(u["unit"])))
            a, b = span if span else (0, len(text))
            seen.append(Seen(lid, a, b, u["rank"], "unread" if u["how"] == "early" or
                             u["unit"] >= len(self.units.units) else "unit"))
        whole = not (self.stats.distillations or self.stats.evictions)
        by_loc: dict[int, list[int]] = {}
        for tok, lid in zip(self.kept.tokens, self.kept.loc_ids):
            if lid >= 0:
                by_loc.setdefault(lid, []).append(tok)
        for lid, toks in by_loc.items():
            text = page(lid)
            if text is None:
                continue
            held = None if whole else evidence_words(self.model.detokenize(toks))
            seen.append(Seen(lid, 0, len(text), 1000, "window" if whole else "pot", held))
        answer_words = evidence_words(own) - evidence_words(question + " " + (stem or ""))
        out = []
        for q in choose_quotes(pages, seen, question, answer_words, k=k):
            out.append(dict(self._locator(q.loc), source=q.source, quote=q.text,
                            start=q.start, end=q.end, score=q.score))
        return out

    def passages(self, used: list[dict]) -> list[dict]:
        """The memory units placed next to the question: locator, unit id and text."""
        out = []
        for u in used:
            uid = u["unit"]
            out.append(dict(self._locator(self._unit_loc(uid)), unit=uid, rank=u["rank"],
                            unread=uid >= len(self.units.units),
                            text=self.model.detokenize(self._unit_tokens(uid))))
        return out

    def cite(self, question: str, answer: str, used: list[dict] | None = None, top: int = 3) -> list[dict]:
        """Where the answer came from: the loaded units, then pot text.

        Units the answer drew on come first: those whose text holds the
        answer's words, ranked by how many, then by lookup score; then the
        other loaded units. After them, up to ``top`` locators of the pot
        whose kept text holds the answer's (and question's) words. Every
        cited page was really in front of the model.
        """
        a_words = raw_words(answer)
        q_words = raw_words(question) - a_words
        out: list[dict] = []
        seen: set[int] = set()
        if used:
            ranked = []
            for rank, u in enumerate(used):
                uid = u["unit"]
                words = raw_words(self.model.detokenize(self._unit_tokens(uid)))
                overlap = len(a_words & words)
                ranked.append((-overlap, rank, uid, u["score"]))
            for neg, rank, uid, score in sorted(ranked):
                lid = self._unit_loc(uid)
                loc = self._locator(lid)
                if lid in seen or not loc:
                    continue
                seen.add(lid)
                out.append(dict(loc, source="unit" if uid < len(self.units.units) else "unread", unit=uid,
                                score=score, answer_words=-neg))
        if not a_words and not q_words:
            return out
        by_loc: dict[int, list[int]] = {}
        for tok, lid in zip(self.kept.tokens, self.kept.loc_ids):
            if lid >= 0 and lid not in seen:
                by_loc.setdefault(lid, []).append(tok)
        scored = []
        for lid, toks in by_loc.items():
            words = raw_words(self.model.detokenize(toks))
            score = len(a_words & words) + 0.5 * len(q_words & words)
            if a_words & words:
                scored.append((score, lid))
        scored.sort(key=lambda x: (-x[0], x[1]))
        out += [dict(self.locators[lid].to_dict(), source="pot", score=s) for s, lid in scored[:top]]
        return out
