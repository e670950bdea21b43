"""``bookpot ingest|summarize PATH… --cluster tcp://HOST:8786`` (or ``--workers N``):
one Dask task per book, spread over the workers of a Dask ``distributed``
scheduler (several boards), or over a ``LocalCluster`` of N processes.

Where the results go: a shared cache directory. Every worker reads and
writes the book's cache in the same folder as the client (``--cache-dir``,
mounted at the same path on every board: NFS, SMB, sshfs), and the client
reads it from there. The other choice -- each worker keeps its own cache
and the result travels back to the client through Dask -- was not taken:

- a book's saved state (``bookpot ingest``) is its pot's KV and its memory
  units, tens to hundreds of MiB per book. Dask would hold it in the
  worker's and the client's memory while it travels (outside the RAM cap)
  and the client would write it again;
- resuming needs the checkpoint where the *next* worker can see it: a
  worker killed mid-book leaves its last checkpoint (engine/book.py for a
  book's state, ``<key>.partial.json`` for a summary) in the shared folder,
  and the task Dask retries on another worker goes on from there instead of
  starting the book again;
- the book's lock (``store.locked``, an flock in the shared folder) is what
  keeps two workers off the same book at once, whoever scheduled them (a
  retried task, a second client); the kernel drops it when its process
  dies, so a killed worker's book is free for the retry;
- a client interrupted and started again finds the books the cluster
  finished meanwhile in that folder: their tasks return at once from the
  cache.

So the client checks first that every worker sees the folder (a probe file)
and runs the same bookpot version, and each task checks that the book at
its path holds the bytes the client hashed. The summary itself (a few KiB)
also comes back as the task's result, so the client prints or writes it as
``bookpot summarize`` does (stdout, ``--out``), in the order given.

Each task runs bookpot under the worker's own RAM cap and threads: with
``--workers N`` the machine's cap (``--ram-cap`` or the default) is split N
ways and each process reads one book at a time with ``--threads`` or its
share of the cores; with ``--cluster`` a given ``--ram-cap``/``--threads``
applies to each worker, else each takes its machine's default cap and cores
divided by the number of books it runs at once (``dask worker --nthreads``).

Progress: each task sends ``Worker.log_event`` messages (topic
``bookpot-progress``, at most two a second) that the client's
``subscribe_topic`` handler folds into one line: books done, tokens/s over
the whole cluster, ETA (weighted by the books' sizes in bytes).

Faults: a book whose task fails (no text, a damaged file, the model's
output unusable) comes back as an error value, not an exception, so Dask
does not retry what would fail again; it is reported at the end with its
reason and the other books go on. A worker that dies is Dask's to handle:
its running task goes to another worker (``distributed.scheduler.allowed-
failures`` deaths, 3 by default, before it gives up with ``KilledWorker``,
reported as that book's failure). Every worker appends what it does to
``<cache>/cluster/journal.jsonl`` (one JSON object a line: ``event`` start
/ done / failed, ``kind``, ``path``, ``doc``, ``worker``, ``host``, ``pid``,
``cached``, ``resumed``): a book made from scratch or from a checkpoint
has one ``done`` line with ``cached`` false, however many times Dask ran its
task. The client releases each future as soon as it has its result: a
finished book's result left on a worker that then dies would make Dask run
the task again (it would come back from the cache, but a task for nothing).

Connecting: ``BOOKPOT_CLUSTER_TIMEOUT`` seconds (default 20) to reach the
scheduler and again for a first worker to be there; TLS (``tls://``
addresses) takes its certificates from Dask's configuration
(``distributed.comm.tls.*``: see the README).
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from ..engine import store
from ..engine.errors import BookpotError
from ..engine.readers.base import printable
from ..engine.version import VERSION

TOPIC = "bookpot-progress"
JOURNAL = Path("cluster") / "journal.jsonl"
MiB = 1 << 20
SHARE_STEP = 64 * MiB  # a worker's share of the cap, rounded down to this (a stable plan, so a stable cache key)
EVENT_S = 0.5  # at most one progress event per book per this many seconds
INSTALL = "pip install 'bookpot[cluster]'"


def add_arguments(p) -> None:
    """``--cluster ADDRESS`` and ``--workers N`` for ``ingest`` and ``summarize``."""
    g = p.add_argument_group("several books at once (Dask; needs bookpot[cluster])")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--cluster", default=None, metavar="tcp://HOST:8786",
                   help="a Dask scheduler: one task per book on its workers (each worker needs bookpot, the "
                        "model, the books and --cache-dir at the same paths); --ram-cap/--threads, when given, "
                        "apply to each worker")
    x.add_argument("--workers", type=int, default=None, metavar="N",
                   help="N local processes (a Dask LocalCluster), one book at a time each, each under 1/N of "
                        "--ram-cap and with --threads or 1/N of the cores")


def spread(args) -> bool:
    """The command asked for Dask (``--cluster`` or ``--workers``)."""
    return bool(getattr(args, "cluster", None)) or getattr(args, "workers", None) is not None


def _timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("BOOKPOT_CLUSTER_TIMEOUT", "20")))
    except ValueError:
        return 20.0


def _import_distributed():
    try:
        import distributed
    except ImportError as e:
        raise BookpotError(f"--cluster and --workers need Dask's distributed ({e}); install it with "
                           f"`{INSTALL}`") from None
    return distributed


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return printable(text[0] if text else type(e).__name__, 300)


# ------------------------------------------------------------------ the client
def connect(args):
    """``(client, local_cluster | None, n_local_workers)``: connected, with at least one worker.

    Raises ``BookpotError`` (one line) when the scheduler cannot be reached,
    the address is not one, or no worker joins in time.
    """
    distributed = _import_distributed()
    import logging

    timeout = _timeout()
    if args.workers is not None:
        if args.workers < 1:
            raise BookpotError("--workers must be at least 1")
        try:
            cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster, timeout=timeout)
        except Exception as e:
            raise BookpotError(f"could not start {args.workers} local Dask workers: {_first_line(e)}") from None
        return client, cluster, args.workers
    address = args.cluster
    try:
        client = distributed.Client(address, timeout=timeout)
    except TypeError as e:
        if str(address).startswith("tls://"):  # Dask: "TLS expects a `ssl_context` argument ..."
            raise BookpotError(f"cannot reach the Dask scheduler at {printable(address, 200)}: a tls:// address "
                               "needs Dask's TLS settings (distributed.comm.tls.ca-file, client cert and key; "
                               "see the README)") from None
        raise BookpotError(f"cannot reach the Dask scheduler at {printable(address, 200)}: "
                           f"{_first_line(e)}") from None
    except (OSError, ValueError) as e:  # refused, timed out, no such host, not an address
        raise BookpotError(f"cannot reach the Dask scheduler at {printable(address, 200)}: {_first_line(e)} "
                           "(is `dask scheduler` running there, and the port open?)") from None
    except Exception as e:  # something answered, but not in Dask's protocol (MemoryError on a garbage frame)
        raise BookpotError(f"cannot reach the Dask scheduler at {printable(address, 200)}: what answers there "
                           f"is not a Dask scheduler ({type(e).__name__})") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        client.close()
        raise BookpotError(f"no Dask worker joined the scheduler at {printable(address, 200)} within "
                           f"{timeout:.0f} s (start `dask worker {printable(address, 200)}` on each board)") from None
    return client, None, 0


def _probe(cache_dir: str, probe: str) -> dict:
    """Run on each worker: its bookpot version and whether it sees the client's probe file."""
    return {"version": VERSION, "sees_cache": os.path.isfile(os.path.join(cache_dir, probe)),
            "host": socket.gethostname()}


