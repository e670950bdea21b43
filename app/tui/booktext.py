"""The document's text as a virtual, line-rendered scroll view.

A 1,000-page book must not become one giant widget (nor 1,000 widgets), so
like Textual's toolong this uses the line API: the text is kept as blocks
(one per reader segment: a PDF page, an EPUB chapter, a block of lines),
wrapped into (block, start, end) offsets, and ``render_line`` draws only the
rows on screen. Search runs over the raw blocks, so it works while the book
is still being loaded or ingested.
"""
from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass

from rich.segment import Segment as RichSegment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...engine.readers.base import Locator

# Control characters would break the terminal; each becomes one space, so
# character offsets (used by search) stay the same.
_CONTROL = {i: " " for i in range(32) if i != 10}
_CONTROL[127] = " "


@dataclass
class Block:
    """One reader segment. ``length``: the segment text's length as read (before
    trailing white space was cut for display): quote offsets count it."""

    text: str
    locator: Locator
    length: int = -1

    @property
    def label(self) -> str:
        return str(self.locator)


_MARKER = re.compile(r"\s|[-*•▪–—#>|]\s|\d+[.):]|\(\w{1,4}\)\s|[A-Za-z][.)]\s")  # a line that starts a list item, verse, heading…
_END_PUNCT = tuple(".,;:!?\"'”’)]")
MIN_REFLOW = 40  # lines shorter than this at their longest are verse or a table: never joined


def hard_breaks(text: str) -> list[tuple[int, int]]:
    """The text's lines as the book means them: ``(start, end)`` offsets of
    stretches whose inner line breaks are only where the source's margin was.

    A break is kept (hard) at a blank line, after a line well short of the
    longest in ``text`` (a paragraph's or heading's end), before a short line
    without end punctuation (a heading), before a line that starts with white
    space or a list/verse/heading marker ("- ", "2.", "1:3", "# "), and
    everywhere when the longest line is under ``MIN_REFLOW`` characters
    (verse, tables). Other breaks are soft: the display joins them."""
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    longest = max((len(text[a:b].rstrip()) for a, b in lines), default=0)
    if longest < MIN_REFLOW or len(lines) < 2:
        return lines
    full = 0.7 * longest
    out = [lines[0]]
    for (a, b), (c, d) in itertools.pairwise(lines):
        this, nxt = text[a:b].rstrip(), text[c:d].rstrip()
        soft = (this.strip() and nxt.strip() and len(this) >= full
                and not _MARKER.match(text, c)
                and not (len(nxt) < 0.6 * longest and not nxt.endswith(_END_PUNCT)))
        if soft:
            out[-1] = (out[-1][0], d)
        else:
            out.append((c, d))
    return out


def wrap_offsets(text: str, width: int, reflow: bool = True) -> list[tuple[int, int]]:
    """Greedy word wrap that returns ``(start, end)`` offsets into ``text``.

    ``reflow``: the source's own line breaks are kept only where they mean
    something (``hard_breaks``); a displayed line may then hold a soft "\n",
    which is drawn as a space."""
    width = max(8, width)
    out: list[tuple[int, int]] = []
    flat = text.replace("\n", " ") if reflow else text
    stretches = hard_breaks(text) if reflow else None
    if stretches is None:
        stretches, pos = [], 0
        for para in text.split("\n"):
            stretches.append((pos, pos + len(para)))
            pos += len(para) + 1
    for start, end in stretches:
        while end > start and flat[end - 1] == " " and text[end - 1] in " \n":
            end -= 1
        s = start
        if s == end:
            out.append((s, s))
        while s < end:
            if end - s <= width:
                out.append((s, end))
                break
            cut = flat.rfind(" ", s, s + width + 1)
            if cut <= s:
                out.append((s, s + width))
                s += width
            else:
                out.append((s, cut))
                s = cut + 1
                while s < end and flat[s] == " " and text[s] == "\n":
                    s += 1  # a soft break right after the cut: no line starts with it
    return out


