"""Writes app/sample/sample.pdf: the short book the README's first command asks about.

The text is written for bookpot (no copied text). Run from the repository:
    .venv/bin/python tests/make_sample.py
It reuses the tests' PDF writer so the sample is a real, multi-page PDF with
printed page labels. (It lives beside that writer, not in app/sample/, so the
installed package ships the PDF and not this script.)
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_DIR = HERE.parent / "app" / "sample"
sys.path.insert(0, str(HERE))
from docgen import make_pdf  # noqa: E402

PAGES = [
    "The Keeper of Harrow Point\n\n"
    "Harrow Point lighthouse stands on a black rock at the northern end of the bay. "
    "It was built in 1871 from grey granite carried by boat from the quarry at Selby. "
    "The tower is thirty-one metres tall and its lamp can be seen for nineteen nautical miles. "
    "For most of its working life the light was tended by a single keeper who lived in the "
    "small white cottage at the foot of the tower.",
    "The last keeper of Harrow Point was a woman named Ada Brennan. She took the post in 1952, "
    "after her father retired, and she kept the light for twenty-six years. Every evening at "
    "sunset she climbed the one hundred and twelve steps to wind the clockwork that turned the "
    "lens. Every morning she polished the brass and trimmed the wick. She kept a logbook of the "
    "weather, the ships that passed and the birds that rested on the gallery.",
    "In the winter of 1963 a great storm drove the fishing boat Marigold onto the rocks below the "
    "tower. Ada Brennan saw the boat's lantern from the gallery, rang the bell, and rowed out with "
    "two men from the village. All four fishermen were brought ashore alive. The village gave her "
    "a silver compass, which is now kept in the museum at Selby.",
    "The light was made automatic in 1978 and Ada Brennan moved to a house in the village, where "
    "she lived until 1991. Her logbooks, thirty-four volumes in all, are kept in the county archive. "
    "Today the cottage is a small museum, and on summer afternoons visitors may climb the tower "
    "and look out over the bay that she watched for so long.",
]

if __name__ == "__main__":
    out = make_pdf(SAMPLE_DIR / "sample.pdf", PAGES, page_labels=None)
    print(out)
