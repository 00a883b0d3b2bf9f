"""`release --version`, `--quiet`, and a plugin that raises in a gate check: its own exit code, one line."""

from __future__ import annotations

import json
import textwrap

from conftest import REPO, Cli, commit_all, make_workspace, run_release

from release_pipeline import __version__


def test_version_and_quiet(workspace):
    assert run_release(workspace, "--version").stdout.strip() == f"release-pipeline {__version__}"
    loud = run_release(workspace, "run", "-k", "1")
    quiet = run_release(workspace, "--quiet", "run", "-k", "1")
    assert loud.returncode == quiet.returncode == 0
    assert "run #" in loud.stderr and quiet.stderr == ""  # progress lines gone, the result stays
    assert quiet.stdout == loud.stdout and "trials passed" in quiet.stdout


def test_a_plugin_that_raises_in_a_gate_check_exits_4_in_one_line(tmp_path):
    workspace = make_workspace(tmp_path / "ws")  # the plugin is part of the canonical commit, which judges
    (workspace / "plugins").mkdir(exist_ok=True)
    (workspace / "plugins" / "broken.py").write_text(
        textwrap.dedent("""
        from release_pipeline import hookimpl

        @hookimpl
        def release_gate_checks(evidence, policy):
            raise KeyError("no such column")
        """)
    )
    commit_all(workspace, "a broken plugin")
    Cli(workspace)("init")
    patch = REPO / "specs" / "candidates" / "01-percent-and-plain-digits.patch"
    result = run_release(workspace, "gate", "--candidate", str(patch), "--json")
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert result.returncode == 4 and error["code"] == "plugin_failed" and "Traceback" not in result.stderr
    assert "broken" in error["message"] and "release_gate_checks" in error["message"]
    assert "KeyError" in error["message"]


def test_a_run_says_when_the_working_tree_is_not_what_runs(workspace):
    agent = workspace / "agents" / "calc" / "formatting.py"
    agent.write_text(agent.read_text() + "\nthis is not python\n")
    result = run_release(workspace, "run", "-k", "1")
    assert result.returncode == 0 and "uncommitted change(s) in agents/calc do not run: v1 is commit" in result.stderr
