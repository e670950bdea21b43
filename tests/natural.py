"""Natural questions about facts hidden in real prose (issue #18's benchmark).

The prose is written by others and shipped by Debian: the GNU manuals that
the essential packages coreutils, sed, grep, diffutils, findutils and gzip
install as Info files under ``/usr/share/info`` (GNU Free Documentation
License 1.3, no invariant sections: copying and modifying are allowed; the
text is read from the system at run time, never copied into this repo).
Into that prose go 40 invented facts of six kinds (a number, a place, a
person, a date, a pass key, a short phrase, and a reason), one sentence
each, in the middle of a paragraph, and each fact has the question a person
would type about it -- no answer stem, no "Answer:".

* ``FACTS``: the 40 :class:`Fact` items (sentence, question, accepted
  answers, evidence key: the substring a quote holding the fact contains).
* ``prose_available()``: whether the manuals are installed (tests skip if not).
* ``build(n_tokens, fact_ids, fmt, offset=0)``: a deterministic
  :class:`Document` of about ``n_tokens`` tokens (``CHARS_PER_TOKEN``
  characters each, measured for SmolLM2's tokenizer on this prose) holding
  the given facts at spread depths, never at a page start.
* ``Document.write(dir)``: the file, as ``.txt``, ``.pdf`` (one page text
  per page, via tests/docgen.make_pdf) or ``.epub`` (chapters named after
  the manual's nodes, via tests/docgen.make_epub); returns its path.
* ``grid(lengths)``: the benchmark's documents: at 3K, 8 documents x 5
  facts (TXT, PDF, EPUB in turn); at 16K, 3 documents (TXT, PDF, EPUB) with
  14/13/13 facts; at 64K and 128K one TXT with all 40 ("64k-pdf": one PDF).
  ``LENGTHS`` maps each label to its token count.
* ``answer_ok(fact, text)`` and ``holds_evidence(fact, text)``: the scoring
  rules (case, punctuation and spacing ignored; a variant must appear as
  whole words, so "47" does not match "470").

Raises :class:`ProseMissing` (a RuntimeError) when the manuals are absent.
"""
from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CHARS_PER_TOKEN",
    "EXTRA_MANUALS",
    "FACTS",
    "INFO_DIR",
    "MANUALS",
    "Document",
    "Fact",
    "ProseMissing",
    "REQUESTS",
    "answer_ok",
    "build",
    "grid",
    "holds_evidence",
    "normalize",
    "prose",
    "prose_available",
]

INFO_DIR = Path("/usr/share/info")
# Essential Debian packages, so every Debian machine has them (unless docs are excluded).
MANUALS = ("coreutils", "sed", "grep", "diffutils", "find", "gzip")
# Used after those when installed (Debian packages gettext, wget, gnupg), so
# the prose reaches past ~90K tokens: only the 128K document needs them.
EXTRA_MANUALS = ("gettext", "wget", "gnupg")
CHARS_PER_TOKEN = 4.0  # checked against SmolLM2's tokenizer in bench/questions.py's output
PAGE_CHARS = 2200  # PDF page text, in characters (~25 lines of 90)
CHAPTER_CHARS = 6000  # EPUB chapter, in characters


class ProseMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Fact:
    """One inserted fact. ``answers``: accepted answers (any one counts);
    ``key``: a substring of ``sentence`` that a quote holding the fact contains."""

    id: str
    kind: str  # number, place, person, date, passkey, phrase, reason
    sentence: str
    question: str
    answers: tuple[str, ...]
    key: str


def _f(i, kind, sentence, question, answers, key) -> Fact:
    if key not in sentence:
        raise ValueError(f"fact {i}: key {key!r} not in its sentence")
    return Fact(f"F{i:02d}", kind, sentence, question, tuple(answers), key)