class BookText(ScrollView, can_focus=True):
    """Scrollable text of a whole document, rendered lazily line by line.

    Larger than ~250 lines: wrapping, search, quote highlighting and
    locator jumps all work on the same line index, which is built lazily so
    a 1,000-page book opens at once; splitting them would copy that index.
    """

    COMPONENT_CLASSES = {"booktext--header", "booktext--match", "booktext--current", "booktext--quote"}

    BINDINGS = [
        ("n", "screen.next_match(True)", "Next match"),
        ("p", "screen.next_match(False)", "Previous match"),
    ]

    DEFAULT_CSS = """
    BookText {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        scrollbar-gutter: stable;
    }
    BookText > .booktext--header { color: $text-accent; text-style: bold; }
    BookText > .booktext--match { background: $warning 40%; }
    BookText > .booktext--current { background: $accent; color: $text; text-style: bold; }
    BookText > .booktext--quote { background: $success 35%; text-style: underline; }
    """

    class Located(Message):
        """The block at the top of the view changed (for the pane title)."""

        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.blocks: list[Block] = []
        self._lines: list[tuple[int, int, int]] = []  # (block, start, end); start<0: header/blank
        self._first_line: list[int] = []  # first line of each block
        self._wrap_width = 0
        self.query_text = ""
        self.match: tuple[int, int, int] | None = None  # (block, start, end)
        self.target: int | None = None  # block last jumped to: its header is highlighted
        self.quote_spans: list[tuple[int, int, int]] = []  # the quote jumped to: (block, start, end)
        self._top_label = ""

    # -- content -----------------------------------------------------------
    def add_blocks(self, blocks: list[Block]) -> None:
        for b in blocks:
            if b.length < 0:
                b.length = len(b.text)
            b.text = b.text.translate(_CONTROL).rstrip()
            self.blocks.append(b)
            if self._wrap_width:
                self._wrap_block(len(self.blocks) - 1)
        self._update_size()

    def _text_width(self) -> int:
        return max(8, self.scrollable_content_region.width - 1)

    def _wrap_block(self, i: int) -> None:
        self._first_line.append(len(self._lines))
        if i > 0:
            self._lines.append((i, -2, -2))  # blank line between blocks
        self._lines.append((i, -1, -1))  # header: the locator
        self._lines.extend((i, s, e) for s, e in wrap_offsets(self.blocks[i].text, self._wrap_width))

    def _rewrap(self) -> None:
        where = self.position()  # the same text stays on top at the new width
        self._lines.clear()
        self._first_line.clear()
        for i in range(len(self.blocks)):
            self._wrap_block(i)
        self._update_size()
        if where is not None:
            self.restore(*where)

    def _update_size(self) -> None:
        self.virtual_size = Size(self._wrap_width, len(self._lines))
        self.refresh()
        self._report_top()

    def on_resize(self) -> None:
        width = self._text_width()
        if width != self._wrap_width:
            self._wrap_width = width
            self._rewrap()

    # -- where are we ------------------------------------------------------
    def top_block(self) -> int | None:
        if not self._lines:
            return None
        y = min(int(self.scroll_offset.y), len(self._lines) - 1)
        return self._lines[y][0]

    def _report_top(self) -> None:
        """Post ``Located`` for the block being read: the one jumped to while its
        header is on screen (near the end it cannot be on top), else the top one."""
        i = self.top_block()
        t = self.target
        if t is not None and t < len(self._first_line) and i is not None and t != i:
            header = self._first_line[t] + (1 if t > 0 else 0)
            y = int(self.scroll_offset.y)
            if y <= header < y + max(1, self.scrollable_content_region.height):
                i = t
        label = self.blocks[i].label if i is not None else ""
        if label != self._top_label:
            self._top_label = label
            self.post_message(self.Located(label))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._report_top()

    def position(self) -> tuple[int, int] | None:
        """Where the reader is: (block on top, character offset of its top line)."""
        if not self._lines:
            return None
        bi, s, _ = self._lines[min(int(self.scroll_offset.y), len(self._lines) - 1)]
        return bi, max(0, s)

    def restore(self, block: int, offset: int) -> bool:
        """Put ``position()``'s place on top again (at any width); False while that
        part is not loaded or laid out yet (the view could not scroll there)."""
        if not (0 <= block < len(self.blocks)) or block >= len(self._first_line):
            return False
        top = self._first_line[block] + (1 if block > 0 else 0)
        y = self._line_of(block, offset) if offset > 0 else top
        self.scroll_to(y=y, animate=False, immediate=True)
        self.refresh()
        self._report_top()
        return int(self.scroll_offset.y) == min(y, int(self.max_scroll_y)) and self.max_scroll_y > 0

    def scroll_to_block(self, i: int, line: int = 0, center: bool = False) -> None:
        if not (0 <= i < len(self.blocks)) or not self._first_line:
            return
        y = self._first_line[i] + (1 if i > 0 else 0) + line
        if center:
            y = max(0, y - self.scrollable_content_region.height // 2)
        self.target = i  # near the end the view cannot put i on top: mark it
        self.scroll_to(y=y, animate=False, immediate=True)
        self.refresh()
        self._report_top()

    # -- finding places ----------------------------------------------------
    def find_page(self, target: str) -> int | None:
        """The block for a page label, page number, line number or chapter."""
        found = self.find_target(target)
        return found[0] if found else None

    def find_target(self, target: str) -> tuple[int, int] | None:
        """(block, line within it) for a go-to target: a page label, page number,
        line number or chapter (a locator's), else a heading line of the text
        (``find_heading``), which is then the line on top."""
        i = self._find_locator(target)
        if i is not None:
            return i, 0
        found = self.find_heading(target)
        if found is None:
            return None
        bi, offset = found
        top = self._first_line[bi] + (1 if bi > 0 else 0) if bi < len(self._first_line) else 0
        return bi, (self._line_of(bi, offset) - top if bi < len(self._first_line) else 0)

    def _find_locator(self, target: str) -> int | None:
        target = target.strip().lower().removeprefix("p.").removeprefix("page").strip()
        if not target:
            return None
        for i, b in enumerate(self.blocks):
            if b.locator.page is not None and b.locator.page.lower() == target:
                return i
        if target.isdigit():
            n = int(target)
            for i, b in enumerate(self.blocks):
                if b.locator.page_index is not None and b.locator.page_index == n - 1:
                    return i
            for i, b in enumerate(self.blocks):
                loc = b.locator
                if loc.line_start is not None and loc.line_start <= n <= (loc.line_end or loc.line_start):
                    return i
        for i, b in enumerate(self.blocks):
            if b.locator.chapter and target in b.locator.chapter.lower():
                return i
        return None

    def find_heading(self, target: str) -> tuple[int, int] | None:
        """(block, offset) of a heading-like line naming ``target`` -- how a plain
        text file marks its chapters ("CHAPTER III.", "Genesis 22"): a short line
        that reads as the target (case, white space and end punctuation aside),
        or else one that starts with it as whole words."""
        want = " ".join(target.lower().split()).rstrip(".:")
        if not want:
            return None
        starts = None
        for i, b in enumerate(self.blocks):
            pos = 0
            for line in b.text.split("\n"):
                at = pos
                pos += len(line) + 1
                words = " ".join(line.lower().split()).rstrip(".:")
                if not words or len(words) > 80:
                    continue
                lead = at + len(line) - len(line.lstrip())
                if words == want:
                    return i, lead
                if starts is None and words.startswith(want) and not words[len(want)].isalnum():
                    starts = (i, lead)
        return starts

    def find_citation(self, citation: dict) -> int | None:
        """The block a citation (``Locator.to_dict()`` + score) points at."""
        label = citation.get("locator")
        for i, b in enumerate(self.blocks):
            if b.label == label:
                return i
        if citation.get("page_index") is not None:
            for i, b in enumerate(self.blocks):
                if b.locator.page_index == citation["page_index"]:
                    return i
        if citation.get("page") is not None:
            return self.find_page(str(citation["page"]))
        return None

    def find_quote(self, citation: dict) -> list[tuple[int, int, int]]:
        """Where a quote (``citation["quote"]``, ``start``/``end`` in its page's text)
        is in the blocks: ``[(block, start, end)]``, or ``[]`` when it is not loaded.

        A page's text is its segments joined by "\n" (``engine.lexicon``;
        white-space-only segments are left out), so the offsets are walked
        over the page's blocks. The span found must read as the quote (white
        space folded); otherwise the quote's words are searched for in the
        page's blocks (a page read differently, or an older cache)."""
        quote = citation.get("quote") or ""
        want = " ".join(quote.translate(_CONTROL).split())
        if not want:
            return []
        label = citation.get("locator")
        page = [i for i, b in enumerate(self.blocks) if b.label == label]
        if not page:
            i = self.find_citation(citation)
            page = [] if i is None else [i]
        start, end = citation.get("start"), citation.get("end")
        if isinstance(start, int) and isinstance(end, int) and start < end:
            spans, off = [], 0
            for i in page:
                b = self.blocks[i]
                if not b.text.strip():
                    continue
                a, z = max(start, off) - off, min(end, off + b.length) - off
                if a < z and a < len(b.text):
                    spans.append((i, a, min(z, len(b.text))))
                off += b.length + 1
            got = " ".join(" ".join(self.blocks[i].text[a:z].split()) for i, a, z in spans)
            if spans and " ".join(got.split()) == want:
                return spans
        pattern = re.compile(r"\s+".join(re.escape(w) for w in want.split()))
        for i in page:
            m = pattern.search(self.blocks[i].text)
            if m:
                return [(i, m.start(), m.end())]
        return []

    def show_quote(self, spans: list[tuple[int, int, int]]) -> None:
        """Highlight ``spans`` (from ``find_quote``) and scroll their first line into view."""
        self.quote_spans = list(spans)
        if not spans:
            self.refresh()
            return
        bi, start, _ = spans[0]
        self.target = bi
        y = self._line_of(bi, start)
        height = self.scrollable_content_region.height
        first = self._first_line[bi] + (1 if bi > 0 else 0) if bi < len(self._first_line) else y
        # The page's header on top when the quote fits below it; else the quote a third down.
        top = first if y - first < max(1, height - 2) else max(0, y - height // 3)
        self.scroll_to(y=top, animate=False, immediate=True)
        self.refresh()
        self._report_top()

    def _line_of(self, bi: int, start: int) -> int:
        first = self._first_line[bi] if bi < len(self._first_line) else 0
        last = self._first_line[bi + 1] if bi + 1 < len(self._first_line) else len(self._lines)
        starts = [s for (_, s, _) in self._lines[first:last]]
        return first + max(0, bisect.bisect_right(starts, start) - 1)

    def search(self, query: str, forward: bool = True) -> bool:
        """Select the next (or previous) match of ``query``; wraps around."""
        query = query.strip()
        self.query_text = query
        if not query or not self.blocks:
            self.match = None
            self.refresh()
            return False
        q = query.lower()
        n = len(self.blocks)
        if self.match is not None:
            b0, s0, _ = self.match
        else:
            b0, s0 = (self.top_block() or 0), -1
        order = [(b0 + k) % n for k in range(n + 1)] if forward else [(b0 - k) % n for k in range(n + 1)]
        for k, bi in enumerate(order):
            text = self.blocks[bi].text.lower()
            if forward:
                at = text.find(q, s0 + 1) if k == 0 else text.find(q)
                if k == n and at > s0 >= 0:
                    at = -1
            else:
                at = text.rfind(q, 0, max(0, s0 + len(q) - 1)) if k == 0 and s0 >= 0 else text.rfind(q)
            if at >= 0:
                self.match = (bi, at, at + len(q))
                self._show_match()
                return True
        self.match = None
        self.refresh()
        return False

    def clear_search(self) -> None:
        self.query_text = ""
        self.match = None
        self.refresh()

    def _show_match(self) -> None:
        bi, start, _ = self.match
        y = self._line_of(bi, start)
        height = self.scrollable_content_region.height
        if not (self.scroll_offset.y <= y < self.scroll_offset.y + height):
            self.scroll_to(y=max(0, y - height // 3), animate=False, immediate=True)
        self.refresh()
        self._report_top()

    # -- rendering ---------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        idx = int(self.scroll_offset.y) + y
        if idx >= len(self._lines):
            return Strip.blank(width, base)
        bi, s, e = self._lines[idx]
        if s == -2:
            return Strip.blank(width, base)
        if s == -1:
            style = base + self.get_component_rich_style(
                "booktext--current" if bi == self.target else "booktext--header")
            label = f"── {self.blocks[bi].label} "
            label += "─" * max(0, width - len(label) - 1)
            return Strip([RichSegment(label, style)]).crop_extend(0, width, base)
        text = self.blocks[bi].text[s:e].replace("\n", " ")  # a soft break (reflowed) is a space
        segments = self._highlight(bi, s, text, base)
        return Strip(segments).crop_extend(0, width, base)

    def _highlight(self, bi: int, s: int, text: str, base: Style) -> list[RichSegment]:
        """The line ``text`` (at offset ``s`` of block ``bi``) with the quote jumped to
        and the search matches styled (the current match over all)."""
        ranges: list[tuple[int, int, Style]] = []  # (start, end, style) in the line; later wins
        if self.quote_spans:
            quote_style = base + self.get_component_rich_style("booktext--quote")
            for qb, qa, qz in self.quote_spans:
                if qb == bi and qa < s + len(text) and qz > s:
                    ranges.append((max(qa, s) - s, min(qz, s + len(text)) - s, quote_style))
        q = self.query_text.lower()
        if q:
            match_style = base + self.get_component_rich_style("booktext--match")
            current_style = base + self.get_component_rich_style("booktext--current")
            low = text.lower()
            at = low.find(q)
            while at >= 0:
                is_current = self.match is not None and self.match[0] == bi and self.match[1] == s + at
                ranges.append((at, at + len(q), current_style if is_current else match_style))
                at = low.find(q, at + len(q))
        if not ranges:
            return [RichSegment(" " + text, base)]
        styles: list[Style] = [base] * len(text)
        for a, z, style in ranges:
            styles[a:z] = [style] * (z - a)
        out = [RichSegment(" ", base)]
        k = 0
        while k < len(text):
            j = k
            while j < len(text) and styles[j] is styles[k]:
                j += 1
            out.append(RichSegment(text[k:j], styles[k]))
            k = j
        return out
