"""``bookpot summarize``: books in, Markdown or JSON summaries out.

The engine side (sections, prompts, degeneration checks) is
engine/summarize.py; this module is what a user touches: which files a
folder holds, where each summary goes, the progress line, the cache, and
that one bad book never stops the others (each failure is reported at the
end, one line each, and the exit code is non-zero: ``exit_code``).

The summary cache and one book's run are the engine's
(engine/summarycache.py: ``summarize_book``), shared with the reader and
the Dask workers.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from ..engine import store
from ..engine.errors import BookpotError, ModelError, RamCapError
from ..engine.readers.base import printable
from .progress import ProgressLine
from ..engine.summarize import LENGTHS, SUMMARY_FORMAT, BookSummary
from ..engine.summarycache import SummaryModel, SummaryOptions, summarize_book

BOOK_EXTENSIONS = (".pdf", ".epub", ".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml")
FORMATS = ("md", "json")


def add_arguments(p) -> None:
    p.description = ("Summarize books by chapter through the bounded pot. The memory-unit and catalyst "
                     "flags do not apply (summaries use neither); --no-cache keeps nothing on disk. "
                     "A book already read (ingest, the reader) is not decoded again: the KV its reading "
                     "saved is loaded instead (--no-reuse decodes every token).")
    p.add_argument("books", nargs="+", metavar="BOOK", help="books or folders of books")
    p.add_argument("--out", default=None, metavar="FILE|DIR",
                   help="write here instead of stdout (a folder when several books: one file each)")
    p.add_argument("--format", choices=FORMATS, default=None, help="md (default) or json")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--length", choices=tuple(LENGTHS), default="medium",
                   help="how long each summary may be (default medium)")
    if "--cache-dir" not in p._option_string_actions:  # unless the shared engine flags have it
        p.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="where finished and partial summaries are kept (default: the user cache)")
    p.add_argument("--fresh", action="store_true", help="ignore cached and partial summaries")
    p.add_argument("--no-reuse", action="store_true",
                   help="decode every token, even of a book whose reading saved its KV (slower; the summary "
                        "then depends only on the book and these settings)")


# ------------------------------------------------------------------ books and outputs
def exit_code(done: int, failed: int) -> int:
    """The exit code of ``ask``, ``ingest`` or ``summarize`` over several paths:
    0 when every book was used; 1 when ``failed`` of them (a named path that
    does not exist, is no book or cannot be read, a book in a named folder
    that cannot be read) were not and the other ``done`` were; 2 when none was."""
    return 0 if not failed else 1 if done else 2


def expand_books(items: list[str], recursive: bool = False) -> list[tuple[str, str | None]]:
    """``(path, None)`` for every book; ``(item, error)`` for an item that is none.

    A folder stands for the books directly in it (by extension, sorted;
    hidden files skipped), and with ``recursive`` for those in its
    subfolders too (depth first, sorted; hidden folders skipped). Order is
    kept and duplicates dropped.
    """
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in items:
        if os.path.isdir(item):
            paths = _books_in(item, recursive)
            if not paths:
                where = "the folder and its subfolders hold" if recursive else "the folder holds"
                out.append((item, f"{_shown(item)}: {where} no books (PDF, EPUB, .txt, .md, .html)"))
        else:
            paths = [item]
        for p in paths:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                out.append((p, None))
    return out


def _books_in(folder: str, recursive: bool) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    out = [os.path.join(folder, n) for n in names if n.lower().endswith(BOOK_EXTENSIONS)
           and os.path.isfile(os.path.join(folder, n))]
    if recursive:
        for n in names:
            sub = os.path.join(folder, n)
            if os.path.isdir(sub) and not os.path.islink(sub):
                out += _books_in(sub, True)
    return out


def _shown(path: str) -> str:
    return printable(str(path), 160, keep_end=True)


def output_paths(books: list[str], out: str | None, fmt: str) -> list[Path | None]:
    """Where each book's summary goes: None = stdout."""
    if out is None:
        return [None] * len(books)
    target = Path(out).expanduser()
    as_dir = len(books) > 1 or target.is_dir() or out.endswith(os.sep)
    if not as_dir:
        if not target.parent.is_dir():
            raise BookpotError(f"--out {_shown(out)}: the folder {_shown(target.parent)} does not exist")
        return [target]
    if target.exists() and not target.is_dir():
        raise BookpotError(f"--out {_shown(out)} is a file; several books need a folder")
    store.ensure_dir(target)
    paths, used = [], set()
    for book in books:
        stem = Path(book).stem or "book"
        name, n = f"{stem}.summary.{fmt}", 2
        while name in used:
            name, n = f"{stem}-{n}.summary.{fmt}", n + 1
        used.add(name)
        paths.append(target / name)
    return paths