FACTS: tuple[Fact, ...] = (
    _f(1, "number", "The lighthouse keeper, Marta Quill, counted exactly 47 sheep on the northern meadow.",
       "How many sheep did Marta Quill count?", ["47", "forty-seven", "forty seven"], "47 sheep"),
    _f(2, "place", "Professor Anselm Rook keeps his brass telescope in the attic of the old granary at Wexbridge.",
       "Where does Professor Rook keep his brass telescope?", ["granary", "Wexbridge"], "granary at Wexbridge"),
    _f(3, "person", "The silver compass on the mantelpiece was made by a clockmaker named Tobias Fenwick.",
       "Who made the silver compass?", ["Tobias Fenwick", "Fenwick"], "Tobias Fenwick"),
    _f(4, "date", "The stone bridge over the Harrow River was opened on 14 March 1923.",
       "When was the bridge over the Harrow River opened?", ["1923"], "14 March 1923"),
    _f(5, "passkey", "The pass key to the archive room is JUNIPER-4471.",
       "What is the pass key to the archive room?", ["JUNIPER-4471", "juniper 4471"], "JUNIPER-4471"),
    _f(6, "phrase", "The motto painted above the door of the Crane Street Rowing Club reads 'steady oars, quiet water'.",
       "What is the motto of the Crane Street Rowing Club?", ["steady oars, quiet water", "steady oars"],
       "steady oars, quiet water"),
    _f(7, "reason", "Hettie Larkspur closed her bakery early every Friday because she sang in the village choir.",
       "Why did Hettie Larkspur close her bakery early on Fridays?", ["choir"], "sang in the village choir"),
    _f(8, "number", "The old ferry between Dunmore and Kessel Island carried 312 passengers on its final crossing.",
       "How many passengers did the ferry carry on its final crossing?",
       ["312", "three hundred and twelve", "three hundred twelve"], "312 passengers"),
    _f(9, "place", "Captain Idris Vale buried the ship's logbook under the fig tree behind the harbour chapel.",
       "Where did Captain Idris Vale bury the logbook?", ["fig tree"], "under the fig tree"),
    _f(10, "person", "The first woman to climb Mount Calder was a schoolteacher called Agnes Thornbury.",
       "Who was the first woman to climb Mount Calder?", ["Agnes Thornbury", "Thornbury"], "Agnes Thornbury"),
    _f(11, "date", "The Pellworth town clock stopped at noon on 2 August 1887 and was never repaired.",
       "When did the Pellworth town clock stop?", ["1887"], "2 August 1887"),
    _f(12, "passkey", "The password for the Ravenholt garden gate is COPPER-KETTLE-9.",
       "What is the password for the Ravenholt garden gate?", ["COPPER-KETTLE-9", "copper kettle 9"],
       "COPPER-KETTLE-9"),
    _f(13, "phrase", "Whenever a storm came, Grandmother Oona Bright would say 'the sea keeps its own counsel'.",
       "What did Oona Bright say whenever a storm came?", ["the sea keeps its own counsel", "keeps its own counsel"],
       "keeps its own counsel"),
    _f(14, "reason", "The village of Lower Fenby moved its market to Tuesdays because the ferryman only crossed "
       "the river on Tuesdays.",
       "Why did Lower Fenby move its market to Tuesdays?", ["ferryman", "ferry"], "ferryman only crossed"),
    _f(15, "number", "The beekeeper Walter Pym filled 86 jars of honey in the dry summer.",
       "How many jars of honey did Walter Pym fill?", ["86", "eighty-six", "eighty six"], "86 jars"),
    _f(16, "place", "The missing violin of Clara Deverell was found in a hatbox at the Ostend railway station.",
       "Where was Clara Deverell's violin found?", ["Ostend", "hatbox"], "Ostend railway station"),
    _f(17, "person", "The map of the salt caves was drawn by a surveyor named Ezra Hallam.",
       "Who drew the map of the salt caves?", ["Ezra Hallam", "Hallam"], "Ezra Hallam"),
    _f(18, "date", "The orchard at Bramley Cross was planted in the spring of 1764.",
       "When was the orchard at Bramley Cross planted?", ["1764"], "spring of 1764"),
    _f(19, "passkey", "The combination of the laboratory safe is 73915.",
       "What is the combination of the laboratory safe?", ["73915", "7 3 9 1 5"], "73915"),
    _f(20, "phrase", "The ship's cat aboard the Marigold was named Admiral Biscuit.",
       "What was the name of the ship's cat on the Marigold?", ["Admiral Biscuit", "Biscuit"], "Admiral Biscuit"),
    _f(21, "reason", "Doctor Selwyn Ashe walked to work every morning because his horse had gone lame.",
       "Why did Doctor Selwyn Ashe walk to work?", ["lame", "horse"], "horse had gone lame"),
    _f(22, "number", "The choir at Saint Bride's has exactly 38 singers this year.",
       "How many singers are in the choir at Saint Bride's?", ["38", "thirty-eight", "thirty eight"], "38 singers"),
    _f(23, "place", "Nadia Korrin hid the spare key to the boathouse inside a blue teapot on the windowsill.",
       "Where did Nadia Korrin hide the spare key?", ["teapot"], "blue teapot"),
    _f(24, "person", "The lantern festival in Harwick is led each year by a fisherman named Oswin Marlow.",
       "Who leads the lantern festival in Harwick?", ["Oswin Marlow", "Marlow"], "Oswin Marlow"),
    _f(25, "date", "Lydia Penrose sailed for Valparaiso on 9 November 1851.",
       "When did Lydia Penrose sail for Valparaiso?", ["1851"], "9 November 1851"),
    _f(26, "passkey", "The wifi password at the Gull and Anchor inn is SEAGLASS-208.",
       "What is the wifi password at the Gull and Anchor?", ["SEAGLASS-208", "seaglass 208"], "SEAGLASS-208"),
    _f(27, "phrase", "The last words written in the diary of Felix Amberley were 'the river remembers'.",
       "What were the last words in Felix Amberley's diary?", ["the river remembers", "river remembers"],
       "the river remembers"),
    _f(28, "reason", "The Greystone mill was closed every winter because the miller went to stay with his sister "
       "in Lisbon.",
       "Why was the Greystone mill closed every winter?", ["sister", "Lisbon"], "sister in Lisbon"),
    _f(29, "number", "Rosalind Achterberg owns 26 antique typewriters.",
       "How many typewriters does Rosalind Achterberg own?", ["26", "twenty-six", "twenty six"], "26 antique typewriters"),
    _f(30, "place", "The annual cheese fair of the Westmarch valley is held in the town of Oddenfield.",
       "Where is the Westmarch cheese fair held?", ["Oddenfield"], "town of Oddenfield"),
    _f(31, "person", "The portrait in the east hall was painted by Beatrix Holloway.",
       "Who painted the portrait in the east hall?", ["Beatrix Holloway", "Holloway"], "Beatrix Holloway"),
    _f(32, "date", "The Kettering observatory recorded its first comet on 30 June 1908.",
       "When did the Kettering observatory record its first comet?", ["1908"], "30 June 1908"),
    _f(33, "passkey", "The secret word for the smugglers' tunnel was 'marmalade'.",
       "What was the secret word for the smugglers' tunnel?", ["marmalade"], "marmalade"),
    _f(34, "phrase", "The sign on Quentin Drabble's shop says 'mended while you wait'.",
       "What does the sign on Quentin Drabble's shop say?", ["mended while you wait"], "mended while you wait"),
    _f(35, "reason", "The mayor of Thistleby cancelled the fireworks because the goats on the common were "
       "expecting kids.",
       "Why did the mayor of Thistleby cancel the fireworks?", ["goats", "goat"], "goats on the common"),
    _f(36, "number", "The tallest tower of Castle Morrow has 365 steps.",
       "How many steps does the tallest tower of Castle Morrow have?",
       ["365", "three hundred and sixty-five", "three hundred sixty-five", "three hundred sixty five"], "365 steps"),
    _f(37, "place", "Inspector Maud Ferris found the stolen emerald in the coal cellar of the Regent Hotel.",
       "Where did Inspector Maud Ferris find the stolen emerald?", ["coal cellar", "Regent Hotel"], "coal cellar"),
    _f(38, "person", "The treasurer of the Pinewood Chess Society is Harold Okonkwo.",
       "Who is the treasurer of the Pinewood Chess Society?", ["Harold Okonkwo", "Okonkwo"], "Harold Okonkwo"),
    _f(39, "date", "The great flood reached the village of Amberleigh on 5 January 1795.",
       "When did the great flood reach Amberleigh?", ["1795"], "5 January 1795"),
    _f(40, "reason", "Young Pip Callow learned to swim because his family lived on a houseboat.",
       "Why did Pip Callow learn to swim?", ["houseboat"], "lived on a houseboat"),
)
BY_ID = {f.id: f for f in FACTS}


