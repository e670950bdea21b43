"""``bookpot ingest|summarize --cluster ADDR`` on a real Dask cluster (loopback only).

A real ``dask scheduler`` and two ``dask worker`` processes (each with its
nanny, one task at a time) are started on 127.0.0.1 from the venv's bin,
once for the module. Books are small Markdown books (tests/topicbook.py)
so the model tests take about a minute: three books summarized through the
cluster must equal the same books summarized by one local process (greedy,
same --ram-cap and --threads); then one worker is SIGKILLed while it
summarizes a fourth, longer book, after its first chapter was
checkpointed: the book must still come back, summarized exactly once
(one ``done`` in the workers' journal), resumed from that checkpoint, and
equal to the local summary.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BOOKPOT, run_cli
from topicbook import topic_chapters

BIN = Path(sys.executable).parent
ENGINE = ("--ram-cap", "512M", "--threads", "1")  # the same on the workers and in the local run


def _book(path: Path, chapters: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"# {t}\n\n{x}\n\n" for t, x in chapters))
    return path


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    d = tmp_path_factory.mktemp("shelf")
    small = [_book(d / f"book{i}.md", topic_chapters(250, seed=i)[i:i + 2]) for i in range(3)]
    long = _book(d / "long.md", topic_chapters(500, seed=7) + topic_chapters(500, seed=8)[:2])
    return {"small": small, "long": long, "dir": d}


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``{"address": "tcp://127.0.0.1:PORT"}`` of a scheduler with two workers, stopped at the end."""
    from distributed import Client

    d = tmp_path_factory.mktemp("dask")
    logs = open(d / "dask.log", "w")
    procs = []
    try:
        procs.append(subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", d / "scheduler.json"],
                                      stdout=logs, stderr=subprocess.STDOUT, cwd=d))
        deadline = time.monotonic() + 60
        while not (d / "scheduler.json").exists():
            assert time.monotonic() < deadline, (d / "dask.log").read_text()
            assert procs[0].poll() is None, (d / "dask.log").read_text()
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written whole before the scheduler listens; be sure it is complete
        address = json.loads((d / "scheduler.json").read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1", "--host",
                                           "127.0.0.1", "--no-dashboard"],
                                          stdout=logs, stderr=subprocess.STDOUT, cwd=d))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield {"address": address, "log": d / "dask.log"}
    finally:
        _stop(procs[1:])
        _stop(procs[:1])
        logs.close()


