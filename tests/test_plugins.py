"""Plugins: every hook documented and exercised, the three plugin sources, blocking, and `release plugins`."""

from __future__ import annotations

import inspect
import os
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, Cli, build_workspace, change_agent, run_release

from release_pipeline.errors import ConfigError
from release_pipeline.plugins import hookspecs
from release_pipeline.plugins.manager import BUILTIN_PLUGINS, load_plugins

HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("release_"))
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate" if i % 2 else "dev"} for i in range(6)]

RECORDER = '''
"""Records every stage hook call into calls.log beside (not in) the workspace."""
import os
from pathlib import Path
from release_pipeline.plugins.hookspecs import hookimpl

LOG = Path(os.environ.get("RECORDER_LOG", os.devnull))  # the gate loads this from the canonical commit's copy

def note(line):
    with LOG.open("a") as fh:
        fh.write(line + "\\n")

@hookimpl
def release_run_finished(run, counts):
    note(f"release_run_finished {run.split} {counts['pass']}")

@hookimpl
def release_critic_finished(run_id, symptoms):
    note(f"release_critic_finished {len(symptoms)}")

@hookimpl
def release_diagnose(request):
    from release_pipeline.models import Pattern
    note("release_diagnose")
    return [Pattern("custom_pattern", 1, 1.0, ["t0"], ["t0"], "a custom script's finding", source="recorder")]

@hookimpl
def release_candidate_created(version, changed_files):
    note(f"release_candidate_created v{version.number} {changed_files}")

@hookimpl
def release_gate_checks(evidence, policy):
    note(f"release_gate_checks {evidence.fixes}")
    return ["t5 must never change"] if "t5" in evidence.fixes else []

@hookimpl
def release_candidate_rejected(version, reasons):
    note(f"release_candidate_rejected v{version.number} {reasons}")

@hookimpl
def release_promoted(move, workspace):
    note(f"release_promoted v{move.to_version} {Path(workspace).name}")

@hookimpl(wrapper=True, specname="release_gate_checks")
def wrap_gate_checks(evidence, policy):
    reasons = yield
    note(f"wrapped gate checks: {sum(len(r) for r in reasons)} reasons")
    return reasons

@hookimpl
def release_register_commands(app):
    @app.command("hello")
    def hello():
        """Say hello from a workspace plugin."""
        print("hello from recorder")
'''


def test_every_hook_is_documented():
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 30, f"{name} needs a docstring that says what it is for"


def test_every_hook_has_a_test():
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    missing = [name for name in HOOKS if f"{name}(" not in tests and f'specname="{name}"' not in tests]
    assert missing == []


def test_builtins_are_plugins_and_release_plugins_lists_them(tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": "def solve(x):\n    return x * 2\n"}, tasks=TASKS)
    rows = {r["name"]: r for r in Cli(root).json("plugins")}
    assert set(BUILTIN_PLUGINS) <= set(rows)
    assert "verifier:numeric" in rows["release_pipeline.builtin.verifiers"]["components"]
    assert "adapter:subprocess" in rows["release_pipeline.builtin.adapters"]["components"]
    assert "executor:local" in rows["release_pipeline.builtin.executors"]["components"]
    assert rows["release_pipeline.builtin.diagnosis"]["hooks"] == ["release_diagnose"]


def test_workspace_plugin_sees_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("RECORDER_LOG", str(tmp_path / "calls.log"))
    code = "def solve(x):\n    return 0 if x in (1, 2, 5) else x * 2\n"
    root = build_workspace(
        tmp_path / "ws", agent_files={"agent.py": code}, tasks=TASKS, extra={"plugins/recorder.py": RECORDER}
    )
    cli = Cli(root)
    assert cli("hello").stdout.strip() == "hello from recorder"
    cli.json("run")
    cli.json("critic")
    spec = cli.json("diagnose")
    assert sorted(p["source"] for p in spec["patterns"]) == ["builtin", "recorder"]
    fix_t1 = change_agent(root, {"agent.py": "def solve(x):\n    return 0 if x in (2, 5) else x * 2\n"}, "fix t1")
    assert cli.json("gate", "--candidate", fix_t1)["decision"] == "accepted"
    cli.json("promote", "--candidate", "v2")
    fix_t5 = change_agent(root, {"agent.py": "def solve(x):\n    return 0 if x == 2 else x * 2\n"}, "fix t5")
    report = cli.json("gate", "--candidate", fix_t5, code=1)
    assert report["reasons"] == ["t5 must never change"]
    log = (tmp_path / "calls.log").read_text()
    for hook in (
        "release_run_finished dev",
        "release_critic_finished 3",
        "release_diagnose",
        "release_candidate_created v2 ['agents/toy/agent.py']",
        "release_gate_checks ['t1']",
        "release_promoted v2 ws",
        "release_candidate_rejected v3 ['t5 must never change']",
        "wrapped gate checks: 0 reasons",
        "wrapped gate checks: 1 reasons",
    ):
        assert hook in log, hook
    rows = {r["name"]: r for r in cli.json("plugins")}
    assert rows["workspace.recorder"]["source"] == "workspace"


def test_blocking_a_plugin_by_name(tmp_path, monkeypatch):
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return x * 2\n"},
        tasks=TASKS,
        extra={"plugins/recorder.py": RECORDER},
    )
    monkeypatch.setenv("RELEASE_PIPELINE_BLOCK", "workspace.recorder,release_pipeline.builtin.critics")
    names = {r["name"] for r in Cli(root).json("plugins")}
    assert "workspace.recorder" not in names and "release_pipeline.builtin.critics" not in names
    result = run_release(root, "critic", "--run", "1", env={**os.environ})
    assert result.returncode == 2