# ------------------------------------------------------------------ rendering
def render_markdown(s: BookSummary) -> str:
    """A title, the overview, one heading per chapter (or page range) with its
    page references, and a footer saying how it was made."""
    lines = [f"# {s.title}", ""]
    if len(s.parts) > 1 or s.parts and s.parts[0].summary != s.overview:
        lines += [_md_text(s.overview), ""]
    for i, part in enumerate(s.parts, 1):
        if part.chapters:
            lines += [f"## {part.title}", ""]
            refs = part.where
        else:
            heading = part.where or "Text"
            lines += [f"## {heading[0].upper() + heading[1:]}", ""]
            refs = ""
        if refs:
            lines += [f"*{refs}*", ""]
        lines += [_md_text(part.summary), ""]
    st = s.stats
    bits = [f"{st.get('doc_tokens', 0):,} tokens", f"{len(s.sections)} section(s)"]
    if st.get("distillations"):
        bits.append(f"{st['distillations']} distillations")
    if st.get("model"):
        bits.append(st["model"])
    if s.overview_method == "composed":
        bits.append("overview composed from the parts (the model's own did not cover them)")
    lines += ["---", "", f"*Summary of {Path(s.path).name} by bookpot · " + " · ".join(bits) + "*", ""]
    return "\n".join(lines)


def _md_text(text: str) -> str:
    return f"*{text}*" if text.startswith("[no usable summary") else text


def render_json(s: BookSummary, *, indent: int | None = None) -> str:
    d = s.to_dict()
    d["format_version"] = SUMMARY_FORMAT
    return json.dumps(d, ensure_ascii=False, indent=indent)


def summary_options(args) -> SummaryOptions:
    """``SummaryOptions`` from ``bookpot summarize``'s parsed arguments."""
    renamed = {"nuc": not args.no_nuc, "cache": not args.no_cache, "reuse": not args.no_reuse}
    return SummaryOptions(**{f.name: renamed[f.name] if f.name in renamed else getattr(args, f.name)
                             for f in fields(SummaryOptions)})


def write_summary(result: BookSummary, out: Path | None, fmt: str, *, first: bool = True) -> None:
    """Print ``result`` (``out`` None: stdout, a blank line before it unless ``first``) or
    write it to ``out`` atomically (``CacheError`` when the disk fails), as ``fmt`` says."""
    if out is None:
        text = render_json(result) if fmt == "json" else render_markdown(result)
        if fmt == "md" and not first:
            sys.stdout.write("\n")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        text = render_json(result, indent=1) if fmt == "json" else render_markdown(result)
        store.atomic_write(out, (text + "\n").encode())


# ------------------------------------------------------------------ the command
def run(args) -> int:
    """``bookpot summarize`` with its parsed arguments; the exit code."""
    opts = summary_options(args)
    fmt = "json" if args.json else (args.format or "md")
    books = expand_books(args.books)
    good = [b for b, err in books if err is None]
    outs = dict(zip(good, output_paths(good, args.out, fmt)))
    failures: list[str] = [err for _, err in books if err is not None]
    shared = None
    first_stdout = True
    for i, (book, err) in enumerate(books, 1):
        if err is not None:
            continue
        label = f"[{i}/{len(books)}] {Path(book).name}" if len(books) > 1 else Path(book).name
        try:
            if shared is None:
                shared = SummaryModel(opts)  # model problems fail the whole call, once
            result = summarize_book(book, shared, label=label, bar=ProgressLine(label, quiet=opts.quiet))
        except (ModelError, RamCapError):
            raise
        except BookpotError as e:
            msg = str(e)
            failures.append(msg if printable(Path(book).name) in msg else f"{_shown(book)}: {msg}")
            continue
        except KeyboardInterrupt as e:
            note = getattr(e, "bookpot_note", None)
            print(f"\nbookpot: interrupted{'; ' + note if note else ''}", file=sys.stderr)
            return 130
        except Exception as e:  # a bug: report it, go on with the other books
            if os.environ.get("BOOKPOT_DEBUG") == "1":
                raise
            failures.append(printable(f"{_shown(book)}: internal error: {type(e).__name__}: {e}", 300))
            continue
        out = outs[book]
        try:
            write_summary(result, out, fmt, first=first_stdout)
        except BookpotError as e:
            failures.append(f"{_shown(book)}: {e}")
            continue
        if out is None:
            first_stdout = False
        if not opts.quiet and result.degenerate_count and sys.stderr.isatty():
            sys.stderr.write(f"bookpot: warning: {result.degenerate_count} part(s) of {printable(Path(book).name)} "
                             "have no usable summary (marked in the output)\n")
    for msg in failures:
        print(f"bookpot: {msg}", file=sys.stderr)
    if failures and len(books) > 1:
        print(f"bookpot: {len(books) - len(failures)} of {len(books)} books summarized, "
              f"{len(failures)} failed", file=sys.stderr)
    return exit_code(len(books) - len(failures), len(failures))
