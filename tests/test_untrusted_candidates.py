"""A candidate is untrusted: it cannot change its judge, fake a pass, see secrets, or end the run (issue 7)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml
from conftest import RELEASE, Cli, build_workspace, change_agent, commit_all, git, require_isolation, run_release
from test_run import by_task, trials

# t0..t5 on the gate split, t6..t7 on dev; the base answers every gate task right
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate" if i < 6 else "dev"} for i in range(8)]
HONEST = "def solve(x):\n    return x * 2\n"


def agent(code: str) -> dict[str, str]:
    return {"agent.py": code}


def gate(root, branch, code=None):
    return Cli(root).json("gate", "--candidate", branch, code=code)


# ----- 1. the candidate cannot steer the gate ---------------------------------------------------------


def test_a_candidate_that_patches_the_gate_statistics_is_still_rejected(tmp_path):
    import release_pipeline.gate.plan as plan_module
    import release_pipeline.gate.stats as stats_module

    root = build_workspace(tmp_path / "ws", agent_files=agent(HONEST), tasks=TASKS)
    hostile = (
        "import release_pipeline.gate.stats as g, release_pipeline.gate.plan as p\n"
        "from release_pipeline.gate.stats import TaskJudgement\n"
        "g.judge_task = p.judge_task = lambda base, cand, policy, levels: TaskJudgement('fix', True)\n"
        "def solve(x):\n    return -1\n"
    )
    before = (plan_module.judge_task, stats_module.judge_task)
    report = gate(root, change_agent(root, agent(hostile), "patch the judge"), code=1)
    assert report["decision"] == "rejected" and report["fixes"] == []
    assert sorted(report["regressions"]) == [f"t{i}" for i in range(6)]
    assert (plan_module.judge_task, stats_module.judge_task) == before  # the judge's own modules are untouched


def test_a_candidate_cannot_rewrite_the_policy_for_the_next_one(tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files=agent(HONEST), tasks=TASKS)
    policy = (root / "gate-policy.yaml").read_text()
    target = str(root / "gate-policy.yaml")
    hostile = (
        "import pathlib\n"
        f"for path in [{target!r}, str(pathlib.Path(__file__).parents[3] / 'gate-policy.yaml')]:\n"
        "    try:\n        pathlib.Path(path).write_text('version: 1\\nregression_budget: 99\\nmin_fixes: 0\\n')\n"
        "    except OSError:\n        pass\n"
        "def solve(x):\n    return x * 2\n"
    )
    gate(root, change_agent(root, agent(hostile), "rewrite the policy"), code=1)  # changes nothing: no fix
    assert (root / "gate-policy.yaml").read_text() == policy
    breaks_three = "def solve(x):\n    return 0 if x in (1, 2, 3) else x * 2\n"
    report = gate(root, change_agent(root, agent(breaks_three), "honest, three regressions"), code=1)
    assert sorted(report["regressions"]) == ["t1", "t2", "t3"]


def test_the_gate_reads_its_judge_from_the_canonical_commit(tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files=agent(HONEST), tasks=TASKS)
    # a lenient policy committed after v1 (or left in the working tree) does not judge: the canonical commit does
    (root / "gate-policy.yaml").write_text("version: 1\nregression_budget: 99\nmin_fixes: 0\n")
    commit_all(root, "a lenient policy")
    git(root, "checkout", "-q", "-b", "candidate", "canonical/toy")
    (root / "agents" / "toy" / "agent.py").write_text("def solve(x):\n    return 0 if x == 1 else x * 2\n")
    commit_all(root, "one regression")
    git(root, "checkout", "-q", "-")
    report = gate(root, "candidate", code=1)
    assert report["regressions"] == ["t1"] and report["decision"] == "rejected"
    assert any("gate-policy.yaml" in note and "canonical v1" in note for note in report["notes"])


VERIFIER = "def check(task, output):\n    return output == task.expected\n"


@pytest.mark.parametrize(
    "spelling",
    [
        {"policy": "./gate-policy.yaml"},
        {"suite": "./specs/../specs/toy.yaml"},
        {"verifier": "checks:check"},  # a python verifier module at the workspace root
        {"verifier": "agents.toy.checks:check"},  # one inside the agent's folder, whose *.py is editable
    ],
)
def test_touching_what_judges_is_refused_however_it_is_spelled(tmp_path, spelling):
    verifier = {"type": "python", "function": spelling["verifier"]} if "verifier" in spelling else None
    extra = {"checks.py": VERIFIER, "agents/toy/checks.py": VERIFIER}
    root = build_workspace(
        tmp_path / "ws", agent_files=agent(HONEST), tasks=TASKS, verifier=verifier, extra=extra, init=False
    )
    config = yaml.safe_load((root / "release.yaml").read_text())
    if "policy" in spelling:
        config["policy"] = spelling["policy"]
    if "suite" in spelling:
        config["agents"]["toy"]["suite"] = spelling["suite"]
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "spell the paths")
    Cli(root)("init")
    touched = {
        "policy": "gate-policy.yaml",
        "suite": "specs/toy.yaml",
        "verifier": "checks.py" if spelling.get("verifier") == "checks:check" else "agents/toy/checks.py",
    }[next(iter(spelling))]
    git(root, "checkout", "-q", "-b", "sneaky")
    (root / touched).write_text((root / touched).read_text() + "\n# lenient now\n")
    commit_all(root, "touch the judge")
    git(root, "checkout", "-q", "-")
    made = Cli(root).json("candidate", "--from", "sneaky", code=1)
    assert made["status"] == "rejected" and touched in " ".join(made["reasons"]), made
    assert Cli(root).json("gate", "--candidate", f"v{made['number']}", code=1)["decision"] == "rejected"


# ----- 1. a verifier proves its checks ran ----------------------------------------------------------------


@pytest.mark.parametrize(
    "trick",
    [
        "    import os; os._exit(0)\n",
        "    import sys; sys.exit(0)\n",
        "    print('PASSED 0'); import os; os._exit(0)\n",
        "    import os, signal; os.kill(os.getppid(), signal.SIGKILL)\n",
        "    import os; print(open(f'/proc/{os.getppid()}/cmdline').read()); os._exit(0)\n",
        "    import builtins; builtins.AssertionError = type('Never', (Exception,), {}); return True\n",
        "    import gc\n    for o in gc.get_objects():\n        if isinstance(o, str) and len(o) == 32:\n"
        "            print('PASSED ' + o)\n    import os; os._exit(0)\n",
    ],
)
def test_humaneval_solutions_cannot_fake_a_pass(trick):
    require_isolation()
    from pathlib import Path

    from release_pipeline.benchmarks.humaneval import humaneval, load

    task = load("1", Path("."))
    verdict = humaneval({}, Path("."))(task.tasks[0], trick)
    assert not verdict.passed, verdict


# ----- 4. the sandbox is on by default, and tight -----------------------------------------------------


PLANTED = {
    "PGPASSWORD": "zq-pg",
    "DATABASE_URL": "postgresql://u:zq-db@h/d",
    "RELEASE_DB_URL": "sqlite:////zq-release.db",
    "AWS_ACCESS_KEY_ID": "zq-aws",
    "GITHUB_PAT": "zq-pat",
}


def probe_code(root, socket_path):
    """An agent that reports what it could reach: each probe's outcome, True when it got through."""
    return f"""
import json, os, pathlib, socket
def probes():
    found = {{}}
    found["secrets"] = sorted(k for k in os.environ if k in {sorted(PLANTED)!r})
    for name, path in [("shadow", "/etc/shadow"), ("ssh", os.path.expanduser("~root/.ssh")),
                       ("database", {str(root / ".release" / "release.db")!r}),
                       ("suite", {str(root / "specs" / "toy.yaml")!r})]:
        try:
            pathlib.Path(path).read_bytes() if not os.path.isdir(path) else os.listdir(path)
            found[name] = True
        except OSError:
            found[name] = False
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect({str(socket_path)!r}); found["socket"] = True
    except OSError:
        found["socket"] = False
    try:
        with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "fill"), "wb") as fh:
            for _ in range(200):
                fh.write(b"0" * (1024 * 1024))
        found["disk"] = True
    except OSError as exc:
        found["disk"] = "No space" not in str(exc) and "File too large" not in str(exc)
    return found
"""