def test_entry_point_plugins_load(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "shout_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "shout_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shout-plugin\nVersion: 1.0\n"
    )
    (site / "shout_plugin-1.0.dist-info" / "entry_points.txt").write_text("[release_pipeline]\nshout = shout_plugin\n")
    (site / "shout_plugin.py").write_text(
        textwrap.dedent("""
        from release_pipeline.plugins.hookspecs import hookimpl
        from release_pipeline.models import Verdict

        def shout(options, root):
            return lambda task, output: Verdict(str(output).isupper(), float(str(output).isupper()))

        @hookimpl
        def release_register_verifiers(register):
            register("shouting", shout)
    """)
    )
    monkeypatch.syspath_prepend(str(site))
    plugins = load_plugins()
    assert plugins.registry.component("verifier", "shouting").plugin == "shout"
    assert next(r for r in plugins.describe() if r.name == "shout").source == "entry-point"


def test_duplicate_component_names_are_refused(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "dup.py").write_text(
        textwrap.dedent("""
        from release_pipeline.plugins.hookspecs import hookimpl

        @hookimpl
        def release_register_verifiers(register):
            register("exact", lambda options, root: None)
    """)
    )
    with pytest.raises(ConfigError, match="both register verifier 'exact'"):
        load_plugins(tmp_path)


def test_misspelled_hook_fails_loudly(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "typo.py").write_text(
        "from release_pipeline.plugins.hookspecs import hookimpl\n\n@hookimpl\ndef release_promotd(move):\n    pass\n"
    )
    with pytest.raises(ConfigError, match="unknown hook"):
        load_plugins(tmp_path)


def test_custom_executor_and_strategy_and_adapter_registration(tmp_path):
    plugin = textwrap.dedent("""
        from release_pipeline.builtin.executors import LocalExecutor
        from release_pipeline.builtin.adapters import callable_agent
        from release_pipeline.plugins.hookspecs import hookimpl
        from release_pipeline.models import CandidateProposal

        class Serial(LocalExecutor):
            async def map(self, jobs, work, concurrency, on_result):
                for job in jobs:
                    on_result(await work(job))

        @hookimpl
        def release_register_executors(register):
            register("serial", Serial)

        @hookimpl
        def release_register_agent_adapters(register):
            register("python-too", callable_agent)

        @hookimpl
        def release_register_candidate_strategies(register):
            register("always-double", lambda ctx: CandidateProposal(
                intent="double everything", source="double",
                patch=open(ctx.workspace / "double.patch").read()))

        @hookimpl
        def release_register_critics(register):
            from release_pipeline.models import Symptom
            register("all-format", lambda items, services: [
                Symptom(i.trial_id, i.task_id, "format", "everything is a format problem", critic="all-format")
                for i in items])

        @hookimpl
        def release_register_suite_loaders(register):
            from release_pipeline.models import Suite, Task
            register("counting", lambda arg, root: Suite("counting", tuple(
                Task(f"c{i}", i, "gate" if i % 2 else "dev", i * 2, {"type": "exact"}) for i in range(int(arg)))))
    """)
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return x + x if x not in (1, 2) else 0\n"},
        tasks=TASKS,
        manifest={"adapter": "python-too"},
        extra={"plugins/mine.py": plugin},
        run={"executor": "serial"},
        init=False,  # the suite below is the plugin's: it must be in the commit v1 is recorded at, which judges
    )
    import yaml

    config = yaml.safe_load((root / "release.yaml").read_text())
    config["agents"]["toy"]["suite"] = "counting:6"
    config["strategy"] = {"name": "always-double"}
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    from conftest import commit_all, git

    git(root, "checkout", "-q", "-b", "tmp")
    (root / "agents/toy/agent.py").write_text("def solve(x):\n    return x * 2\n")
    (root / "double.patch").write_text(git(root, "diff", "--", "agents") + "\n")
    git(root, "checkout", "-q", "agents")
    git(root, "checkout", "-q", "-")
    commit_all(root, "use plugin components")
    cli = Cli(root)
    cli("init")
    assert cli.json("run")["counts"]["pass"] == 6
    assert {s["label"] for s in cli.json("critic", "--critic", "all-format")} == {"format"}
    steps = cli.json("promote", "--iterations", "1")
    assert steps[0]["decision"] == "accepted" and steps[0]["fixes"] == ["c1"], steps[0]["reasons"]


def test_repo_example_plugin_is_a_working_workspace_plugin():
    assert (REPO / "plugins" / "promotion_journal.py").exists()
    plugins = load_plugins(REPO)
    assert plugins.pm.get_plugin("workspace.promotion_journal") is not None
