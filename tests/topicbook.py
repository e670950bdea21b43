"""A book of clearly separate topics, for the summarizer's tests and bench.

Four chapters (bread baking, lighthouse keeping, chess openings, bee
keeping), each written from sentence templates filled with that topic's
vocabulary by a seeded random generator, so the text reads as varied,
natural prose about one subject instead of one sentence repeated. Every
chapter stays on its topic: a summary that names the wrong subject is the
summarizer's fault, not the text's.

``topic_chapters(tokens_per_chapter)`` gives ``[(title, text), ...]``;
``TOPIC_WORDS`` lists, per chapter, words a summary of it should contain
(at least one).
"""
from __future__ import annotations

import random

# About 1.2 SmolLM2 tokens per word for this prose (measured: 1.17-1.26).
TOKENS_PER_WORD = 1.2

_TOPICS = {
    "Bread Baking": {
        "who": ["the baker", "an apprentice baker", "my grandmother", "the village baker",
                "a patient home baker", "the night baker"],
        "thing": ["the dough", "the sourdough starter", "a rye loaf", "the bread", "a wholemeal loaf",
                  "the baguette dough", "the proofing basket", "the bread flour", "the yeast"],
        "act": ["kneads", "shapes", "folds", "proofs", "scores", "bakes", "weighs", "feeds",
                "mixes", "tests"],
        "detail": ["until it feels smooth and elastic", "before the oven is hot",
                   "with a little salt and warm water", "so the crust turns deep brown",
                   "while the yeast slowly rises", "on a floured wooden board",
                   "at dawn, before the shop opens", "until the loaf sounds hollow when tapped"],
        "fact": ["Bread needs only flour, water, salt and yeast.",
                 "A hot oven and a little steam give bread a crisp crust.",
                 "Kneading builds the gluten that lets bread dough hold its gas.",
                 "A sourdough starter is flour and water full of wild yeast.",
                 "Rye flour makes a dense, dark and sour bread.",
                 "Baking bread at home takes patience more than skill.",
                 "The dough doubles in size while it proofs in a warm kitchen.",
                 "Every loaf of bread is scored with a blade before baking."],
    },
    "Lighthouse Keeping": {
        "who": ["the lighthouse keeper", "the old keeper", "an assistant keeper", "the keeper's wife",
                "the relief keeper", "the head keeper"],
        "thing": ["the lamp", "the great lens", "the lantern room", "the lighthouse", "the foghorn",
                  "the brass fittings", "the paraffin store", "the logbook", "the beacon"],
        "act": ["polishes", "lights", "trims", "winds", "cleans", "checks", "guards", "repairs",
                "records", "watches"],
        "detail": ["before sunset on the rocky headland", "through the long winter storms",
                   "so that passing ships can see the coast", "while waves break on the reef below",
                   "by climbing the spiral stairs of the tower", "every night until the dawn",
                   "when fog rolls in from the sea", "with the care the coast guard demands"],
        "fact": ["A lighthouse warns ships away from rocks and shoals.",
                 "The keeper climbs the tower stairs many times each night.",
                 "Each lighthouse flashes its own pattern so sailors know which one they see.",
                 "The lens of a lighthouse bends the lamp's light into a bright beam over the sea.",
                 "Lighthouse keepers lived in lonely stations on islands and cliffs.",
                 "In fog the keeper sounds the foghorn for the ships at sea.",
                 "The keeper writes the weather and every passing ship in the logbook.",
                 "Most lighthouses are automatic now, and the keepers have gone."],
    },
    "Chess Openings": {
        "who": ["the chess player", "a young chess champion", "the grandmaster", "my chess coach",
                "the club player", "a careful beginner"],
        "thing": ["the king's pawn", "the Sicilian Defence", "the Queen's Gambit", "the Ruy Lopez",
                  "the knight", "the bishop", "the chess opening", "the French Defence",
                  "the centre of the board"],
        "act": ["studies", "plays", "prepares", "analyses", "develops", "memorises", "defends",
                "attacks", "practises", "controls"],
        "detail": ["in the first ten moves of the game", "before castling the king to safety",
                   "to control the centre of the chessboard", "against a strong opponent",
                   "with white in a tournament game", "so that every piece joins the fight",
                   "from a book of chess openings", "while the chess clock ticks"],
        "fact": ["A good chess opening develops the knights and bishops quickly.",
                 "The Sicilian Defence answers the king's pawn with a pawn on c5.",
                 "In the Queen's Gambit white offers a pawn to win the centre.",
                 "Chess players learn openings so they reach a good middlegame.",
                 "Castling early keeps the king safe in most chess openings.",
                 "The Ruy Lopez is one of the oldest chess openings still played.",
                 "A gambit sacrifices a pawn in the opening for faster development.",
                 "Opening theory in chess fills whole libraries of books."],
    },
    "Bee Keeping": {
        "who": ["the beekeeper", "an old beekeeper", "the apiarist", "my neighbour who keeps bees",
                "a new beekeeper", "the village beekeeper"],
        "thing": ["the beehive", "the honeycomb", "the honey bees", "the hive frames", "the bee colony",
                  "the swarm", "the smoker", "the beeswax", "the honey harvest"],
        "act": ["inspects", "opens", "smokes", "feeds", "checks", "moves", "harvests", "protects",
                "treats", "counts"],
        "detail": ["on a warm afternoon in late spring", "while the bees forage in the clover",
                   "wearing a veil and gloves against stings", "before the colony swarms",
                   "so the bees have honey for the winter", "at the edge of the orchard",
                   "when the hive hums loudly", "with slow and gentle movements"],
        "fact": ["Honey bees make honey from the nectar of flowers.",
                 "A beehive holds one queen bee and thousands of worker bees.",
                 "The beekeeper uses smoke to calm the bees before opening the hive.",
                 "Bees build honeycomb from wax they make in their own bodies.",
                 "A swarm is half of a bee colony leaving to find a new home.",
                 "Worker bees dance to tell the hive where the flowers are.",
                 "Beekeepers leave enough honey in the hive for the bees in winter.",
                 "Bees pollinate fruit trees, so orchards need beehives nearby."],
    },
}

