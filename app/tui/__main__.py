"""``python -m bookpot.app.tui [BOOK]``: the TUI without the CLI around it."""
from __future__ import annotations

import argparse
import sys

from . import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bookpot.app.tui", description=__doc__)
    p.add_argument("book", nargs="?", help="a PDF, EPUB, .txt, .md or .html file")
    p.add_argument("--model", help="registry name or path to a .gguf")
    p.add_argument("--threads", type=int)
    p.add_argument("--ram-cap", type=int, help="RAM cap in MB")
    a = p.parse_args(argv)
    return run(a.book, a.model, a.threads, a.ram_cap)


if __name__ == "__main__":
    sys.exit(main())