# -- scoring ------------------------------------------------------------------
def normalize(text: str) -> str:
    """Lower case, curly quotes and hyphens/punctuation to spaces, runs of space to one."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w']+|'", " ", text)
    return " ".join(text.split())


def answer_ok(fact: Fact, text: str) -> bool:
    """Whether ``text`` holds one of the fact's accepted answers, as whole words."""
    norm = f" {normalize(text)} "
    return any(f" {normalize(a)} " in norm for a in fact.answers)


def holds_evidence(fact: Fact, text: str) -> bool:
    """Whether ``text`` (a quote, a passage) holds the fact's evidence key; case and
    line breaks/spacing ignored (a PDF line may break inside the key)."""
    def squash(s: str) -> str:
        return " ".join(s.lower().replace("\u2019", "'").split())

    return squash(fact.key) in squash(text)


# -- the prose ------------------------------------------------------------------
@dataclass(frozen=True)
class Para:
    manual: str
    node: str
    text: str


_SKIP_NODES = re.compile(r"index|licen[cs]e|copying|top$|concept|^history|authors|bugs|reporting", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)'\"]\.)\s+(?=[A-Z(])")
_XREF = re.compile(r"\*[Nn]ote\s+([^:]+?)::?")
_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                        "\u2014": "--", "\u00a0": " ", "\u2026": "..."})