_TEMPLATES = [
    "{Who} {act} {thing} {detail}.",
    "Every morning {who} {act} {thing}, and {who2} {act2} {thing2}.",
    "{Fact}",
    "{Fact} {Who} knows this well and {act} {thing} {detail}.",
    "When {who} {act} {thing}, {who2} watches and learns.",
    "It is said that {who} always {act} {thing} {detail}.",
    "First {who} {act} {thing}; then {who2} {act2} {thing2} {detail}.",
    "{Detail_cap}, {who} {act} {thing}.",
]

TOPIC_WORDS = {
    "Bread Baking": ("bread", "dough", "bak", "loaf", "loaves", "flour", "yeast", "oven", "sourdough"),
    "Lighthouse Keeping": ("lighthouse", "keeper", "lamp", "lantern", "beacon", "lens", "foghorn", "tower"),
    "Chess Openings": ("chess", "opening", "pawn", "knight", "bishop", "gambit", "sicilian", "castl"),
    "Bee Keeping": ("bee", "hive", "honey", "beekeep", "colony", "swarm", "wax", "apiar"),
}


def _sentence(rng: random.Random, v: dict) -> str:
    t = rng.choice(_TEMPLATES)
    act = rng.choice(v["act"])
    who, who2 = rng.sample(v["who"], 2)
    thing, thing2 = rng.sample(v["thing"], 2)
    detail = rng.choice(v["detail"])
    s = t.format(Who=who[0].upper() + who[1:], who=who, who2=who2, act=act,
                 act2=rng.choice(v["act"]), thing=thing, thing2=thing2, detail=detail,
                 Detail_cap=detail[0].upper() + detail[1:], Fact=rng.choice(v["fact"]))
    return s


def chapter_text(title: str, n_tokens: int, seed: int = 0) -> str:
    """About ``n_tokens`` SmolLM2 tokens of prose on ``title``'s topic, in paragraphs."""
    rng = random.Random(f"{title}-{seed}")
    v = _TOPICS[title]
    want_words = int(n_tokens / TOKENS_PER_WORD)
    paras, words = [], 0
    while words < want_words:
        para = " ".join(_sentence(rng, v) for _ in range(rng.randint(4, 7)))
        paras.append(para)
        words += len(para.split())
    return "\n\n".join(paras)


def topic_chapters(tokens_per_chapter: int = 2500, seed: int = 0) -> list[tuple[str, str]]:
    return [(title, chapter_text(title, tokens_per_chapter, seed)) for title in _TOPICS]


def pdf_pages(chapters: list[tuple[str, str]], chars_per_page: int = 2600):
    """Pages for docgen.make_pdf (each chapter starts on a new page, its title
    on top) and the outline ``[(title, first_page_index)]``."""
    pages, outline = [], []
    for title, text in chapters:
        outline.append((title, len(pages)))
        page, first = [title], True
        size = len(title)
        for para in text.split("\n\n"):
            if size + len(para) > chars_per_page and not first:
                pages.append("\n".join(page))
                page, size = [], 0
            page.append(para)
            size += len(para)
            first = False
        pages.append("\n".join(page))
    return pages, outline
