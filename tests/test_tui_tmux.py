"""End to end in a real terminal: tmux runs ``python -m bookpot.app.tui BOOK``.

Pilot tests drive the app from inside; this one goes through everything a
user's terminal does -- the real driver, key parsing, rendering at 100x30 --
with the real default model. Keys go in with ``tmux send-keys``, the screen
comes back with ``tmux capture-pane``, polled with a timeout. A private tmux
server (``-L``) keeps it away from anyone else's tmux sessions.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from passkey import QUESTION, passkey_text

KEY = 61842
TIMEOUT = 240.0

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, name: str) -> None:
        self.server = name
        self.session = name

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True,
                              check=check, timeout=30)

    def start(self, command: str, width: int = 100, height: int = 30) -> None:
        self._run("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command)
        # keep the pane after the program exits, to read its last words
        self._run("set-option", "-t", self.session, "remain-on-exit", "on", check=False)

    def capture(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.session).stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        self._run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def pane_dead(self) -> bool:
        out = self._run("display-message", "-p", "-t", self.session, "#{pane_dead}", check=False).stdout
        return out.strip() == "1"

    def wait_for(self, cond, what: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if cond(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")

    def kill(self) -> None:
        self._run("kill-server", check=False)


def chat_pane(screen: str) -> str:
    """The right-hand (chat) pane's columns, found by its border title."""
    lines = screen.splitlines()
    col = next((max(ln.find("╭─ chat"), ln.find("┏━ chat")) for ln in lines
                if "╭─ chat" in ln or "┏━ chat" in ln), -1)  # ┏━: the pane with the focus
    assert col >= 0, screen
    return "\n".join(ln[col:] for ln in lines)


def test_ask_in_a_real_terminal(tmp_path):
    book = tmp_path / "passkey.txt"
    book.write_text(passkey_text(600, 0.5, KEY))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text("threads = 1\n")
    command = " ".join([
        # tmux hands a client without a terminal COLUMNS=80/LINES=24, which
        # would override the pane's real size: drop them.
        "env", "-u", "COLUMNS", "-u", "LINES", f"BOOKPOT_CONFIG_DIR={shlex.quote(str(config_dir))}",
        f"BOOKPOT_DATA_DIR={shlex.quote(str(tmp_path / 'data'))}", "TERM=xterm-256color",
        shlex.quote(sys.executable), "-m", "bookpot.app.tui", shlex.quote(str(book)),
    ])
    tmux = Tmux(f"bookpot-test-{os.getpid()}")
    tmux.start(command)
    try:
        screen = tmux.wait_for(lambda s: "ready ·" in s, "ingestion to finish")
        assert "passkey.txt" in screen and "chat · smollm2-135m" in screen
        assert "f2 Settings" in screen.splitlines()[29]  # the whole footer is on row 30: 100x30 it is
        tmux.send(QUESTION, literal=True)
        tmux.send("Enter")
        # Streaming follows the end of the answer; a finished long answer is
        # shown from its start. The key opens the answer either way.
        screen = tmux.wait_for(lambda s: str(KEY) in chat_pane(s), "the answer in the chat pane")
        # The status says "ready" again once the answer has finished streaming.
        screen = tmux.wait_for(lambda s: "Q: What is the pass key?" in chat_pane(s)
                               and str(KEY) in chat_pane(s) and "ready ·" in s,
                               "the finished answer, from its start")
        tmux.send("C-q")
        tmux.wait_for(lambda s: tmux.pane_dead(), "the app to quit", timeout=30)
        assert "Traceback" not in tmux.capture()
    finally:
        tmux.kill()


def _command(tmp_path, book) -> str:
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "config.toml").write_text("threads = 1\n")
    return " ".join([
        "env", "-u", "COLUMNS", "-u", "LINES", f"BOOKPOT_CONFIG_DIR={shlex.quote(str(config_dir))}",
        f"BOOKPOT_DATA_DIR={shlex.quote(str(tmp_path / 'data'))}", "TERM=xterm-256color",
        shlex.quote(sys.executable), "-m", "bookpot.app.tui", shlex.quote(str(book)),
    ])


def test_80x24_ask_while_reading_then_reopen_at_the_same_place(tmp_path):
    """Issue #22: at 80x24, a question asked while the book is read: the status line says
    what happens (reading paused; looking up passages / answering) and the footer keeps
    Library, Help and Settings; after quitting, the book reopens at the same place."""
    book = tmp_path / "long.txt"  # ~6,000 tokens in ~370 lines: a minute or so of reading here
    book.write_text(textwrap.fill(passkey_text(6000, 0.5, KEY), 72) + "\n")
    command = _command(tmp_path, book)
    tmux = Tmux(f"bookpot-test80-{os.getpid()}")
    tmux.start(command, width=80, height=24)
    try:
        screen = tmux.wait_for(lambda s: "reading " in s and " tok" in s, "reading to start")
        footer = screen.splitlines()[23]
        assert all(k in footer for k in ("^l Library", "f1 Help", "f2 Settings")), footer
        tmux.send("What is the pass key?", literal=True)
        tmux.send("Enter")
        seen: list[str] = []

        def status_rows(s: str) -> str:
            return "\n".join(s.splitlines()[19:23])  # the bottom rows above the footer

        def answered(s: str) -> bool:
            seen.append(s)
            rows = status_rows(s)
            return ("Q: What is the pass key?" in chat_pane(s) and ("reading " in rows or "ready ·" in rows)
                    and "answering" not in rows and "looking up" not in rows and "question asked" not in rows)

        tmux.wait_for(answered, "the answer, then reading again")
        status = [status_rows(s) for s in seen]
        # The phases can be shorter than one capture: at least one of them was
        # shown, each in words saying what happens to the reading.
        phases = ("question asked: reading pauses", "reading paused at", "looking up passages", "answering ·")
        assert any(p in ln for ln in status for p in phases), status
        tmux.send("C-g")  # and at once what to go to, as a quick typist does
        tmux.send("300", literal=True)
        tmux.send("Enter")
        def at_300(s: str):
            m = re.search(r"lines (\d+)–(\d+)", s.splitlines()[1])
            return m if m and int(m.group(1)) <= 300 <= int(m.group(2)) else None

        screen = tmux.wait_for(at_300, "the pane title at line 300", timeout=30)
        m = at_300(screen)
        where = f"{m.group(1)}–{m.group(2)}"
        tmux.send("C-q")
        tmux.wait_for(lambda s: tmux.pane_dead(), "the app to quit", timeout=60)
        assert "Traceback" not in tmux.capture()
        tmux.kill()

        tmux = Tmux(f"bookpot-test80b-{os.getpid()}")
        tmux.start(command, width=80, height=24)
        screen = tmux.wait_for(lambda s: f"lines {where}" in s.splitlines()[1], "the same place again", timeout=60)
        tmux.send("C-q")
        tmux.wait_for(lambda s: tmux.pane_dead(), "the app to quit", timeout=60)
        assert "Traceback" not in tmux.capture()
    finally:
        tmux.kill()