def _info_text(name: str) -> str:
    main = INFO_DIR / f"{name}.info.gz"
    if not main.exists():
        raise ProseMissing(f"{main} is missing (Debian installs it with the {name} package)")
    parts = [main]
    i = 1
    while (INFO_DIR / f"{name}.info-{i}.gz").exists():  # split manuals (find.info-1, -2)
        parts.append(INFO_DIR / f"{name}.info-{i}.gz")
        i += 1
    return "".join(gzip.decompress(p.read_bytes()).decode("utf-8", "replace") for p in parts)


def _prose_blocks(node_text: str):
    for block in re.split(r"\n\s*\n", node_text):
        lines = block.split("\n")
        if not lines or any(len(ln) - len(ln.lstrip()) > 5 for ln in lines):
            continue  # examples, tables
        first = lines[0].strip()
        if first.startswith(("*", "'", "\u2018", "-", "$", "(", "File:")) or re.fullmatch(r"[=\-*.]+", lines[-1].strip()):
            continue  # menus, option headers, headings, footnotes
        text = " ".join(" ".join(ln.split()) for ln in lines).strip().translate(_ASCII)
        text = _XREF.sub(r"\1", text)
        if len(text) < 160 or not text.endswith(".") or not _SENTENCE_END.search(text):
            continue
        try:
            text.encode("cp1252")
        except UnicodeEncodeError:
            continue
        letters = sum(c.isalpha() or c == " " for c in text)
        if letters < 0.85 * len(text):
            continue
        yield text


_PROSE: list[Para] | None = None


def prose_available() -> bool:
    return all((INFO_DIR / f"{m}.info.gz").exists() for m in MANUALS)


def prose() -> list[Para]:
    """Every usable prose paragraph of the manuals, in a fixed order (manual, node):
    ~362K characters (~90K tokens) from MANUALS, then any EXTRA_MANUALS installed.

    Raises ProseMissing when a manual is not installed.
    """
    global _PROSE
    if _PROSE is None:
        out = []
        extra = [m for m in EXTRA_MANUALS if (INFO_DIR / f"{m}.info.gz").exists()]
        for m in (*MANUALS, *extra):
            for node in _info_text(m).split("\x1f")[1:]:
                head, _, body = node.lstrip("\n").partition("\n")
                got = re.search(r"Node:\s*([^,\n]+)", head)
                if not got or _SKIP_NODES.search(got.group(1).strip()):
                    continue
                out.extend(Para(m, got.group(1).strip(), t) for t in _prose_blocks(body))
        _PROSE = out
    return _PROSE


# -- documents --------------------------------------------------------------------
@dataclass
class Placed:
    fact: str
    para: int  # index into Document.paras
    depth: float  # 0..1, by characters before the fact
    page: int | None = None  # PDF: 0-based page index
    chapter: int | None = None  # EPUB: 0-based chapter index