def test_an_agent_sees_no_secret_no_host_file_no_socket_and_has_a_quota(tmp_path, monkeypatch):
    require_isolation()
    for name, value in PLANTED.items():
        if name != "RELEASE_DB_URL":
            monkeypatch.setenv(name, value)
    sock_path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.listen(4)
    answer = "json.dumps(probes(), sort_keys=True)"
    try:
        for n, manifest in enumerate(({"sandbox": {}}, {"sandbox": {"memory_mb": 512}}, {})):  # empty, partial, none
            for adapter in ("callable", "subprocess"):
                work = tmp_path / f"{adapter}-{n}"
                spec = {**manifest, "sandbox": {**manifest.get("sandbox", {}), "disk_mb": 64}}
                probe = probe_code(work, sock_path)
                if adapter == "subprocess":
                    spec.update(adapter="subprocess", command=[sys.executable, "agent.py"])
                    files = {"agent.py": probe + f"print(json.dumps({{'output': {answer}}}))\n"}
                else:
                    files = {"agent.py": probe + f"def solve(x):\n    return {answer}\n"}
                # the harness's own database URL is a secret too: set, and pointing at the real store
                (work / ".release").mkdir(parents=True)
                monkeypatch.setenv("RELEASE_DB_URL", f"sqlite:///{work / '.release' / 'release.db'}")
                built = build_workspace(work, agent_files=files, tasks=TASKS[:1], manifest=spec, run={"repeats": 1})
                Cli(built)("run", "--split", "gate")
                row = by_task(trials(built))[("t0", 0)]
                output = _output(built)
                assert output == {"secrets": [], "shadow": False, "ssh": False, "database": False, "suite": False,
                                  "socket": False, "disk": False}, (adapter, manifest, output, row)  # fmt: skip
    finally:
        server.close()