def check_workers(client, cache_dir: Path) -> None:
    """Every worker runs this bookpot and sees ``cache_dir`` (a probe file written here); else ``BookpotError``."""
    folder = store.ensure_dir(cache_dir / "cluster")
    name = f"probe-{secrets.token_hex(6)}"
    store.atomic_write(folder / name, b"bookpot\n")
    try:
        try:
            found = client.run(_probe, str(cache_dir), os.path.join("cluster", name))
        except Exception as e:
            raise BookpotError(f"a Dask worker cannot run bookpot ({_first_line(e)}); install bookpot "
                               f"{VERSION} on every worker (`{INSTALL}`)") from None
    finally:
        try:
            (folder / name).unlink()
        except OSError:
            pass
    for address, d in sorted(found.items()):
        if d["version"] != VERSION:
            raise BookpotError(f"the worker {address} runs bookpot {d['version']}, this client {VERSION}: "
                               "install the same version everywhere")
        if not d["sees_cache"]:
            raise BookpotError(f"the worker {address} ({d['host']}) does not see the cache folder {cache_dir}: "
                               "give --cache-dir a folder every board mounts at the same path")


class ClusterBar:
    """One line on stderr (a terminal only): books done, tokens/s over the cluster, ETA.

    ``event(msg)`` takes a worker's progress message (from any thread);
    ``finished(key)`` marks a book done; the ETA weighs each book by its
    size in bytes.
    """

    def __init__(self, sizes: dict[str, int], *, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.sizes = sizes
        self.total = max(1, sum(sizes.values()))
        self.progress: dict[str, float] = {}
        self.rates: dict[str, tuple[float, float]] = {}  # key -> (tokens/s, when)
        self.done: set[str] = set()
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._last = 0.0
        self._shown = False

    def event(self, msg: dict) -> None:
        key = msg.get("key")
        if key not in self.sizes:
            return
        with self._lock:
            if "progress" in msg and key not in self.done:  # read to the end is not done: summaries follow
                self.progress[key] = min(0.95, max(0.0, float(msg["progress"])))
                self.rates[key] = (float(msg.get("tps") or 0.0), time.monotonic())
            self._draw()

    def finished(self, key: str) -> None:
        with self._lock:
            self.done.add(key)
            self.progress[key] = 1.0
            self.rates.pop(key, None)
            self._draw(force=True)

    def line(self) -> str:
        now = time.monotonic()
        frac = sum(self.sizes[k] * p for k, p in self.progress.items()) / self.total
        tps = sum(r for r, when in self.rates.values() if now - when < 10)
        reading = sum(1 for k in self.progress if k not in self.done)
        elapsed = now - self.t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0
        width = 24
        bar = "█" * int(frac * width) + "░" * (width - int(frac * width))
        m, s = divmod(int(eta), 60)
        h, m = divmod(m, 60)
        clock = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
        return (f"books {len(self.done)}/{len(self.sizes)} ▕{bar}▏ {frac:4.0%}  {reading} reading  "
                f"{tps:,.0f} tok/s  ETA {clock}")

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        self.stream.write("\r\x1b[2K" + self.line()[:200])
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        with self._lock:
            if self.enabled and self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()


def _share(total: int, n: int) -> int:
    return max(SHARE_STEP, total // n // SHARE_STEP * SHARE_STEP)


def jobs_options(args, kind: str, n_local: int) -> dict:
    """The options every task of this call gets (plain values: they travel to the workers)."""
    from ..engine.plan import default_cap, parse_size

    cap = args.ram_cap
    threads = args.threads
    if n_local:  # one machine: its cap and cores are shared by the N processes
        total = parse_size(args.ram_cap) if args.ram_cap else default_cap()
        cap = _share(total, n_local)
        if threads is None:
            threads = max(1, len(os.sched_getaffinity(0)) // n_local)
    elif cap is not None:
        parse_size(cap)  # a bad size fails here, once, not on every worker
    common = dict(model=args.model, prompt_style=args.prompt_style, mode=args.mode, ram_cap=cap,
                  pot_tokens=args.pot_tokens, alpha=args.alpha, nuc=not args.no_nuc, threads=threads,
                  password=args.password)
    if kind == "summarize":
        return dict(common, length=args.length, quiet=True)
    return dict(common, units=args.units, use_units=not args.no_units, unit_tokens=args.unit_tokens,
                disk_cap=args.disk_cap, catalyst=args.catalyst)


def run(args, kind: str, *, stats_line=None) -> int:
    """``bookpot ingest|summarize`` over Dask; the exit code (``summarize.exit_code``).

    ``stats_line(stats)``: how ``ingest`` prints a book's Stats (the CLI's line).
    """
    from .summarize import exit_code, expand_books, output_paths, write_summary

    if getattr(args, "no_cache", False):
        raise BookpotError("--no-cache cannot be used with --cluster or --workers: the workers hand the books "
                           "over through the cache folder")
    if getattr(args, "fresh", False):
        raise BookpotError("--fresh cannot be used with --cluster or --workers (a retried task would start its "
                           "book again); remove the cached summaries first (`bookpot cache clear`)")
    paths = args.books
    books = expand_books(paths)
    failures: list[str] = [err for _, err in books if err is not None]
    good: list[str] = []
    hashes: dict[str, str] = {}
    for b, err in books:
        if err is not None:
            continue
        try:
            hashes[b] = store.document_hash(b)
            good.append(b)
        except OSError as e:
            failures.append(f"{printable(b, 160)}: {e.strerror or e}")
    fmt = "json" if getattr(args, "json", False) else (getattr(args, "format", None) or "md")
    outs = dict(zip(good, output_paths(good, args.out, fmt))) if kind == "summarize" else {}
    cache_dir = store.cache_root(args.cache_dir).absolute()
    if not good:
        for msg in failures:
            print(f"bookpot: {msg}", file=sys.stderr)
        return 2
    client, cluster, n_local = connect(args)
    try:
        check_workers(client, cache_dir)
        opts = jobs_options(args, kind, n_local)
        keys = {}
        jobs = []
        for b in good:
            key = f"bookpot-{kind}-{printable(Path(b).name, 40)}-{store.digest((b + hashes[b]).encode())[:10]}"
            keys[b] = key
            jobs.append({"kind": kind, "path": os.path.abspath(b), "doc": hashes[b], "version": VERSION,
                         "cache_dir": str(cache_dir), "options": opts, "key": key})
        bar = ClusterBar({keys[b]: max(1, os.path.getsize(b)) for b in good}, quiet=args.quiet)
        client.subscribe_topic(TOPIC, lambda event: bar.event(event[1]))
        futures = {client.submit(run_book, job, key=job["key"], retries=1, pure=False): b
                   for job, b in zip(jobs, good)}
        results: dict[str, dict] = {}
        shown = 0
        first_stdout = [True]
        distributed = _import_distributed()
        try:
            for fut in distributed.as_completed(list(futures)):
                b = futures[fut]
                results[b] = _outcome(fut, b)
                fut.release()  # else the result stays on its worker, and Dask redoes the task if that worker dies
                bar.finished(keys[b])
                while shown < len(good) and good[shown] in results:  # in the order given
                    r = results[good[shown]]
                    bar.close()
                    if "error" in r:
                        failures.append(r["error"])
                    elif kind == "summarize":
                        _emit_summary(good[shown], r, outs, fmt, first_stdout, failures, write_summary)
                    else:
                        _emit_stats(good[shown], r, args, stats_line)
                    shown += 1
        finally:
            bar.close()
    except KeyboardInterrupt:
        print(f"\nbookpot: interrupted; the books the workers finish are kept in {cache_dir}: the same "
              "command goes on from there", file=sys.stderr)
        return 130
    finally:
        _close(client, cluster)
    for msg in failures:
        print(f"bookpot: {msg}", file=sys.stderr)
    if failures and len(books) > 1:
        print(f"bookpot: {len(books) - len(failures)} of {len(books)} books done, {len(failures)} failed",
              file=sys.stderr)
    return exit_code(len(books) - len(failures), len(failures))


def _close(client, cluster) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


def _result(fut):
    """``fut.result()`` (same value, same exceptions: ``Client.gather``), but a Ctrl-C while it waits
    leaves no traceback behind.

    ``Future.result`` waits in ``distributed.utils.sync``, which answers a
    KeyboardInterrupt by scheduling a ``cancel`` on the event loop; in
    distributed 2026.8 that ``cancel`` reads a variable the loop thread has not
    set yet when the loop is slow (a busy machine), and the loop thread logs a
    NameError traceback on stderr after "bookpot: interrupted". The test that
    interrupts the client as a book comes back hits that window under load.
    Here the wait is on a ``concurrent.futures.Future``, whose ``cancel()`` is
    safe from any thread at any time.
    """
    import asyncio

    client = fut.client
    waiting = asyncio.run_coroutine_threadsafe(client.gather(fut, asynchronous=True), client.loop.asyncio_loop)
    try:
        return waiting.result()
    except KeyboardInterrupt:
        waiting.cancel()
        raise


def _outcome(fut, book: str) -> dict:
    """The task's result dict, or ``{"error": reason}`` when Dask gave up on it."""
    try:
        return _result(fut)
    except Exception as e:
        name, shown = type(e).__name__, printable(book, 160)
        if name == "KilledWorker":
            return {"error": f"{shown}: the workers running it died again and again ({_first_line(e)}); "
                             "out of memory?"}
        if name in ("CancelledError", "FutureCancelledError"):
            return {"error": f"{shown}: the scheduler cancelled it (lost contact?)"}
        return {"error": f"{shown}: internal error on the worker: {name}: {_first_line(e)}"}


def _emit_summary(book, r, outs, fmt, first_stdout, failures, write_summary) -> None:
    from ..engine.summarize import BookSummary

    result = BookSummary.from_dict(r["summary"])
    result.cached = bool(r.get("cached"))
    try:
        write_summary(result, outs[book], fmt, first=first_stdout[0])
    except BookpotError as e:
        failures.append(f"{printable(book, 160)}: {e}")
        return
    if outs[book] is None:
        first_stdout[0] = False


def _emit_stats(book, r, args, stats_line) -> None:
    stats = r["stats"]
    if args.json:
        print(json.dumps(dict(stats, path=book)))
    else:
        from types import SimpleNamespace

        print(f"{printable(Path(book).name, 80)}: {stats_line(SimpleNamespace(**stats))}")
    sys.stdout.flush()


# ------------------------------------------------------------------ on a worker
_models = threading.local()  # per worker thread: {model path: engine.llm.Model}


def _model(path: str):
    from ..engine.llm import Model

    cache = getattr(_models, "by_path", None)
    if cache is None:
        cache = _models.by_path = {}
    if path not in cache:
        cache.clear()  # one model at a time per thread
        cache[path] = Model(path)
    return cache[path]


class _Events:
    """A task's progress, sent to the client as ``Worker.log_event`` messages (throttled)."""

    def __init__(self, worker, key: str) -> None:
        self.worker, self.key = worker, key
        self._last = 0.0

    def update(self, p) -> None:
        now = time.monotonic()
        if now - self._last < EVENT_S and p.progress < 1.0:
            return
        self._last = now
        self._send({"progress": float(p.progress), "tokens": int(p.tokens), "tps": float(p.tokens_per_s)})

    def message(self, text: str) -> None:
        self._send({"message": str(text)[:300]})

    def done(self) -> None:
        pass

    def _send(self, msg: dict) -> None:
        try:
            self.worker.log_event(TOPIC, dict(msg, key=self.key, worker=self.worker.address))
        except Exception:
            pass  # progress is decoration: never fail a book for it


def journal(cache_dir: str | Path, event: str, job: dict, **fields) -> None:
    """Append one line to ``<cache>/cluster/journal.jsonl`` (fsynced; never fails the book)."""
    line = {"t": store.now(), "event": event, "kind": job["kind"], "path": job["path"], "doc": job["doc"],
            "host": socket.gethostname(), "pid": os.getpid(), **fields}
    try:
        path = Path(cache_dir) / JOURNAL
        store.ensure_dir(path.parent)
        store.append_durable(path, (json.dumps(line, ensure_ascii=False) + "\n").encode())
    except (BookpotError, OSError):
        pass


def read_journal(cache_dir: str | Path) -> list[dict]:
    """The journal's events, oldest first (a torn last line skipped)."""
    try:
        raw = (Path(cache_dir) / JOURNAL).read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in raw.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _worker_defaults(opts: dict, nthreads: int) -> dict:
    """A worker's own cap and threads where the client gave none: its machine's, shared by its task slots."""
    from ..engine.plan import default_cap

    opts = dict(opts)
    n = max(1, nthreads)
    if opts.get("ram_cap") is None:
        opts["ram_cap"] = _share(default_cap(), n)
    if opts.get("threads") is None:
        opts["threads"] = max(1, len(os.sched_getaffinity(0)) // n)
    return opts


def run_book(job: dict) -> dict:
    """One book on a Dask worker: ``{"summary": dict, "cached": bool}`` or ``{"stats": dict}``,
    or ``{"error": "one line"}``. Exceptions other than bookpot's own propagate (Dask retries once)."""
    from distributed import get_worker

    from ..engine.errors import BookpotError as Error

    worker = get_worker()
    where = {"worker": worker.address}
    path = job["path"]
    if job["version"] != VERSION:
        return {"error": f"{printable(path, 160)}: the worker {worker.address} runs bookpot {VERSION}, "
                         f"the client {job['version']}"}
    try:
        if store.document_hash(path) != job["doc"]:
            raise Error(f"the file at this path on the worker {worker.address} is not the client's "
                        "(different bytes): the books must be at the same paths on every board")
    except OSError as e:
        return {"error": f"{printable(path, 160)}: the worker {worker.address} cannot read it "
                         f"({e.strerror or e}): the books must be at the same paths on every board"}
    except Error as e:
        return {"error": f"{printable(path, 160)}: {e}"}
    if not os.path.isdir(os.path.join(job["cache_dir"], "cluster")):  # the client made it: not the same folder
        return {"error": f"{printable(path, 160)}: the worker {worker.address} does not see the cache folder "
                         f"{job['cache_dir']}: give --cache-dir a folder every board mounts at the same path"}
    opts = _worker_defaults(job["options"], worker.state.nthreads)
    events = _Events(worker, job["key"])
    journal(job["cache_dir"], "start", job, **where)
    try:
        if job["kind"] == "summarize":
            out = _summarize(path, job["cache_dir"], opts, events)
            journal(job["cache_dir"], "done", job, cached=out["cached"], resumed=out["resumed"], **where)
        else:
            out = _ingest(path, job["cache_dir"], opts, events)
            stats = out["stats"]
            journal(job["cache_dir"], "done", job, cached=bool(stats.get("cached")),
                    resumed=int(stats.get("resumed_from_tokens") or 0), **where)
        return out
    except Error as e:
        msg = str(e)
        name = printable(Path(path).name)
        msg = msg if name in msg else f"{printable(path, 160)}: {msg}"
        journal(job["cache_dir"], "failed", job, reason=msg, **where)
        return {"error": msg}


def _summarize(path: str, cache_dir: str, opts: dict, events: _Events) -> dict:
    from .. import models
    from ..engine.summarycache import SummaryModel, SummaryOptions, summarize_book

    options = SummaryOptions(cache_dir=cache_dir, cache=True, **opts)
    model = _model(models.resolve(options.model or models.DEFAULT_MODEL))
    shared = SummaryModel(options, model=model)
    result = summarize_book(path, shared, label=Path(path).name, bar=events)
    return {"summary": result.to_dict(), "cached": bool(result.cached), "resumed": result.resumed_sections}


def _ingest(path: str, cache_dir: str, opts: dict, events: _Events) -> dict:
    from ..engine.api import open_book
    from ..engine.build import Options, resolve_model

    options = Options(cache_dir=cache_dir, cache=True, **opts)
    model_path, _, _ = resolve_model(options.model)
    with open_book(path, options, model=_model(model_path), on_note=events.message) as book:
        book.read(progress=events.update,
                  on_wait=lambda: events.message("another bookpot is reading this book; waiting for it"))
        return {"stats": book.stats.to_dict()}