@dataclass
class Document:
    """A built document: ``paras`` (manual node, text) with the facts inside, and where they sit."""

    name: str
    fmt: str  # txt, pdf, epub
    n_tokens: int  # the size asked for (approximate)
    paras: list[Para]
    placed: list[Placed] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(p.text) + 2 for p in self.paras)

    def facts(self) -> list[Fact]:
        return [BY_ID[p.fact] for p in self.placed]

    def pages(self) -> list[list[int]]:
        """Paragraph indices per PDF page (<= PAGE_CHARS each, whole paragraphs)."""
        return _chunks(self.paras, PAGE_CHARS)

    def chapters(self) -> list[list[int]]:
        return _chunks(self.paras, CHAPTER_CHARS)

    def text(self) -> str:
        """The TXT file's text: a heading line where the manual's node changes, paragraphs
        separated by blank lines."""
        out, node = [], None
        for p in self.paras:
            if p.node != node:
                out.append(p.node.upper())
                node = p.node
            out.append(p.text)
        return "\n\n".join(out) + "\n"

    def write(self, directory) -> Path:
        from docgen import make_epub, make_pdf

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.{self.fmt}"
        if self.fmt == "txt":
            path.write_text(self.text(), encoding="utf-8")
        elif self.fmt == "pdf":
            make_pdf(path, ["\n\n".join(self.paras[i].text for i in page) for page in self.pages()])
        elif self.fmt == "epub":
            make_epub(path, [(self.paras[ch[0]].node, "\n\n".join(self.paras[i].text for i in ch))
                             for ch in self.chapters()], title=f"GNU manuals ({self.name})")
        else:
            raise ValueError(f"unknown format {self.fmt!r}")
        return path


def _chunks(paras: list[Para], limit: int) -> list[list[int]]:
    out: list[list[int]] = [[]]
    size = 0
    for i, p in enumerate(paras):
        if out[-1] and size + len(p.text) > limit:
            out.append([])
            size = 0
        out[-1].append(i)
        size += len(p.text) + 2
    return out


def build(n_tokens: int, fact_ids, fmt: str = "txt", offset: int = 0, name: str | None = None) -> Document:
    """A document of about ``n_tokens`` tokens of prose starting at paragraph
    ``offset`` of :func:`prose` (wrapping around), with the facts ``fact_ids``
    inserted after the first sentence of paragraphs at depths (i + 0.5) / k.

    Deterministic: the same arguments give the same document.
    Raises ProseMissing, or ValueError for an unknown fact id or too few paragraphs.
    """
    facts = [BY_ID[f] for f in fact_ids]
    src = prose()
    target = int(n_tokens * CHARS_PER_TOKEN) - sum(len(f.sentence) + 1 for f in facts)
    paras: list[Para] = []
    size, i = 0, offset
    while size < target:
        if i - offset >= len(src):
            raise ValueError(f"not enough prose for {n_tokens} tokens")
        p = src[i % len(src)]
        paras.append(p)
        size += len(p.text) + 2
        i += 1
    doc = Document(name or f"natural-{n_tokens}-{fmt}-{offset}", fmt, n_tokens, paras)
    used: set[int] = set()
    for k, fact in enumerate(facts):
        j = min(int((k + 0.5) / len(facts) * len(paras)), len(paras) - 1)
        while j in used or not _SENTENCE_END.search(paras[j].text):
            j = (j + 1) % len(paras)
        used.add(j)
        first, rest = _SENTENCE_END.split(paras[j].text, maxsplit=1)
        paras[j] = Para(paras[j].manual, paras[j].node, f"{first} {fact.sentence} {rest}")
        doc.placed.append(Placed(fact.id, j, 0.0))
    starts, pos = [], 0
    for p in paras:
        starts.append(pos)
        pos += len(p.text) + 2
    page_of = {i: n for n, page in enumerate(doc.pages()) for i in page}
    chapter_of = {i: n for n, ch in enumerate(doc.chapters()) for i in ch}
    for pl in doc.placed:
        at = starts[pl.para] + paras[pl.para].text.index(BY_ID[pl.fact].sentence)
        pl.depth = round(at / pos, 3)
        pl.page = page_of[pl.para] if fmt == "pdf" else None
        pl.chapter = chapter_of[pl.para] if fmt == "epub" else None
    doc.placed.sort(key=lambda pl: pl.depth)
    return doc



