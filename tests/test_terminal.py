"""What people at a terminal see: progress on stderr only there, colour unless NO_COLOR, tables that fit, Markdown
rendered; and what a pipe gets: no bars, no escape codes, the Markdown itself."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading

from conftest import RELEASE, REPO, run_release

PATCHES = REPO / "specs" / "candidates"
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;[25])[;m]")  # a foreground colour, alone or combined


def on_terminal(cwd, *args: str, stream: str, columns: int = 100, **env: str) -> tuple[str, str]:
    """Runs `release` with one stream (`stdout` or `stderr`) on a pseudo-terminal `columns` wide and the other on
    a pipe; returns (what the terminal got, what the pipe got)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    environ.update(env, TERM="xterm-256color")
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    proc = subprocess.Popen([RELEASE, *args], cwd=cwd, env=environ, **streams)
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done with it
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    piped = proc.stderr if stream == "stdout" else proc.stdout
    assert piped is not None
    other = piped.read().decode()
    assert proc.wait(timeout=120) == 0, other
    reader.join(timeout=10)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace"), other


def test_progress_goes_to_a_terminal_on_stderr_and_never_into_a_pipe(workspace):
    screen, stdout = on_terminal(workspace, "run", "--split", "gate", stream="stderr")
    assert "calc v1 gate" in screen  # the bar's description, drawn on the terminal
    assert "\x1b[" not in stdout and "calc v1 gate" not in stdout
    piped = run_release(workspace, "run", "--split", "holdout")
    assert piped.returncode == 0 and "\x1b[" not in piped.stderr
    assert "calc v1 holdout" not in piped.stderr  # no bar in a pipe


def test_no_color_is_honoured_and_tables_fit_the_terminal(cli, workspace):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    cli("gate", "--candidate", str(PATCHES / "02-true-division.patch"), code=1)  # a rejected v3 with its reasons
    coloured, _ = on_terminal(workspace, "log", stream="stdout", columns=100)
    assert COLOUR.search(coloured)  # the control: at a terminal the statuses are coloured
    plain, _ = on_terminal(workspace, "log", stream="stdout", columns=60, NO_COLOR="1")
    assert not COLOUR.search(plain)
    lines = ESCAPE.sub("", plain).replace("\r", "").splitlines()
    assert "rejected" in plain and max(len(line) for line in lines) <= 60, lines


def test_markdown_reports_render_at_a_terminal_and_stay_markdown_in_a_pipe(cli, workspace):
    cli("gate", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    rendered, _ = on_terminal(workspace, "show", "v2", stream="stdout", columns=120)
    piped = run_release(workspace, "show", "v2").stdout
    assert "|---" in piped or "| ---" in piped  # a Markdown table, as written
    text = ESCAPE.sub("", rendered)
    assert "|---" not in text and "| ---" not in text and "mul-" in text  # drawn as a table, the rows still there
