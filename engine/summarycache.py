"""The summary cache, and one book summarized through it: the engine's door for summaries.

``summarize_book(path, SummaryModel(SummaryOptions(...)))`` is what the
CLI (``bookpot summarize``), the reader (app/tui/worker.py) and the Dask
workers (app/cluster.py) call; engine/summarize.py holds the Summarizer it
drives (sections, prompts, degeneration checks).

Cache: a finished summary is stored as JSON under
``cache_root()/summaries/<key>.json``, the key hashing the document's
bytes, the model file, every setting that changes the result and the
engine's version, so the same request returns at once without touching the
model. An interrupted run leaves ``<key>.partial.json``: the summaries of
the chapters finished so far, reused by the next identical run, which goes
on from the next chapter (see engine/summarize.py for why that is exact).
A book already read (``bookpot ingest``, the reader's background reading),
or parts of it prefilled on demand for questions, is not decoded again: the
session loads the KV those saved wherever it holds a whole chunk
(engine/savedkv.py; ``reuse``). The first summary made for a key is kept,
loaded or not (its stats say how many tokens were loaded, ``reused_tokens``,
and from which book cache, ``reused_from``); ``--no-reuse`` decodes every
token, under a key of its own (``settings()["reuse"]``).
Errors: ``BookpotError`` (a broken book, no text, no usable summary),
``ModelError``/``RamCapError`` from the model and the plan,
``engine.summarize.Cancelled`` when ``cancel()`` turned true.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import store
from .errors import BookpotError
from .readers.base import printable
from .summarize import SUMMARY_FORMAT, BookSummary, Resume, Summarizer


class _NoBar:
    """Progress nobody shows."""

    def update(self, p) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def done(self) -> None:
        pass


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
    reuse: bool = True  # load the KV a reading of the book saved instead of decoding (savedkv.py)
    quiet: bool = False  # no progress line


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
            from .llm import Model

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

    def saved_kv(self, doc_hash: str):
        """The KV a cached reading of this document saved (engine.savedkv.SavedKV), when the
        options allow loading it (``reuse``), else None."""
        if not self.options.reuse:
            return None
        from .bookcache import model_id
        from .savedkv import SavedKV

        return SavedKV.find(store.cache_root(self.options.cache_dir), doc_hash=doc_hash,
                            model=model_id(self.path), style=self.prompt_style)

    def session_options(self):
        """The engine.build.Options a summary's session is built with: no memory units, no
        saved book state (units only serve questions, and a pot that summary steps have
        emptied must not pass for the book's), the largest pot the cap allows."""
        from .build import Options

        o = self.options
        return Options(model=o.model, prompt_style=self.prompt_style, mode=o.mode, ram_cap=o.ram_cap,
                       pot_tokens=o.pot_tokens, alpha=o.alpha, nuc=o.nuc, threads=o.threads,
                       use_units=False, cache=False, largest_pot=True)

    @property
    def prompt_style(self) -> str:
        """The style summaries are asked in: the option, else the model's measured default."""
        if self.options.prompt_style:
            return self.options.prompt_style
        return self.entry.default_prompt_style if self.entry else "completion"

    def settings(self) -> dict:
        """Every setting that changes the summary (the RAM cap only through its plan)."""
        from .. import native
        from .build import session_plan
        from .plan import default_cap, parse_size
        from .version import LLAMA_CPP_PYTHON, VERSION

        o = self.options
        style = self.prompt_style
        d = {"bookpot": VERSION, "summary_format": SUMMARY_FORMAT, "llama_cpp": LLAMA_CPP_PYTHON,
             "model": self.model_id, "length": o.length, "prompt_style": style, "mode": o.mode,
             "native": native.available()}
        if not o.reuse:  # every token decoded: not the summary a read book may give (savedkv.py)
            d["reuse"] = False
        if o.mode != "full":  # the pot the summary reads through (build_session's plan)
            cap = parse_size(o.ram_cap) if o.ram_cap else default_cap()
            plan, _ = session_plan(self.session_options(), self.meta, cap)
            d.update(pot_tokens=plan.pot_tokens, keep_tokens=plan.keep_tokens, n_batch=plan.n_batch,
                     nuc=plan.nuc, alpha=o.alpha)
        return d


def cache_key(doc_hash: str, settings: dict) -> str:
    return store.digest(json.dumps({"doc": doc_hash, **settings}, sort_keys=True).encode())


# ------------------------------------------------------------------ one book
def summarize_book(path: str, shared: SummaryModel, *, label: str, bar=None, on_section=None, cancel=None,
                   before_session=None) -> BookSummary:
    """Summarize one book (or return its cached summary).

    ``bar``: the front end's progress (``update(progress)``, ``message(text)``,
    ``done()``; the CLI's progress line, the reader's status, the cluster's
    events; none by default); ``on_section`` and
    ``cancel`` go to the ``Summarizer`` (a cancelled run raises
    ``engine.summarize.Cancelled`` and keeps its finished chapters for the
    next run, as Ctrl-C does); ``before_session()`` is called once the
    cache has missed, right before the summary's context is made (the
    reader frees its own there, so two contexts never share the RAM cap).
    """
    from .build import build_session
    from .readers import open_document

    opts = shared.options
    t0 = time.perf_counter()
    reader = open_document(path, password=opts.password)  # a broken file fails here, cheaply
    info = reader.info()
    settings = shared.settings()
    doc_hash = store.document_hash(path)
    key = cache_key(doc_hash, settings)
    final = shared.root / f"{key}.json"
    partial = shared.root / f"{key}.partial.json"
    keep = opts.cache  # --no-cache: neither read nor write the cache
    fresh = opts.fresh or not keep
    if not fresh:
        hit = _cached(final, key, t0)
        if hit is not None:
            return hit
    bar = bar or _NoBar()
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
        built = build_session(shared.session_options(), model, shared.entry, shared.meta)
        session = built.session
        saved = shared.saved_kv(doc_hash)  # looked up under the lock: after the cache missed
        if saved is not None:
            session.use_saved_kv(saved)

        def checkpoint(state: dict) -> None:
            if keep:
                store.atomic_write_json(partial, {"key": key, "saved": store.now(), "resume": state})

        summarizer = Summarizer(session, length=opts.length, progress=bar.update,
                                message=lambda m: bar.message(f"{label}: {m}"), checkpoint=checkpoint,
                                on_section=on_section, cancel=cancel)
        try:
            summarizer.run(reader.segments(), resume=resume)
            if session.stats.doc_tokens == 0:
                raise BookpotError(f"{printable(str(path), 160, keep_end=True)} has no text to summarize")
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
            "reused_tokens": st.reused_tokens, "reuse_load_s": round(st.reuse_load_s, 3),
            "reused_from": saved.dir.name if saved is not None else None,
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
