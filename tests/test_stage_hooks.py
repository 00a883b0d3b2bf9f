"""The stages are hooks: a plugin wraps every one of them (seeing inputs and outputs) and replaces the critic,
under `promote --iterations` and under each one-shot command alike."""

from __future__ import annotations

import json

import yaml
from conftest import Cli, build_workspace, commit_all, git

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate" if i % 2 else "dev"} for i in range(6)]

SPY = '''
"""Wraps every stage, writing what went in and what came out; replaces the critic; offers a strategy."""
import json
import os
from pathlib import Path

from release_pipeline import CandidateProposal, Symptom, hookimpl

LOG = Path(os.environ.get("SPY_LOG", os.devnull))


def note(**entry):
    with LOG.open("a") as fh:
        fh.write(json.dumps(entry, default=str) + "\\n")


def spied(stage, result, **inputs):
    note(stage=stage, inputs={k: repr(v)[:80] for k, v in inputs.items()}, output=type(result).__name__)
    return result


@hookimpl(wrapper=True, specname="release_stage_run")
def spy_run(workspace, agent, version, split, repeats, fresh, reuse, progress, budget):
    return spied("run", (yield), version=version, split=split)


@hookimpl(wrapper=True, specname="release_stage_critic")
def spy_critic(workspace, agent, run_id, critic, progress):
    return spied("critic", (yield), run_id=run_id)


@hookimpl(wrapper=True, specname="release_stage_diagnose")
def spy_diagnose(workspace, agent, run_id):
    return spied("diagnose", (yield), run_id=run_id)


@hookimpl(wrapper=True, specname="release_stage_candidate")
def spy_candidate(workspace, agent, context, strategy):
    return spied("candidate", (yield), context=context, strategy=strategy)


@hookimpl(wrapper=True, specname="release_stage_gate")
def spy_gate(workspace, agent, candidate, progress, budget):
    return spied("gate", (yield), candidate=candidate)


@hookimpl(wrapper=True, specname="release_stage_promote")
def spy_promote(workspace, agent, candidate, reason):
    return spied("promote", (yield), candidate=candidate, reason=reason)


@hookimpl
def release_stage_critic(workspace, agent, run_id, progress):
    """Replaces the built-in critic: one symptom of our own per failed trial."""
    failed = [t for t in workspace.store.trials(run_id, with_trace=False) if t.status == "fail"]
    return [Symptom(t.id, t.task_id, "spy_symptom", "labelled by the spy", (), "low", "spy") for t in failed]


@hookimpl
def release_register_candidate_strategies(register):
    def fix(ctx):
        code = "def solve(x):\\n    return x * 2\\n"
        if ctx.already_judged({"agent.py": code}) or (ctx.base.path / "agent.py").read_text() == code:
            return None
        return CandidateProposal(intent="solve every task", files={"agent.py": code}, source="spy-fix")

    register("spy-fix", fix)
'''


def test_a_plugin_wraps_every_stage_and_replaces_the_critic(tmp_path, monkeypatch):
    log = tmp_path / "spy.log"
    monkeypatch.setenv("SPY_LOG", str(log))
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return 0 if x in (1, 2, 3) else x * 2\n"},
        tasks=TASKS,
        extra={"plugins/spy.py": SPY},
        init=False,
        trusted=True,
    )
    config = yaml.safe_load((root / "release.yaml").read_text())
    config["strategy"] = {"name": "spy-fix"}
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    commit_all(root, "a strategy of the plugin's")
    cli = Cli(root)
    cli("init")
    (step,) = cli.json("promote", "--iterations", "1")
    assert step["decision"] == "accepted" and step["promoted"], step
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["stage"] for c in calls] == ["run", "critic", "diagnose", "candidate", "gate", "promote"]
    outputs = {c["stage"]: c["output"] for c in calls}
    assert outputs == {
        "run": "Run",
        "critic": "list",
        "diagnose": "Spec",
        "candidate": "Candidate",
        "gate": "GateReport",
        "promote": "HeadMove",
    }
    assert "'dev'" in calls[0]["inputs"]["split"] and "VersionInfo" in calls[4]["inputs"]["candidate"]
    from release_pipeline.workspace import Workspace

    spec = Workspace(root).store.spec(step["spec"]).to_dict()  # built from the replacement critic's symptoms
    assert [p["label"] for p in spec["patterns"]] == ["spy_symptom"]
    (again,) = cli.json("promote", "--iterations", "1", code=5)  # nothing was promoted
    assert again["candidate"] is None and "nothing more to propose" in again["stopped"]


def test_every_one_shot_command_runs_its_stage_through_the_hook(tmp_path, monkeypatch):
    log = tmp_path / "spy.log"
    monkeypatch.setenv("SPY_LOG", str(log))
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return 0 if x in (1, 2, 3) else x * 2\n"},
        tasks=TASKS,
        extra={"plugins/spy.py": SPY},
        trusted=True,
    )
    cli = Cli(root)

    def stages() -> list[str]:
        seen = [json.loads(line)["stage"] for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return seen

    cli("run")
    assert stages() == ["run"]
    cli("critic")
    assert stages() == ["critic"]
    cli("diagnose")
    assert stages() == ["diagnose"]
    git(root, "checkout", "-q", "-b", "fix")
    (root / "agents" / "toy" / "agent.py").write_text("def solve(x):\n    return x * 2\n")
    commit_all(root, "solve every task")
    git(root, "checkout", "-q", "-")
    cli("candidate", "--from", "fix")  # a change made elsewhere is recorded by the candidate stage too
    assert stages() == ["candidate"]
    cli("gate", "--candidate", "v2")
    assert stages() == ["gate"]
    cli("promote", "--candidate", "v2", "--reason", "gated")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["stage"] for c in calls] == ["promote"] and "gated" in calls[0]["inputs"]["reason"]
