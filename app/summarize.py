"""``bookpot summarize``: books in, Markdown or JSON summaries out.

The engine side (sections, prompts, degeneration checks) is
engine/summarize.py; this module is what a user touches: which files a
folder holds, where each summary goes, the progress line, the cache, and
that one bad book never stops the others (each failure is reported at the
end, one line each, and the exit code is non-zero).

Cache: a finished summary is stored as JSON under
``cache_root()/summaries/<key>.json``, the key hashing the document's
bytes, the model file, every setting that changes the result and the
engine's version, so the same request returns at once without touching the
model. An interrupted run leaves ``<key>.partial.json``: the summaries of
the chapters finished so far, reused by the next identical run, which goes
on from the next chapter (see engine/summarize.py for why that is exact).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..engine import store
from ..engine.errors import BookpotError, ModelError, RamCapError
from ..engine.readers.base import printable
from ..engine.summarize import LENGTHS, SUMMARY_FORMAT, BookSummary, Resume, Summarizer

BOOK_EXTENSIONS = (".pdf", ".epub", ".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml")
FORMATS = ("md", "json")


def add_arguments(p) -> None:
    p.description = ("Summarize books by chapter through the bounded pot. The memory-unit and catalyst "
                     "flags do not apply (summaries use neither); --no-cache keeps nothing on disk.")
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


# ------------------------------------------------------------------ books and outputs
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
                where = "nor its subfolders hold" if recursive else "holds"
                out.append((item, f"{_shown(item)}: the folder {where} no books (PDF, EPUB, .txt, .md, .html)"))
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


# ------------------------------------------------------------------ options
@dataclass
class SummaryOptions:
    """What ``bookpot summarize`` takes besides the books, with its flags' defaults.

    The reader (app/tui/worker.py) builds one with its model, threads and RAM
    cap and the rest left at these defaults, so a summary made there has the
    cache key of the same command line, and the other way round
    (tests/test_summarize.py checks these defaults against the parser's).
    """

    model: str | None = None  # registry name or .gguf path; None: the default model
    prompt_style: str | None = None  # None: the model's measured best
    mode: str = "auto"
    ram_cap: str | int | None = None  # "512M" or bytes; None: engine.plan.default_cap()
    pot_tokens: int | None = None
    alpha: float = 0.5
    nuc: bool = True
    threads: int | None = None
    password: str | None = None
    length: str = "medium"  # a key of engine.summarize.LENGTHS
    cache_dir: str | None = None  # None: store.cache_root()
    cache: bool = True  # False (--no-cache): neither read nor write the summary cache
    fresh: bool = False  # ignore cached and partial summaries
    quiet: bool = False  # no progress line

    @classmethod
    def from_args(cls, args) -> "SummaryOptions":
        """From ``bookpot summarize``'s parsed arguments."""
        renamed = {"nuc": not args.no_nuc, "cache": not args.no_cache}
        return cls(**{f.name: renamed[f.name] if f.name in renamed else getattr(args, f.name)
                      for f in fields(cls)})


# ------------------------------------------------------------------ the cache
class SummaryModel:
    """What all books of one call share: the model (loaded on first need), its
    identity, the options and the summary cache's folder.

    ``model``: one already loaded from the same file (the reader's), used
    instead of loading the weights again.
    """

    def __init__(self, options: SummaryOptions, model=None) -> None:
        from .. import models

        self.options = options
        name = options.model or models.DEFAULT_MODEL
        self.name = name
        self.entry = models.REGISTRY.get(name)
        self.path = models.resolve(name)
        self.meta = models.read_metadata(self.path)
        self._model = model
        self.root = store.cache_root(options.cache_dir) / "summaries"
        self.model_id = self._model_id()

    def model(self):
        if self._model is None:
            from ..engine.llm import Model

            self._model = Model(self.path)
        return self._model

    def _model_id(self) -> str:
        """The pinned sha256 of a registry model; else a digest of the file (remembered)."""
        if self.entry is not None and Path(self.path).name == self.entry.filename:
            return f"sha256:{self.entry.sha256}"
        st = os.stat(self.path)
        memo = self.root / "model-digests.json"
        known = store.read_json(memo) or {}
        tag = f"{os.path.realpath(self.path)}|{st.st_size}|{st.st_mtime_ns}"
        if tag not in known:
            known[tag] = f"blake2b:{store.file_digest(Path(self.path))}:{st.st_size}"
            try:
                store.ensure_dir(self.root)
                store.atomic_write_json(memo, known)
            except BookpotError:
                pass  # only a speed-up
        return known[tag]

    def settings(self) -> dict:
        """Every setting that changes the summary (the RAM cap only through its plan)."""
        from .. import native
        from ..engine.plan import default_cap, make_plan, parse_size
        from ..engine.version import LLAMA_CPP_PYTHON, VERSION

        o = self.options
        style = o.prompt_style or (self.entry.default_prompt_style if self.entry else "completion")
        d = {"bookpot": VERSION, "summary_format": SUMMARY_FORMAT, "llama_cpp": LLAMA_CPP_PYTHON,
             "model": self.model_id, "length": o.length, "prompt_style": style, "mode": o.mode,
             "native": native.available()}
        if o.mode != "full":
            cap = parse_size(o.ram_cap) if o.ram_cap else default_cap()
            plan = make_plan(self.meta, cap, pot_tokens=o.pot_tokens, nuc=o.nuc)
            d.update(pot_tokens=plan.pot_tokens, keep_tokens=plan.keep_tokens, n_batch=plan.n_batch,
                     nuc=plan.nuc, alpha=o.alpha)
        return d


def cache_key(doc_hash: str, settings: dict) -> str:
    return store.digest(json.dumps({"doc": doc_hash, **settings}, sort_keys=True).encode())


# ------------------------------------------------------------------ one book
def summarize_book(path: str, shared: SummaryModel, *, label: str, bar=None, on_section=None, cancel=None,
                   before_session=None) -> BookSummary:
    """Summarize one book (or return its cached summary).

    For other front ends than the CLI's: ``bar`` replaces the progress line
    (``update(progress)``, ``message(text)``, ``done()``); ``on_section`` and
    ``cancel`` go to the ``Summarizer`` (a cancelled run raises
    ``engine.summarize.Cancelled`` and keeps its finished chapters for the
    next run, as Ctrl-C does); ``before_session()`` is called once the
    cache has missed, right before the summary's context is made (the
    reader frees its own there, so two contexts never share the RAM cap).
    """
    from ..engine.readers import open_document
    from ..engine.build import Options, build_session
    from .progress import ProgressLine

    opts = shared.options
    t0 = time.perf_counter()
    reader = open_document(path, password=opts.password)  # a broken file fails here, cheaply
    info = reader.info()
    settings = shared.settings()
    key = cache_key(store.document_hash(path), settings)
    final = shared.root / f"{key}.json"
    partial = shared.root / f"{key}.partial.json"
    keep = opts.cache  # --no-cache: neither read nor write the cache
    fresh = opts.fresh or not keep
    if not fresh:
        hit = _cached(final, key, t0)
        if hit is not None:
            return hit
    bar = bar or ProgressLine(label, quiet=opts.quiet)
    lock = store.locked(shared.root / f"{key}.lock",
                        wait=lambda: bar.message(f"{label}: another bookpot is summarizing this book; waiting"),
                        cancel=cancel) \
        if keep else contextlib.nullcontext()
    with lock:
        if not fresh:  # it may have finished while we waited
            hit = _cached(final, key, t0)
            if hit is not None:
                bar.done()
                return hit
        resume = None if fresh else _resume(partial, key)
        model = shared.model()
        if before_session is not None:
            before_session()
        # No memory units and no saved book state: units only serve questions,
        # and a pot that summary steps have emptied must not pass for the book's.
        built = build_session(Options(model=opts.model, prompt_style=opts.prompt_style, mode=opts.mode,
                                      ram_cap=opts.ram_cap, pot_tokens=opts.pot_tokens, alpha=opts.alpha,
                                      nuc=opts.nuc, threads=opts.threads, use_units=False,
                                      cache=False, largest_pot=True), model, shared.entry, shared.meta)
        session = built.session

        def checkpoint(state: dict) -> None:
            if keep:
                store.atomic_write_json(partial, {"key": key, "saved": store.now(), "resume": state})

        summarizer = Summarizer(session, length=opts.length, progress=bar.update,
                                message=lambda m: bar.message(f"{label}: {m}"), checkpoint=checkpoint,
                                on_section=on_section, cancel=cancel)
        try:
            summarizer.run(reader.segments(), resume=resume)
            if session.stats.doc_tokens == 0:
                raise BookpotError(f"{_shown(path)} has no text to summarize")
            overview, why, parts, method = summarizer.finish()
        except BaseException as e:
            if keep:
                _keep_unfinished(partial, key, summarizer)
            if isinstance(e, KeyboardInterrupt):
                e.bookpot_note = getattr(summarizer, "kept_note", None)
            raise
        finally:
            bar.done()
            built.close()
        st = session.stats
        stats = {
            "doc_tokens": st.doc_tokens, "chars": st.chars, "pages": info.pages,
            "chapters": len(info.chapters), "ingest_s": round(st.ingest_s, 3),
            "ingest_tokens_per_s": round(st.ingest_tokens_per_s, 1), **summarizer.stats(),
            "total_s": round(time.perf_counter() - t0, 3), "peak_rss_bytes": st.peak_rss_bytes,
            "distillations": st.distillations, "mode": st.mode, "n_ctx": st.n_ctx,
            "pot_tokens": st.pot_tokens, "keep_tokens": st.keep_tokens, "max_position": st.max_position,
            "ram_cap_bytes": st.ram_cap_bytes, "plan": st.plan, "prompt_style": st.prompt_style,
            "model": shared.name, "cached": False,
        }
        title = info.title
        if not title or any(title in p.chapters for p in parts):  # a first heading, not a title
            title = Path(path).stem
        result = BookSummary(title=title, path=str(path), overview=overview,
                             parts=parts, sections=summarizer.sections, stats=stats, settings=settings,
                             overview_degenerate=why, overview_method=method, resumed_sections=len(resume.sections) if resume else 0)
        stats["degenerate"] = result.degenerate_count
        if all(p.degenerate for p in parts):  # markers only: never passed off as a summary
            raise BookpotError(f"{printable(Path(path).name)}: the model gave no usable summary (its output was "
                               f"{parts[0].degenerate} in every part); try another --model or --prompt-style")
        if not keep:
            return result
        store.ensure_dir(shared.root)
        store.atomic_write_json(final, {"key": key, "saved": store.now(), "summary": result.to_dict()})
        try:
            partial.unlink()
        except OSError:
            pass
        return result


def _cached(final: Path, key: str, t0: float) -> BookSummary | None:
    d = store.read_json(final)
    if not isinstance(d, dict) or d.get("key") != key:
        return None
    try:
        s = BookSummary.from_dict(d["summary"])
    except (KeyError, TypeError):
        return None  # damaged or from another format: summarize again
    s.cached = True
    s.stats["cached"] = True
    s.stats["lookup_s"] = round(time.perf_counter() - t0, 3)
    return s


def _resume(partial: Path, key: str) -> Resume | None:
    d = store.read_json(partial)
    if not isinstance(d, dict) or d.get("key") != key or not isinstance(d.get("resume"), dict):
        return None
    try:
        return Resume(**d["resume"])
    except TypeError:
        return None


def _keep_unfinished(partial: Path, key: str, summarizer: Summarizer) -> None:
    """On an interruption: keep every section summary written, for the user to read.

    Only those before the last chapter boundary (``resume``) are reused.
    """
    d = store.read_json(partial)
    d = d if isinstance(d, dict) and d.get("key") == key else {"key": key}
    done = len((d.get("resume") or {}).get("sections", []))
    d["unfinished_sections"] = [s.__dict__ for s in summarizer.sections[done:]]
    summarizer.kept_note = (f"{done} section summaries of finished chapters are kept in {partial}; "
                            "the same command goes on after them" if done else
                            f"no chapter was finished; {len(summarizer.sections)} section summaries "
                            f"are kept in {partial} for reading, and the next run starts again")
    d["saved"] = store.now()
    try:
        store.ensure_dir(partial.parent)
        store.atomic_write_json(partial, d)
    except BookpotError:
        pass


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
    opts = SummaryOptions.from_args(args)
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
            result = summarize_book(book, shared, label=label)
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
    return 2 if failures else 0
