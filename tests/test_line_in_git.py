"""The version line travels with git: a fresh clone adopts it instead of starting a second one."""

from __future__ import annotations

import json
import subprocess

from conftest import REPO, Cli, run_release

PATCHES = REPO / "specs" / "candidates"


def git(root, *args: str, input: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, input=input)
    return done.stdout.strip()


def test_a_fresh_clone_adopts_the_line_git_carries(cli, workspace, tmp_path):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))  # v2 canonical
    cli("candidate", "--from", str(PATCHES / "02-true-division.patch"))
    cli("gate", "--candidate", "v3", code=1)  # rejected: stays on record in this store
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(workspace), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/release-pipeline/*:refs/release-pipeline/*",
        "refs/heads/canonical/*:refs/heads/canonical/*")  # fmt: skip
    fresh = Cli(clone)
    fresh("init")
    line = {v["number"]: v for v in fresh.json("log")}
    assert line[2]["status"] == "canonical" and line[1]["status"] == "retired"
    assert line[2]["git_sha"] == git(workspace, "rev-parse", "canonical/calc")
    assert any("accepted by gate report" in r for r in line[2]["reasons"])  # the gate's decision travelled
    assert [m["kind"] for m in fresh.json("show", "v2")["head_moves"]] == ["promote"]
    fresh("doctor", "--check")  # database and git agree
    # the line git carries is written with each head move, and moves back with a rollback
    cli("rollback", "--reason", "test")
    git(clone, "fetch", "-q", "-f", "origin", "refs/release-pipeline/*:refs/release-pipeline/*")
    assert '"canonical": 1' in git(clone, "show", "refs/release-pipeline/calc:line.json")


def test_a_clone_without_the_line_refuses_to_start_a_second_one(cli, workspace, tmp_path):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(workspace), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/heads/canonical/*:refs/heads/canonical/*")
    refused = Cli(clone)("init", code=2)
    assert "no version line to adopt" in refused.output and "refs/release-pipeline" in refused.output


def test_the_line_carries_each_gate_decision_with_its_reports_digest(cli, workspace):
    import json

    from release_pipeline.models import GateDecision
    from release_pipeline.workspace import Workspace

    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    cli("gate", "--candidate", str(PATCHES / "02-true-division.patch"), code=1)  # rejected after the move
    cli("rollback", "--reason", "test")  # the next head move carries it
    line = json.loads(git(workspace, "show", "refs/release-pipeline/calc:line.json"))
    gates = [GateDecision.from_dict(g) for g in line["gates"]]
    assert [(g.candidate, g.decision) for g in gates] == [(2, "accepted"), (3, "rejected")]
    store = Workspace(workspace).store
    for gate in gates:
        body = {k: v for k, v in store.latest_gate_report("calc", gate.candidate).to_dict().items() if k != "id"}
        assert gate.report_sha256 == GateDecision.digest_of(body)
        changed = {**body, "regressions": ["sub-2"]} if gate.decision == "accepted" else {**body, "fixes": []}
        assert GateDecision.digest_of(changed) != gate.report_sha256  # an edited copy no longer matches


def test_doctor_finds_and_repairs_a_line_that_disagrees(cli, workspace):
    before = git(workspace, "rev-parse", "refs/release-pipeline/calc")  # v1 canonical
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    git(workspace, "update-ref", "refs/release-pipeline/calc", before)  # the line alone falls back to v1
    (found,) = cli.json("doctor", "--check", code=1)[0]["disagreements"]
    assert found["ref"] == "refs/release-pipeline/calc" and "names v1 canonical" in found["explanation"]
    assert "release doctor" in cli("rollback", "--reason", "x", code=2).stderr  # no move on a disagreeing line
    cli.json("doctor")
    cli("doctor", "--check")
    assert '"canonical": 2' in git(workspace, "show", "refs/release-pipeline/calc:line.json")


def _plant_line(root, text: str) -> None:
    """Point the agent's line ref at a commit whose line.json holds `text` (hand-edited, truncated, foreign)."""
    blob = git(root, "hash-object", "-w", "--stdin", input=text)
    tree = git(root, "mktree", input=f"100644 blob {blob}\tline.json\n")
    commit = git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", tree, "-m", "damaged")
    git(root, "update-ref", "refs/release-pipeline/calc", commit)


DAMAGED = ['{"format": 1} trailing', "[1, 2]", '"a string"', '{"canonical": 9, "versions": []}', "{not json"]


def test_a_damaged_line_is_a_disagreement_the_doctor_repairs(cli, workspace):
    """Trailing data, a list or a string in line.json gave tracebacks from doctor, rollback and init."""
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    for text in DAMAGED:
        _plant_line(workspace, text)
        (found,) = cli.json("doctor", "--check", code=1)[0]["disagreements"]
        assert found["ref"] == "refs/release-pipeline/calc" and "version line" in found["explanation"], text
        refused = run_release(workspace, "rollback", "--reason", "x")
        assert refused.returncode == 2 and "release doctor" in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        cli.json("doctor")
        cli("doctor", "--check")
        assert '"canonical": 2' in git(workspace, "show", "refs/release-pipeline/calc:line.json")


def test_init_in_a_clone_with_a_damaged_line_is_one_line(cli, workspace, tmp_path):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    line = json.loads(git(workspace, "show", "refs/release-pipeline/calc:line.json"))
    del line["versions"][0]["content_hash"]  # readable, but not a line that can be adopted
    for text in [*DAMAGED, json.dumps(line)]:
        _plant_line(workspace, text)
        clone = tmp_path / f"clone{abs(hash(text))}"
        git(tmp_path, "clone", "-q", str(workspace), str(clone))
        git(clone, "fetch", "-q", "origin", "refs/release-pipeline/*:refs/release-pipeline/*",
            "refs/heads/canonical/*:refs/heads/canonical/*")  # fmt: skip
        result = run_release(clone, "init")
        assert result.returncode == 2 and "Traceback" not in result.stderr, (text, result.stderr)
        assert "damaged" in result.stderr or "not JSON" in result.stderr
        assert "update-ref -d refs/release-pipeline/calc" in result.stderr


def test_a_git_failure_is_one_line(workspace):
    """A failing git (here a damaged index; a full disk did the same) gave a traceback from ensure_clean."""
    (workspace / ".git" / "index").write_bytes(b"DIRC garbage")
    result = run_release(workspace, "candidate", "--from", str(PATCHES / "01-percent-and-plain-digits.patch"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: git failed:") and len(result.stderr.strip().splitlines()) == 1
    result = run_release(workspace, "candidate", "--from", "x", "--json")
    assert json.loads(result.stderr)["error"]["code"] == "git"