# The same 40 questions typed as requests ("tell me ...", "can you tell me ...",
# "do you know ..."): how people also ask (bench/questions.py --phrasing requests).
REQUESTS = {
    "F01": "Tell me how many sheep Marta Quill counted.",
    "F02": "Can you tell me where Professor Rook keeps his brass telescope?",
    "F03": "Tell me who made the silver compass.",
    "F04": "I want to know when the bridge over the Harrow River was opened.",
    "F05": "Tell me the pass key to the archive room.",
    "F06": "Do you know the motto of the Crane Street Rowing Club?",
    "F07": "Explain why Hettie Larkspur closed her bakery early on Fridays.",
    "F08": "Tell me how many passengers the ferry carried on its final crossing.",
    "F09": "Can you tell me where Captain Idris Vale buried the logbook?",
    "F10": "Tell me who the first woman to climb Mount Calder was.",
    "F11": "I'd like to know when the Pellworth town clock stopped.",
    "F12": "Give me the password for the Ravenholt garden gate.",
    "F13": "Tell me what Oona Bright said whenever a storm came.",
    "F14": "Explain why Lower Fenby moved its market to Tuesdays.",
    "F15": "Can you tell me how many jars of honey Walter Pym filled?",
    "F16": "Tell me where Clara Deverell's violin was found.",
    "F17": "Do you know who drew the map of the salt caves?",
    "F18": "Tell me when the orchard at Bramley Cross was planted.",
    "F19": "Tell me the combination of the laboratory safe.",
    "F20": "Tell me the name of the ship's cat on the Marigold.",
    "F21": "Tell me why Doctor Selwyn Ashe walked to work.",
    "F22": "I want to know how many singers are in the choir at Saint Bride's.",
    "F23": "Tell me where Nadia Korrin hid the spare key.",
    "F24": "Can you tell me who leads the lantern festival in Harwick?",
    "F25": "Tell me when Lydia Penrose sailed for Valparaiso.",
    "F26": "Give me the wifi password at the Gull and Anchor.",
    "F27": "Tell me the last words in Felix Amberley's diary.",
    "F28": "Explain why the Greystone mill was closed every winter.",
    "F29": "Tell me how many typewriters Rosalind Achterberg owns.",
    "F30": "Do you know where the Westmarch cheese fair is held?",
    "F31": "Tell me who painted the portrait in the east hall.",
    "F32": "Tell me when the Kettering observatory recorded its first comet.",
    "F33": "I want to know the secret word for the smugglers' tunnel.",
    "F34": "Tell me what the sign on Quentin Drabble's shop says.",
    "F35": "Can you explain why the mayor of Thistleby cancelled the fireworks?",
    "F36": "Tell me how many steps the tallest tower of Castle Morrow has.",
    "F37": "Tell me where Inspector Maud Ferris found the stolen emerald.",
    "F38": "Do you know who the treasurer of the Pinewood Chess Society is?",
    "F39": "Tell me when the great flood reached Amberleigh.",
    "F40": "Tell me why Pip Callow learned to swim.",
}

FORMATS = ("txt", "pdf", "epub")
LENGTHS = {"3k": 3072, "12k": 12288, "16k": 16384, "64k": 65536, "64k-pdf": 65536, "128k": 131072}


def grid(lengths=("3k", "16k", "64k")) -> dict[str, list[Document]]:
    """The benchmark's documents per length label (see the module docstring).
    The same 40 facts at every length; documents of one length use disjoint prose."""
    ids = [f.id for f in FACTS]
    out: dict[str, list[Document]] = {}
    for label in lengths:
        n = LENGTHS[label]
        if label == "3k":
            groups = [(FORMATS[d % 3], ids[5 * d: 5 * d + 5]) for d in range(8)]
        elif label in ("12k", "16k"):
            groups = [("txt", ids[0:14]), ("pdf", ids[14:27]), ("epub", ids[27:40])]
        else:  # "64k", "128k": one TXT; "64k-pdf": the same facts in one PDF
            groups = [(label.partition("-")[2] or "txt", ids)]
        docs, offset = [], 0
        for d, (fmt, fids) in enumerate(groups):
            doc = build(n, fids, fmt, offset=offset, name=f"natural-{label}-{d}-{fmt}")
            offset += len(doc.paras)
            docs.append(doc)
        out[label] = docs
    return out


def pages_by_locator(path) -> dict[str, str]:
    """The text bookpot's reader gives for each locator of ``path`` (segments of
    one locator joined with "\n", as the lexicon stores them): quotes'
    ``start``/``end`` index into these."""
    from bookpot.engine.readers import open_document

    out: dict[str, str] = {}
    for seg in open_document(str(path)).segments():
        key = str(seg.locator)
        out[key] = out[key] + "\n" + seg.text if key in out else seg.text
    return out