def _output(root):
    import sqlite3

    conn = sqlite3.connect(root / ".release" / "release.db")
    (value,) = conn.execute("SELECT output FROM trials").fetchone()
    conn.close()
    return json.loads(json.loads(value))


# ----- 5. trials that never end, agents that exit, agents that print -----------------------------------


@pytest.mark.parametrize("trusted", [False, True])
def test_exits_fail_their_trial_and_never_end_the_run_even_in_process(tmp_path, trusted):
    code = "import sys\nasync def solve(x):\n    if x == 1: sys.exit(0)\n    return x * 2\n"
    root = build_workspace(tmp_path / "ws", agent_files=agent(code), tasks=TASKS, run={"repeats": 1}, trusted=trusted)
    result = run_release(root, "run", "--split", "gate", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["counts"] == {"pass": 5, "fail": 1, "error": 0}
    assert by_task(trials(root))[("t1", 0)][4:6] == ("fail", "agent_crash")


def test_exits_and_crashes_fail_their_trial_and_never_end_the_run(tmp_path):
    code = (
        "import os, sys\n"
        "def solve(x):\n"
        "    if x == 1: sys.exit(0)\n"
        "    if x == 2: os._exit(0)\n"
        "    if x == 3: os.kill(os.getpid(), 9)\n"
        "    if x == 4: raise SystemExit(3)\n"
        "    return x * 2\n"
    )
    root = build_workspace(tmp_path / "ws", agent_files=agent(code), tasks=TASKS, run={"repeats": 1})
    result = run_release(root, "run", "--split", "gate", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {"pass": 2, "fail": 4, "error": 0}
    rows = by_task(trials(root))
    assert {rows[(f"t{i}", 0)][5] for i in (1, 2, 3, 4)} == {"agent_crash"}
    assert "sys.exit(0)" in rows[("t1", 0)][6] and "exit status 0" in rows[("t2", 0)][6]
    assert "SIGKILL" in rows[("t3", 0)][6]


@pytest.mark.parametrize("kind", ["sync sleep", "async busy loop", "sync busy loop"])
def test_a_trial_that_never_ends_is_cut_and_the_process_exits(tmp_path, kind):
    body = {
        "sync sleep": "import time\ndef solve(x):\n    time.sleep(3600) if x == 1 else None\n    return x * 2\n",
        "async busy loop": "async def solve(x):\n    while x == 1:\n        pass\n    return x * 2\n",
        "sync busy loop": "def solve(x):\n    while x == 1:\n        pass\n    return x * 2\n",
    }[kind]
    root = build_workspace(tmp_path / "ws", agent_files=agent(body), tasks=TASKS, run={"repeats": 1, "timeout_s": 2})
    start = time.monotonic()
    result = run_release(root, "run", "--split", "gate", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 30
    assert json.loads(result.stdout)["counts"] == {"pass": 5, "fail": 1, "error": 0}
    assert by_task(trials(root))[("t1", 0)][4:6] == ("fail", "timeout")
    runs = Cli(root).json("show", "--run", "1")
    assert runs["status"] == "complete"


@pytest.mark.parametrize("trusted", [False, True])
def test_agent_prints_never_reach_json_output(tmp_path, trusted):
    code = (
        "import os, sys\n"
        "def solve(x):\n"
        "    print('chatty', x)\n    sys.stdout.write('{not json')\n    os.write(1, b'raw bytes on fd 1\\n')\n"
        "    return x * 2\n"
    )
    root = build_workspace(tmp_path / "ws", agent_files=agent(code), tasks=TASKS, run={"repeats": 1}, trusted=trusted)
    result = run_release(root, "run", "--split", "gate", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["pass"] == 6


@pytest.mark.parametrize("after_s", [0.0, 2.0])
def test_an_interrupted_run_is_never_left_running(tmp_path, after_s):
    """SIGTERM as the run starts (its sandboxes starting) or once its trials are under way: the command ends at
    once, says so, leaves no agent process behind and the run marked interrupted."""
    code = "import asyncio\nasync def solve(x):\n    await asyncio.sleep(30)\n    return x * 2\n"
    root = build_workspace(tmp_path / "ws", agent_files=agent(code), tasks=TASKS, run={"repeats": 1})
    proc = subprocess.Popen([RELEASE, "run", "--split", "gate"], cwd=root, stderr=subprocess.PIPE, text=True)
    running_run(root)  # on a busy machine the run may take a while to start: wait for it, not for a fixed time
    time.sleep(after_s)
    proc.terminate()  # SIGTERM, as a CI runner or a container stop sends it
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "interrupted: finished trials are recorded; run the same command again to resume"
    ], err
    assert not [pid for pid in _pids() if str(root).encode() in _cmdline_and_cwd(pid) and not _ours(pid)]
    assert Cli(root).json("show", "--run", "1")["status"] == "interrupted"
    killed = subprocess.Popen([RELEASE, "run", "--split", "gate"], cwd=root, stderr=subprocess.PIPE)
    time.sleep(2)
    os.kill(killed.pid, 9)  # no chance to say anything: readers still see it is not running
    killed.wait()
    assert Cli(root).json("show", "--run", "1")["status"] == "interrupted"


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _ours(pid: int) -> bool:
    """Whether this test process started `pid` (GitPython keeps `git cat-file` helpers running in the root,
    ended when its repository object is collected, whenever that is)."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()
    except OSError:
        return False
    return int(stat.rsplit(b")", 1)[1].split()[1]) == os.getpid()


def _cmdline_and_cwd(pid: int) -> bytes:
    """What names a process's folders: its command line and its working directory."""
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read() + os.readlink(f"/proc/{pid}/cwd").encode()
    except OSError:
        return b""


def running_run(root, timeout: float = 120) -> None:
    """Until the store shows run #1 executing (created and leased by a live process)."""
    from release_pipeline.workspace import Workspace

    store = Workspace(root).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if store.run(1).status == "running":
                return
        except Exception:  # not created yet
            pass
        time.sleep(0.1)
    pytest.fail(f"run #1 did not start within {timeout:g}s")
