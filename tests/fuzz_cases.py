"""A seeded generator of bad inputs for the CLI: every file format it reads, and its arguments.

Shared by `tests/test_fuzz.py` (a few hundred cases in every test run) and `bench/bench_fuzz.py` (more, with
counts for bench/RESULTS.md). Each case mutates one file of a workspace (or the database, or nothing), runs
one command in-process, and is judged by `judge`: no traceback, an error is one line on stderr, and a failed
command changed no record.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

FILES = (
    "release.yaml",
    "gate-policy.yaml",
    "agents/toy/agent.yaml",
    "specs/toy.yaml",
    "specs/toy.jsonl",
    "change.patch",
    ".release/release.db",
)

COMMANDS = (
    ("run",),
    ("run", "--split", "gate", "-k", "1"),
    ("gate", "--candidate", "change.patch"),
    ("candidate", "--from", "change.patch"),
    ("promote", "--candidate", "change.patch"),
    ("log",),
    ("log", "--json"),
    ("show",),
    ("show", "v1", "--json"),
    ("diff", "v1", "v2"),
    ("critic",),
    ("diagnose",),
    ("rollback",),
    ("doctor", "--check"),
    ("init",),
    ("plugins",),
)

ODD_ARGS = ("--repeats", "0", "-k", "-3", "--split", "\x00", "--budget", "-1", "--version", "v0", "vv", "--to",
            "v99999999999999999999", "--run", "nan", "--agent", "../../etc", "--candidate", "", "--json", "--from",
            "/dev/zero", "--workspace", "/nonexistent", "--fresh", "\u202e", "--iterations", "99999999999")  # fmt: skip


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def mutations(rng: random.Random, original: bytes) -> tuple[str, bytes | None]:
    """One bad version of a file: its name and content (None: replace the file with a folder)."""
    text = original.decode("utf-8", "replace")
    choices = [
        ("random bytes", lambda: rng.randbytes(rng.randint(1, 400))),
        ("utf-16", lambda: text.encode("utf-16")),
        ("latin-1 bytes", lambda: text.encode("utf-8") + b"\xff\xfe\xe9"),
        ("truncated", lambda: original[: rng.randint(0, max(1, len(original) - 1))]),
        ("empty", lambda: b""),
        ("deep nesting", lambda: _deep(rng.choice((200, 2000, 20000))).encode()),
        ("deep json object", lambda: ('{"a":' * 5000 + "1" + "}" * 5000).encode()),
        ("NUL bytes", lambda: original.replace(b":", b":\x00", 3)),
        ("huge number", lambda: text.replace("3", "9" * 400, 2).encode()),
        ("wrong type", lambda: _retype(rng, text).encode()),
        ("alias bomb", lambda: _alias_bomb().encode()),
        ("a folder", lambda: None),
        ("a list", lambda: b"- 1\n- 2\n"),
        ("a scalar", lambda: b"just text\n"),
        ("tabs", lambda: text.replace("  ", "\t").encode()),
    ]
    name, make = rng.choice(choices)
    return name, make()


def _retype(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    keyed = [i for i, line in enumerate(lines) if ":" in line and not line.strip().startswith("#")]
    if not keyed:
        return text + "\nextra: [1, 2]\n"
    i = rng.choice(keyed)
    key = lines[i].split(":", 1)[0]
    lines[i] = f"{key}: {rng.choice(['[1, 2]', '{a: b}', 'null', '-5', '1e400', 'yes', '~', '!!binary aGk='])}"
    return "\n".join(lines) + "\n"


def _alias_bomb() -> str:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        prev, cur = chr(ord("a") + n - 1), chr(ord("a") + n)
        rows.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(rows) + "\nagents: *i\n"


@dataclass
class Case:
    seed: int
    file: str | None
    mutation: str
    argv: list[str]
    commit: bool


def cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        argv = list(rng.choice(COMMANDS))
        if rng.random() < 0.3:
            argv += rng.sample(ODD_ARGS, rng.randint(1, 3))
        file = rng.choice(FILES) if rng.random() < 0.85 else None
        out.append(Case(seed * 100000 + i, file, "", argv, rng.random() < 0.5))
    return out


def snapshot(root: Path) -> object:
    """The recorded state a failed command must leave alone: versions, head moves, runs, trials."""
    db = root / ".release" / "release.db"
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            return [
                conn.execute(q).fetchall()
                for q in (
                    "SELECT agent, number, status, git_sha FROM versions ORDER BY id",
                    "SELECT agent, from_version_id, to_version_id, kind FROM head_moves ORDER BY id",
                    "SELECT count(*) FROM trials",
                    "SELECT id, status FROM runs ORDER BY id",
                )
            ]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "unreadable"


def invoke(root: Path, argv: list[str]) -> tuple[int, str, str, BaseException | None]:
    """Run `release ARGV` in-process in `root`, as `main` does: exit code, stdout, stderr, escaped exception."""
    from release_pipeline.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(root)
    escaped: BaseException | None = None
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # a traceback a user would have seen
        escaped, code = exc, -1
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue(), escaped


def apply(case: Case, root: Path, rng: random.Random) -> None:
    """Write the case's mutation into the workspace (committed, when the case says so)."""
    if case.file is None:
        case.mutation = "none"
        return
    path = root / case.file
    original = path.read_bytes() if path.is_file() else b""
    if case.file.endswith(".db") and rng.random() < 0.35:
        case.mutation = "newer schema" if rng.random() < 0.5 else "foreign tables"
        conn = sqlite3.connect(path)
        if case.mutation == "newer schema":
            conn.execute("UPDATE alembic_version SET version_num = '9999'")
        else:
            conn.execute("DROP TABLE IF EXISTS head_moves")
        conn.commit()
        conn.close()
        return
    case.mutation, content = mutations(rng, original)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    for extra in ("-wal", "-shm"):
        if case.file.endswith(".db"):
            Path(str(path) + extra).unlink(missing_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    if case.commit and not case.file.startswith(".release"):
        _git(root, "add", "-A")
        _git(root, "-c", "user.name=f", "-c", "user.email=f@f", "commit", "-q", "--allow-empty", "-m", "fuzz")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@dataclass
class Verdict:
    ok: bool
    problem: str = ""


def is_error_line(line: str) -> bool:
    """`error: ...`, or under --json one JSON object `{"error": {"code", "message", "hint", ...}}`."""
    if line.startswith("error: "):
        return True
    try:
        error = json.loads(line)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and {"code", "message", "hint"} <= set(error)


def judge(code: int, stderr: str, escaped: BaseException | None, before: object, after: object) -> Verdict:
    if escaped is not None:
        return Verdict(False, f"escaped {type(escaped).__name__}: {escaped}"[:300])
    if "Traceback" in stderr:
        return Verdict(False, "traceback on stderr")
    if code not in (0, 1, 2):
        return Verdict(False, f"exit code {code}")
    if code == 2:
        errors = [line for line in stderr.splitlines() if is_error_line(line)]
        if len(errors) != 1 or stderr.strip().splitlines()[-1] != errors[0]:
            return Verdict(False, f"not one error line: {stderr[-300:]!r}")
        if before != after and before != "unreadable":
            return Verdict(False, "a failed command changed the record")
    return Verdict(True)


def to_json(case: Case, verdict: Verdict, code: int) -> str:
    return json.dumps({"seed": case.seed, "file": case.file, "mutation": case.mutation, "argv": case.argv,
                       "code": code, "problem": verdict.problem})  # fmt: skip
