"""A SIGKILL at any step of promote, rollback or init leaves a state `release doctor` repairs."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import Cli, build_workspace, change_agent, git, run_release

from release_pipeline.faults import CRASH_ENV, FAIL_ENV, InjectedFault

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": s} for i, s in enumerate(["dev", "gate", "gate"])]
MOVE_POINTS = ["head:swapped", "git:ref-moved", "git:tagged", "head:before-commit", "head:committed"]
GIT_AHEAD = {"git:ref-moved", "git:tagged", "head:before-commit"}  # git moved, the database did not


def agent(body: str) -> dict[str, str]:
    return {"agent.py": f"def solve(x):\n    {body}\n"}


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """v1 canonical, v2 gated and accepted (it fixes t1 and t2)."""
    root = build_workspace(
        tmp_path_factory.mktemp("template") / "ws",
        agent_files=agent("return x * 2 if x == 0 else 0"),
        tasks=TASKS,
        trusted=True,
    )
    branch = change_agent(root, agent("return x * 2"), "fix")
    Cli(root)("gate", "--candidate", branch)
    return root


def copy(template, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    shutil.rmtree(root / ".release" / "judges", ignore_errors=True)  # exported commits are a cache
    return root


def killed(root, *args):
    result = run_release(root, *args, env={**os.environ, CRASH_ENV: killed.point})
    assert result.returncode == -9, (args, result.returncode, result.stderr[-500:])


def state(root):
    log = Cli(root).json("log")
    canonical = [v["number"] for v in log if v["status"] == "canonical"]
    tags = sorted(git(root, "tag", "--list").split())
    return canonical, git(root, "rev-parse", "-q", "--verify", "canonical/toy") if canonical else None, tags


def sha_of(root, number):
    return next(v["git_sha"] for v in Cli(root).json("log") if v["number"] == number)


def doctor_repairs(root, *, git_ahead: bool):
    cli = Cli(root)
    found = cli.json("doctor", "--check", code=1 if git_ahead else 0)[0]["disagreements"]
    assert bool(found) == git_ahead
    assert bool(cli.json("doctor")[0]["repaired"]) == git_ahead
    cli("doctor", "--check")
    if git_ahead:  # the repair is on record as a head move
        moves = cli.json("show")["head_moves"]
        assert moves[-1]["kind"] == "repair" and "doctor" in moves[-1]["reason"]
    canonical = [v["number"] for v in cli.json("log") if v["status"] == "canonical"]
    if git(root, "for-each-ref", "refs/release-pipeline/toy"):  # the line git carries agrees, repair and all
        line = json.loads(git(root, "show", "refs/release-pipeline/toy:line.json"))
        assert [line["canonical"]] == canonical
        assert line["moves"][-1]["kind"] == ("repair" if git_ahead else line["moves"][-1]["kind"])


@pytest.mark.parametrize("point", MOVE_POINTS)
def test_killed_promote(gated, tmp_path, point):
    root = copy(gated, tmp_path)
    killed.point = point
    killed(root, "promote", "--candidate", "v2")
    if point in GIT_AHEAD:  # every later move refuses, and says how to repair
        assert "release doctor" in Cli(root)("promote", "--candidate", "v2", code=2).stderr
    doctor_repairs(root, git_ahead=point in GIT_AHEAD)
    canonical, ref, tags = state(root)
    if point == "head:committed":
        assert canonical == [2] and ref == sha_of(root, 2) and tags == ["toy/v1", "toy/v2"]
        return
    assert canonical == [1] and ref == sha_of(root, 1) and tags == ["toy/v1"]
    Cli(root)("promote", "--candidate", "v2")
    assert state(root) == ([2], sha_of(root, 2), ["toy/v1", "toy/v2"])


@pytest.mark.parametrize("point", [p for p in MOVE_POINTS if p != "head:committed"])
def test_a_failed_promote_leaves_database_and_git_where_they_were(gated, tmp_path, point, monkeypatch):
    """A failure (not a kill) on either side of the git move: the database rolls back and git is put back."""
    root = copy(gated, tmp_path)
    before = state(root)
    monkeypatch.setenv(FAIL_ENV, point)
    with pytest.raises(InjectedFault):
        Cli(root)("promote", "--candidate", "v2")
    monkeypatch.delenv(FAIL_ENV)
    assert state(root) == before == ([1], sha_of(root, 1), ["toy/v1"])
    assert not Cli(root).json("doctor", "--check")[0]["disagreements"]  # nothing for the doctor to do
    Cli(root)("promote", "--candidate", "v2")
    assert state(root) == ([2], sha_of(root, 2), ["toy/v1", "toy/v2"])


@pytest.mark.parametrize("point", [p for p in MOVE_POINTS if p != "git:tagged"])  # v1's tag exists already
def test_killed_rollback(gated, tmp_path, point):
    root = copy(gated, tmp_path)
    Cli(root)("promote", "--candidate", "v2")
    killed.point = point
    killed(root, "rollback", "--reason", "bad release")
    doctor_repairs(root, git_ahead=point in GIT_AHEAD)
    canonical, ref, tags = state(root)
    assert tags == ["toy/v1", "toy/v2"]  # a rollback makes no tag: v1's exists
    if point == "head:committed":
        assert canonical == [1] and ref == sha_of(root, 1)
        return
    assert canonical == [2] and ref == sha_of(root, 2)
    Cli(root)("rollback", "--reason", "bad release")
    assert state(root) == ([1], sha_of(root, 1), ["toy/v1", "toy/v2"])


@pytest.mark.parametrize("point", ["init:version-recorded", *MOVE_POINTS])
def test_killed_init(tmp_path, point):
    root = build_workspace(tmp_path / "ws", agent_files=agent("return x * 2"), tasks=TASKS, init=False)
    killed.point = point
    killed(root, "init")
    ahead = point in GIT_AHEAD
    cli = Cli(root)
    cli("doctor", "--check", code=1 if ahead else 0)
    if ahead:
        assert "release doctor" in cli("init", code=2).stderr
    cli("doctor")
    cli("doctor", "--check")
    cli("init")
    assert state(root) == ([1], sha_of(root, 1), ["toy/v1"])


def test_a_move_killed_after_its_push_is_repaired_on_the_shared_remote_too(gated, tmp_path, monkeypatch):
    """With `remote:`, a promote killed after its push and before its commit leaves the remote ahead (every clone
    fetching the line would fetch that): the doctor sees the remote's refs, puts them back with this clone's, and
    mends a tag the remote lost; then the line moves on as usual, everywhere."""
    root = copy(gated, tmp_path)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "origin", "canonical/toy", "refs/release-pipeline/toy:refs/release-pipeline/toy", "toy/v1")
    monkeypatch.setenv("RELEASE_GIT_REMOTE", "origin")
    killed.point = "git:pushed"
    killed(root, "promote", "--candidate", "v2")

    def on_remote():
        line = json.loads(git(remote, "show", "refs/release-pipeline/toy:line.json"))
        return (
            git(remote, "rev-parse", "canonical/toy"),
            sorted(git(remote, "tag", "--list").split()),
            line["canonical"],
        )

    assert on_remote() == (sha_of(root, 2), ["toy/v1", "toy/v2"], 2)  # the push happened, the move did not
    cli = Cli(root)
    found = cli.json("doctor", "--check", code=1)[0]["disagreements"]
    assert {(d["remote"], d["ref"]) for d in found} >= {
        ("origin", "refs/heads/canonical/toy"), ("origin", "refs/tags/toy/v2"), ("origin", "refs/release-pipeline/toy"),
    }  # fmt: skip
    assert all(d["explanation"].startswith("remote 'origin': ") for d in found if d["remote"])
    cli("doctor")
    assert on_remote() == (sha_of(root, 1), ["toy/v1"], 1)
    assert not cli.json("doctor", "--check")[0]["disagreements"]

    git(remote, "tag", "-d", "toy/v1")  # the remote loses a tag: only the remote disagrees
    found = cli.json("doctor", "--check", code=1)[0]["disagreements"]
    assert [(d["remote"], d["ref"], d["git"]) for d in found] == [("origin", "refs/tags/toy/v1", "")]
    cli("doctor")
    assert git(remote, "rev-parse", "toy/v1^{commit}") == sha_of(root, 1)

    cli("promote", "--candidate", "v2")
    assert on_remote() == (sha_of(root, 2), ["toy/v1", "toy/v2"], 2)
    assert state(root) == ([2], sha_of(root, 2), ["toy/v1", "toy/v2"])
    assert not cli.json("doctor", "--check")[0]["disagreements"]
