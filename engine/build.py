"""The policy that turns options into a book's Session, the same way for every front end.

``build_session`` turns engine ``Options`` (the CLI's flags, the TUI's
settings, the summarizer's) into a ``Session`` sized by the RAM plan: plan,
then pot, then memory units, then the book's ``BookCache`` (its key) when
the catalyst is generic. Every front end comes through here (most through
``engine.api.open_book``), so a book read by ``bookpot ingest`` reopens at
once in ``bookpot open`` and the other way round: the cache key (document,
model, and the settings below) comes out the same for the same options.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import BookpotError


@dataclass
class Options:
    """Engine options, as ``bookpot ask``/``ingest`` take them (defaults included).

    Sizes (``ram_cap``, ``disk_cap``) are "512M"-style strings or bytes.
    Invalid values raise ``BookpotError`` when the Session is built.
    """

    model: str | None = None  # registry name or .gguf path; None: the default model
    prompt_style: str | None = None  # None: the model's measured best
    mode: str = "auto"
    ram_cap: str | int | None = None  # "512M" or bytes; None: engine.plan.default_cap()
    pot_tokens: int | None = None  # overrides the plan
    alpha: float = 0.5
    nuc: bool = True
    threads: int | None = None
    units: int = 4  # memory units loaded per question
    use_units: bool = True
    unit_tokens: int = 128
    disk_cap: str | int | None = None  # None: half the free space of the cache disk
    catalyst: str = "auto"  # "auto" | "question" | "generic"
    cache_dir: str | None = None  # None: store.cache_root() ($BOOKPOT_CACHE_DIR or the user cache)
    cache: bool = True  # False: keep nothing on disk (units in a temporary dir)
    password: str | None = None  # of an encrypted PDF (engine.api.open_book opens the document with it)
    # The largest pot the cap allows, not the bounded one: the summarizer
    # summarizes what the pot holds at each chapter end, and a chapter read
    # whole makes a better section than a distilled one (session 2's
    # summary measurements were made so).
    largest_pot: bool = False
    # Answering (no effect on what is read or cached; bench/questions.py measured them):
    stem: str = "auto"  # "on" | "off" | "auto": the registry's answer_stem for the model (stems.py)
    lookup: str = "words"  # "words": BM25 over units' text, then attention keys; "keys": keys only
    neighbours: int = 1  # the best unit's neighbours loaded with it: 0, 1 (the one before), 2 (and after)


@dataclass
class Built:
    """A Session and what came with it; ``close()`` releases all of it."""

    session: object
    cache: object | None = None  # engine.bookcache.BookCache, when the state can be saved
    plan: object | None = None  # engine.plan.Plan (None in ``full`` mode)
    ram_cap: int | None = None  # bytes the plan was made for
    by_question: bool = False  # the pot is distilled toward the question (CaP-Q): not cached
    plain: bool = False  # the whole book fits the plain window (counted before reading), or mode full
    units_tmp: object | None = None  # tempfile.TemporaryDirectory holding uncached units
    notes: list[str] = field(default_factory=list)  # things to tell the user ("memory units are off: ...")

    def close(self) -> None:
        try:
            self.session.close()
        finally:
            if self.units_tmp is not None:
                self.units_tmp.cleanup()
                self.units_tmp = None


_METADATA: dict[tuple, object] = {}  # the last model's ModelMeta: see resolve_model


def resolve_model(name: str | None, *, progress=None):
    """Find (fetching if needed) and check a model: (path, ModelEntry | None, ModelMeta).

    The GGUF header is parsed once per file version (real path, size,
    mtime): parsing the tokenizer's arrays takes ~0.2 s, and a collection
    opens each of its books with the same model (engine/collection.py).
    A file changed on disk is parsed (and checked) again.
    """
    import dataclasses

    from .. import models

    from .store import once_per_file_version

    name = name or models.DEFAULT_MODEL
    path = models.resolve(name, progress=progress)
    # a truncated/corrupt file fails here, before llama.cpp
    meta = once_per_file_version(_METADATA, path, lambda: models.read_metadata(path))
    return path, models.REGISTRY.get(name), dataclasses.replace(meta)


def build_session(opts: Options, model, entry, meta, *, book: str | None = None,
                  doc_info: dict | None = None, question: str | None = None,
                  segments: Callable[[], Iterable] | None = None) -> Built:
    """A Session sized by the RAM plan (every mode but ``full`` shares its budget).

    ``book`` (its path) is needed for the cache; ``question``, when known
    before reading, is the catalyst if ``opts.catalyst`` says so (then
    nothing is cached: that pot only serves that question).
    ``segments()``: a fresh pass over the book's segments, to count its
    tokens before reading (only up to the cap's plain context): a book that
    fits is read plain, any other into the bounded pot.
    """
    from .plan import default_cap, parse_size
    from .pot import PotConfig
    from .session import Session
    from .units import UnitConfig

    style = opts.prompt_style or (entry.default_prompt_style if entry else "completion")
    if not 0.0 <= opts.alpha <= 1.0:
        raise BookpotError("--alpha must be between 0 and 1")
    if opts.units < 0 or opts.unit_tokens < 16 or opts.unit_tokens > 512:
        raise BookpotError("--units must be >= 0 and --unit-tokens between 16 and 512")
    units = None
    if opts.use_units and opts.mode != "full":
        disk_cap = parse_size(opts.disk_cap) if opts.disk_cap else default_disk_cap(opts.cache_dir)
        units = UnitConfig(k=opts.units, unit_tokens=opts.unit_tokens, disk_cap=disk_cap)
    by_question = question is not None and (opts.catalyst == "question"
                                            or (opts.catalyst == "auto" and units is None))
    catalyst = question if by_question else None
    if opts.stem not in ("auto", "on", "off") or opts.lookup not in ("words", "keys") or opts.neighbours not in (0, 1, 2):
        raise BookpotError("--stem is auto|on|off, --lookup words|keys, --neighbours 0, 1 or 2")
    if opts.mode == "full":
        session = Session(model, prompt_style=style, mode="full", threads=opts.threads)
        _answering(session, opts, entry)
        return Built(session, by_question=by_question, plain=True)
    cap = parse_size(opts.ram_cap) if opts.ram_cap else default_cap()
    plan, plain = session_plan(opts, meta, cap, unit_room=units.room() if units else 0, model=model,
                               segments=segments)
    pot = PotConfig(plan.pot_tokens, plan.keep_tokens, alpha=opts.alpha, nuc=plan.nuc)
    cache = units_tmp = units_dir = None
    cached = not (by_question or not opts.cache) and book is not None
    if units is not None:
        if cached:
            cache = book_cache(opts, model, style, plan, units, book, doc_info)
            units_dir = cache.units_dir
        else:
            import tempfile

            units_tmp = tempfile.TemporaryDirectory(prefix="bookpot-units-")
            units_dir = units_tmp.name
    elif cached:
        cache = book_cache(opts, model, style, plan, None, book, doc_info)
    try:
        session = Session(model, prompt_style=style, mode=opts.mode, n_ctx=plan.n_ctx, threads=opts.threads,
                          n_batch=plan.n_batch, pot=pot, question=catalyst, units=units, units_dir=units_dir)
    except BaseException:
        if units_tmp is not None:
            units_tmp.cleanup()
        raise
    built = Built(session, cache=cache, plan=plan, ram_cap=cap, by_question=by_question, units_tmp=units_tmp,
                  plain=plain)
    if units is not None and session.units is None:
        built.notes.append(f"memory units are off: {session.units_why}")
    session.stats.ram_cap_bytes = cap
    session.stats.plan = plan.describe()
    _answering(session, opts, entry)
    return built


def session_plan(opts: Options, meta, cap: int, *, unit_room: int = 0, model=None,
                 segments: Callable[[], Iterable] | None = None):
    """The RAM plan a session of ``opts`` gets under ``cap`` bytes: (engine.plan.Plan, plain).

    ``plain``: the plan's largest context replaces the bounded pot (``_plain``:
    the summarizer's ``largest_pot``, or a book counted to fit). The summary
    cache key names this plan's pot (engine/summarycache.py), so a summary
    made under one cap is never served for another.
    """
    from .plan import make_plan

    plan = make_plan(meta, cap, pot_tokens=opts.pot_tokens, nuc=opts.nuc, unit_room=unit_room)
    plain = _plain(opts, plan, model, segments)
    if plain:
        plan = make_plan(meta, cap, nuc=opts.nuc, unit_room=unit_room, plain=True)
    return plan, plain


def _answering(session, opts: Options, entry) -> None:
    """How the session answers: stems, lookup and neighbours (Options' answering fields)."""
    session.use_stem = opts.stem == "on" or (opts.stem == "auto" and (entry.answer_stem if entry else True))
    session.lexical_lookup = opts.lookup == "words"
    session.neighbours = opts.neighbours


def default_disk_cap(cache_dir: str | None = None) -> int:
    """Half the free space of the disk the cache lives on (1 GiB if unknown)."""
    import shutil

    from .store import cache_root

    probe = cache_root(cache_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free // 2
    except OSError:
        return 1 << 30


def _plain(opts: Options, plan, model, segments) -> bool:
    """Whether the plan's largest context replaces the bounded pot.

    For the summarizer always (``largest_pot``); otherwise when the whole
    book fits it, counted before reading (EdgeInfinite's routing).
    """
    if opts.pot_tokens is not None or plan.plain_tokens <= plan.pot_tokens:
        return False
    if opts.largest_pot:
        return True
    if segments is None or opts.mode != "auto":
        return False
    from .tokens import count_upto

    return count_upto(model, segments(), plan.plain_tokens) <= plan.plain_tokens


def cache_settings(opts: Options, style: str, plan, units) -> dict:
    """What, besides the document and the model, decides a book's saved state."""
    return {"mode": opts.mode, "pot": plan.pot_tokens, "keep": plan.keep_tokens, "batch": plan.n_batch,
            "alpha": opts.alpha, "nuc": plan.nuc, "style": style, "catalyst": "generic",
            "units": bool(units), "unit_tokens": units.unit_tokens if units else None,
            "key_layers": None}


def book_cache(opts: Options, model, style: str, plan, units, book: str, doc_info: dict | None = None):
    from .bookcache import BookCache, model_id
    from .store import cache_root, document_hash

    return BookCache(cache_root(opts.cache_dir), doc_path=os.path.abspath(book),
                     doc_hash=document_hash(book), model=model_id(model.path),
                     settings=cache_settings(opts, style, plan, units), doc_info=doc_info or {})