def _popen_interruptible(cmd: list[str]) -> subprocess.Popen:
    """``Popen(cmd)`` (pipes, text) whose child starts with SIGINT at its default, as under a terminal.

    A child inherits an *ignored* SIGINT, and pytest has one when it runs as a
    background job of a non-interactive shell (``pytest ... &`` in a script:
    POSIX shells ignore SIGINT and SIGQUIT there). Python then installs no
    KeyboardInterrupt handler, the client never sees the test's SIGINT and
    rightly runs to the end with exit 0. A handler set here (not SIG_IGN) is
    reset to SIG_DFL by exec, so the child raises KeyboardInterrupt as at a
    terminal. ``signal.signal`` only works in the main thread, where pytest
    runs the tests.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, before)


def _journal(cache: Path) -> list[dict]:
    from bookpot.app.cluster import read_journal

    return read_journal(cache)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _same(a: dict, b: dict) -> None:
    assert a["overview"] == b["overview"]
    assert [p["summary"] for p in a["parts"]] == [p["summary"] for p in b["parts"]]
    assert [s["summary"] for s in a["sections"]] == [s["summary"] for s in b["sections"]]
    assert a["settings"] == b["settings"]


@pytest.mark.model
def test_three_books_through_the_cluster_equal_the_local_summaries(books, cluster, tmp_path, model_path):
    """Interrupted once a book is done, then run again: the same summaries as one local process, each
    book summarized once (what the cluster finished meanwhile comes from the shared cache)."""
    shared = tmp_path / "shared-cache"
    cmd = [*BOOKPOT, "summarize", *map(str, books["small"]), "--cluster", cluster["address"], "--cache-dir",
           str(shared), "--json", "-q", *ENGINE]
    first = _popen_interruptible(cmd)
    try:
        deadline = time.monotonic() + 300
        while not [e for e in _journal(shared) if e["event"] == "done"]:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # The third book starts only when a worker frees up, after the first "done": it is still running here.
    assert first.returncode == 130, (err, [(e["event"], Path(e["path"]).name) for e in _journal(shared)])
    assert err.strip().splitlines()[-1].startswith("bookpot: interrupted; the books the workers finish are kept")
    assert "Traceback" not in err

    p = run_cli(*cmd[len(BOOKPOT):])
    assert p.returncode == 0, p.stderr
    remote = _json_lines(p.stdout)
    local = _json_lines(run_cli("summarize", *books["small"], "--cache-dir", tmp_path / "local", "--json",
                                "-q", *ENGINE).stdout)
    assert [r["path"] for r in remote] == [str(b) for b in books["small"]]  # in the order given
    for r, lo in zip(remote, local):
        assert r["stats"]["doc_tokens"] > 300
        _same(r, lo)
    events = _journal(shared)
    fresh = [e["path"] for e in events if e["event"] == "done" and not e["cached"]]
    assert sorted(fresh) == sorted(str(b) for b in books["small"])  # each book summarized once
    assert any(e["event"] == "done" and e["cached"] for e in events)  # the first run's book, from the cache
    assert len({e["worker"] for e in events if e["event"] == "start"}) == 2  # both workers took books


@pytest.mark.model
def test_a_worker_killed_mid_book_resumes_elsewhere_and_the_book_is_summarized_once(books, cluster, tmp_path,
                                                                                     model_path):
    shared = tmp_path / "shared-cache"
    book = books["long"]
    run = subprocess.Popen([*BOOKPOT, "summarize", str(book), "--cluster", cluster["address"], "--cache-dir",
                            str(shared), "--json", "-q", *ENGINE],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        victim = None
        while victim is None:  # the worker that took the book, once a chapter of it is checkpointed
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            starts = [e for e in _journal(shared) if e["event"] == "start"]
            if starts and list((shared / "summaries").glob("*.partial.json")):
                victim = starts[0]["pid"]
            time.sleep(0.05)
        assert not [e for e in _journal(shared) if e["event"] == "done"], "the book ended before the kill"
        os.kill(victim, signal.SIGKILL)
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    [result] = _json_lines(out)
    events = _journal(shared)
    starts = [e for e in events if e["event"] == "start"]
    done = [e for e in events if e["event"] == "done"]
    assert len(starts) == 2 and starts[1]["pid"] != victim  # retried by another worker process
    assert len(done) == 1 and not done[0]["cached"]  # summarized once
    assert done[0]["resumed"] >= 1 and result["resumed_sections"] >= 1  # from the killed worker's checkpoint
    local = run_cli("summarize", book, "--cache-dir", tmp_path / "local", "--json", "-q", *ENGINE)
    assert local.returncode == 0, local.stderr
    _same(result, json.loads(local.stdout))


@pytest.mark.model
def test_ingest_through_the_cluster_leaves_the_state_the_client_reopens(books, cluster, tmp_path, model_path):
    shared = tmp_path / "shared-cache"
    book = books["small"][0]
    p = run_cli("ingest", book, "--cluster", cluster["address"], "--cache-dir", shared, "--json", "-q", *ENGINE)
    assert p.returncode == 0, p.stderr
    [remote] = _json_lines(p.stdout)
    assert remote["doc_tokens"] > 300 and not remote["cached"]
    here = run_cli("ingest", book, "--cache-dir", shared, "--json", "-q", *ENGINE)
    assert here.returncode == 0, here.stderr
    local = json.loads(here.stdout)
    assert local["cached"] and local["doc_tokens"] == remote["doc_tokens"]


@pytest.mark.model
def test_a_bad_book_is_reported_at_the_end_and_the_others_go_on(books, cluster, tmp_path, model_path):
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n")
    shared = tmp_path / "shared-cache"
    p = run_cli("summarize", empty, books["small"][1], "--cluster", cluster["address"], "--cache-dir", shared,
                "--json", "-q", *ENGINE)
    assert p.returncode == 1  # the other book done (2: none)
    [result] = _json_lines(p.stdout)
    assert result["path"] == str(books["small"][1])
    lines = p.stderr.strip().splitlines()
    assert any("empty.md" in line and "no text" in line for line in lines), p.stderr
    assert lines[-1] == "bookpot: 1 of 2 books done, 1 failed"
    assert "Traceback" not in p.stderr


def test_an_unreachable_scheduler_is_one_line(books, tmp_path):
    for address in ("tcp://127.0.0.1:9", "nonsense://x", "tls://127.0.0.1:9"):
        p = run_cli("summarize", books["small"][0], "--cluster", address, "--cache-dir", tmp_path,
                    env={"BOOKPOT_CLUSTER_TIMEOUT": "3"}, timeout=120)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith(f"bookpot: cannot reach the Dask scheduler at {address}: "), p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_options_the_cluster_cannot_honour_are_one_line(books, tmp_path):
    for extra, says in ((["--workers", "2", "--no-cache"], "--no-cache cannot be used"),
                        (["--workers", "2", "--fresh"], "--fresh cannot be used"),
                        (["--workers", "0"], "--workers must be at least 1"),
                        (["--workers", "2", "--cluster", "tcp://127.0.0.1:9"], "not allowed with argument")):
        p = run_cli("summarize", books["small"][0], "--cache-dir", tmp_path, *extra, timeout=120)
        assert p.returncode == 2 and says in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1


def test_missing_distributed_says_how_to_install_it(monkeypatch):
    from bookpot.app import cluster
    from bookpot.engine.errors import BookpotError

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(BookpotError, match=r"pip install 'bookpot\[cluster\]'"):
        cluster.connect(type("Args", (), {"workers": 2, "cluster": None})())


def test_bar_weighs_books_by_size_and_sums_the_workers_rates():
    from bookpot.app.cluster import ClusterBar

    bar = ClusterBar({"a": 100, "b": 300})
    bar.event({"key": "a", "progress": 0.5, "tps": 120.0})
    bar.event({"key": "b", "progress": 0.5, "tps": 80.0})
    bar.event({"key": "elsewhere", "progress": 1.0, "tps": 999.0})  # another client's book
    assert "books 0/2" in bar.line() and " 50%" in bar.line() and "200 tok/s" in bar.line()
    bar.finished("b")
    assert "books 1/2" in bar.line() and " 88%" in bar.line() and "120 tok/s" in bar.line()


def test_ctrl_c_while_a_result_comes_back_leaves_no_traceback():
    """The client's wait for a book's result, interrupted while Dask's event loop is slow (a busy
    machine): KeyboardInterrupt, and nothing logged from the loop thread (distributed's own
    ``Future.result`` left a NameError traceback on stderr there)."""
    import logging
    import threading

    import distributed

    from bookpot.app.cluster import _result

    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = logged.append
    loggers = [logging.getLogger(n) for n in ("tornado.application", "asyncio", "distributed")]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                            scheduler_kwargs={"dashboard": False}) as client:  # its HTTP server: any free port
        fut = client.submit(dict, book="done", pure=False)
        distributed.wait(fut)
        main = threading.get_ident()

        def busy() -> None:  # on the loop thread, queued before the wait's own callbacks
            time.sleep(0.2)
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C reaches the main thread while the loop is busy
            time.sleep(0.3)

        for lg in loggers:
            lg.addHandler(handler)
        before = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest may run with it ignored (`&`)
        try:
            with pytest.raises(KeyboardInterrupt):
                client.loop.add_callback(busy)
                _result(fut)
            client.sync(client.scheduler.identity)  # the loop ran what the interrupt left queued
        finally:
            signal.signal(signal.SIGINT, before)
            for lg in loggers:
                lg.removeHandler(handler)
        assert _result(fut) == {"book": "done"}  # the client still works
    assert [r.getMessage() for r in logged] == []
