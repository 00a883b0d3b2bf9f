"""Many runners, one version line: separate clones (as on separate machines) share one PostgreSQL store and one git
remote. Four runners gate four candidates at once, each trial runs exactly once however many runners need its
run, two promotions race and leave one consistent line, and a push the remote refuses moves nothing anywhere."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time

import pytest
import yaml
from conftest import RELEASE, build_workspace, commit_all, git

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(10)]


def agent(marker: str, body: str) -> str:
    """A trusted (in-process) agent that logs every execution of a trial: marker and input."""
    return (
        "import os, time\n\n"
        "def solve(x):\n"
        "    with open(os.environ['TRIAL_LOG'], 'a') as fh:\n"
        f"        fh.write('{marker} ' + str(x) + '\\n')\n"
        "    time.sleep(0.05)\n"
        f"    return {body}\n"
    )


@pytest.fixture
def line(postgres, tmp_path):
    """A seed workspace with v1 canonical, pushed to a bare remote; the PostgreSQL URL and the env runners use."""
    url = postgres.new_database(f"runners{os.getpid()}{time.monotonic_ns()}")
    env = {**os.environ, "RELEASE_DB_URL": url, "TRIAL_LOG": str(tmp_path / "executions.log")}
    seed = build_workspace(
        tmp_path / "seed",
        agent_files={"agent.py": agent("v1", "x * 2 if x % 2 else 0")},
        tasks=TASKS,
        trusted=True,
        init=False,
        run={"concurrency": 4},
    )
    config = yaml.safe_load((seed / "release.yaml").read_text())
    (seed / "release.yaml").write_text(yaml.safe_dump({**config, "remote": "origin"}))
    commit_all(seed, "push head moves to origin")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(seed, "remote", "add", "origin", str(remote))
    git(seed, "push", "-q", "origin", "HEAD:refs/heads/main")
    release(seed, env, "init")
    return remote, env


def release(cwd, env, *args: str, code: int | None = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([RELEASE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if code is not None:
        assert done.returncode == code, (args, done.returncode, done.stderr[-2000:])
    return done


def runner(tmp_path, remote, name: str, marker: str, body: str) -> tuple:
    """A runner's own clone of the remote with a candidate branched from canonical/toy; (clone, branch)."""
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/heads/canonical/*:refs/heads/canonical/*",
        "refs/release-pipeline/*:refs/release-pipeline/*")  # fmt: skip
    git(clone, "switch", "-q", "-c", f"cand-{name}", "canonical/toy")
    (clone / "agents" / "toy" / "agent.py").write_text(agent(marker, body))
    commit_all(clone, f"{name}: candidate")
    return clone, f"cand-{name}"


def store_of(env):
    from release_pipeline.store import Store

    return Store(env["RELEASE_DB_URL"])


@pytest.mark.slow
def test_four_runners_two_promotions_one_line(line, tmp_path):
    remote, env = line
    runners = [
        runner(tmp_path, remote, "r1", "a", "x * 2"),
        runner(tmp_path, remote, "r2", "b", "x * 2 if x != 99 else 0"),
        runner(tmp_path, remote, "r3", "c", "x + x"),
        runner(tmp_path, remote, "r4", "c", "x + x"),  # the same change as r3: the same candidate, the same runs
    ]
    gates = [
        subprocess.Popen(
            [RELEASE, "gate", "--candidate", branch, "--json"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone, branch in runners
    ]
    outcomes = [(g.wait(timeout=600), g.communicate()) for g in gates]
    assert all(code == 0 for code, _ in outcomes), [err[-1500:] for _, (_, err) in outcomes]
    decided = [json.loads(out)["candidate"] for _, (out, _) in outcomes]
    assert sorted(set(decided)) == [2, 3, 4] and decided[2] == decided[3]  # r4's change is r3's candidate

    # every trial of every version was executed exactly once, however many runners needed its run
    store = store_of(env)
    executed = collections.Counter(
        tuple(line.split()) for line in (tmp_path / "executions.log").read_text().split("\n") if line
    )
    markers = {1: "v1", decided[0]: "a", decided[1]: "b", decided[2]: "c"}
    for number, marker in markers.items():
        runs = store.runs_of(store.version_id("toy", number))
        stored = collections.Counter()
        for run in runs:
            trials = store.trials(run.id, with_trace=False)
            keys = collections.Counter((t.task_id, t.repeat, t.attempt) for t in trials)
            assert max(keys.values()) == 1
            stored.update(t.task_id for t in trials)
        assert len(runs) == 1, (number, runs)  # one gate run per version, shared by the runners that needed it
        assert {f"t{x}": n for (m, x), n in executed.items() if m == marker} == dict(stored), number

    # two promotions race from two clones: one line, the same in the store, every clone and the remote
    racers = [
        subprocess.Popen(
            [RELEASE, "promote", "--candidate", branch],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone, branch in runners[:2]
    ]
    codes = sorted(r.wait(timeout=600) for r in racers)
    assert codes[0] == 0 and codes[1] in (0, 2), (codes, [r.stderr.read()[-2000:] for r in racers])
    head = store.head("toy")
    assert head.number in (decided[0], decided[1])
    ever = {m.to_version for m in store.head_moves("toy")}
    assert git(remote, "rev-parse", "canonical/toy") == head.git_sha
    assert json.loads(git(remote, "show", "refs/release-pipeline/toy:line.json"))["canonical"] == head.number
    assert sorted(git(remote, "tag", "--list").split()) == sorted(f"toy/v{n}" for n in ever)
    for clone, _ in runners:
        git(clone, "fetch", "-q", "-f", "origin", "refs/heads/canonical/*:refs/heads/canonical/*",
            "refs/release-pipeline/*:refs/release-pipeline/*", "refs/tags/*:refs/tags/*")  # fmt: skip
        release(clone, env, "doctor", "--check")


@pytest.mark.slow
def test_a_push_the_remote_refuses_moves_nothing_anywhere(line, tmp_path):
    remote, env = line
    clone, branch = runner(tmp_path, remote, "r1", "a", "x * 2")
    release(clone, env, "gate", "--candidate", branch)
    before = (git(remote, "for-each-ref"), git(clone, "for-each-ref", "refs/heads/canonical", "refs/tags",
                                                 "refs/release-pipeline"))  # fmt: skip
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'refused by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = release(clone, env, "promote", "--candidate", branch, code=2)
    error = refused.stderr.strip().splitlines()[-1]  # after the note that names the candidate
    assert error.startswith("error: remote 'origin' refused the move") and "Traceback" not in refused.stderr
    assert store_of(env).head("toy").number == 1  # the database did not move
    after = (git(remote, "for-each-ref"), git(clone, "for-each-ref", "refs/heads/canonical", "refs/tags",
                                                "refs/release-pipeline"))  # fmt: skip
    assert after == before  # nor did the remote, nor this clone
    hook.unlink()
    release(clone, env, "promote", "--candidate", branch)  # and once the remote takes it, everything moves
    assert git(remote, "rev-parse", "canonical/toy") == store_of(env).head("toy").git_sha
