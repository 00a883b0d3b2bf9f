"""Bad input and bad states: one clear line on stderr, exit 2, no traceback, nothing recorded lost."""

from __future__ import annotations

import pytest
from conftest import RELEASE, Cli, commit_all, git, make_workspace, run_release


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def version_line(root):
    return Cli(root).json("log")


@pytest.fixture
def before(workspace):
    Cli(workspace).json("run")
    return version_line(workspace)


def test_malformed_config(workspace, before):
    (workspace / "release.yaml").write_text("agents:\n  calc: [oops\n")
    assert_one_line_error(run_release(workspace, "run"), "release.yaml", "line")
    (workspace / "release.yaml").write_text("agents:\n  calc:\n    path: agents/calc\n")
    assert_one_line_error(run_release(workspace, "log"), "release.yaml", "suite")


def test_malformed_suite(workspace, before):
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text(suite.read_text().replace("split: dev", "split: training", 1))
    assert_one_line_error(run_release(workspace, "run"), "calc.yaml", "training")
    suite.write_text("tasks: {not: a list}\n")
    assert_one_line_error(run_release(workspace, "run"), "calc.yaml", "tasks")
    assert version_line(workspace) == before


def test_duplicate_task_id(workspace):
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text(suite.read_text().replace("id: add-2", "id: add-1"))
    assert_one_line_error(run_release(workspace, "run"), "duplicate task id 'add-1'")


def test_unknown_verifier(workspace):
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text(suite.read_text().replace("type: numeric", "type: telepathy"))
    assert_one_line_error(run_release(workspace, "run"), "unknown verifier 'telepathy'", "numeric")


def test_malformed_manifest_of_a_new_workspace(tmp_path):
    root = make_workspace(tmp_path / "ws")
    manifest = root / "agents" / "calc" / "agent.yaml"
    manifest.write_text("name: calc\nadapter: callable\n")  # no editable list
    commit_all(root, "broken manifest")
    assert_one_line_error(run_release(root, "init"), "agent.yaml", "editable")
    assert not (root / ".release" / "release.db").exists() or Cli(root).json("log") == []


def test_unknown_adapter(tmp_path):
    root = make_workspace(tmp_path / "ws")
    manifest = root / "agents" / "calc" / "agent.yaml"
    manifest.write_text(manifest.read_text().replace("adapter: callable", "adapter: carrier-pigeon"))
    commit_all(root, "odd adapter")
    run_release(root, "init")
    assert_one_line_error(run_release(root, "run"), "unknown adapter 'carrier-pigeon'")


def test_unknown_plugin_required_by_config(workspace):
    config = workspace / "release.yaml"
    config.write_text(config.read_text() + "plugins: [release-pipeline-nonesuch]\n")
    assert_one_line_error(run_release(workspace, "run"), "unknown plugin 'release-pipeline-nonesuch'")


def test_unknown_plugin_in_block_list(workspace):
    import os

    env = {**os.environ, "RELEASE_PIPELINE_BLOCK": "no-such-plugin"}
    assert_one_line_error(run_release(workspace, "plugins", env=env), "no-such-plugin")


def test_unknown_critic(workspace, before):
    assert_one_line_error(run_release(workspace, "critic", "--critic", "oracle"), "unknown critic 'oracle'")


def test_dirty_git_tree(workspace, before):
    ops = workspace / "agents" / "calc" / "ops.py"
    ops.write_text(ops.read_text() + "\n# wip\n")
    patch = workspace / "specs" / "candidates" / "01-percent-and-plain-digits.patch"
    assert_one_line_error(run_release(workspace, "candidate", "--from", str(patch)), "dirty", "ops.py")
    assert version_line(workspace) == before


def test_no_canonical_version_yet(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert_one_line_error(run_release(root, "run"), "no canonical version", "release init")
    assert_one_line_error(run_release(root, "gate", "--candidate", "main"), "no canonical version")


def test_candidate_ref_that_does_not_exist(workspace, before):
    assert_one_line_error(run_release(workspace, "candidate", "--from", "no-such-branch"), "no-such-branch")
    assert_one_line_error(run_release(workspace, "gate", "--candidate", "v42"), "v42")
    assert_one_line_error(run_release(workspace, "gate", "--candidate", "missing.patch"), "missing.patch")
    assert version_line(workspace) == before


def test_patch_that_does_not_apply(workspace, before):
    # the second demo patch only applies on top of the first
    patch = workspace / "specs" / "candidates" / "02-true-division.patch"
    assert_one_line_error(run_release(workspace, "candidate", "--from", str(patch)), "does not apply")
    assert version_line(workspace) == before


def test_candidate_that_changes_nothing(workspace):
    assert_one_line_error(run_release(workspace, "candidate", "--from", "HEAD"), "changes nothing")


def test_not_a_workspace(tmp_path):
    assert_one_line_error(run_release(tmp_path, "log"), "release.yaml", "release init")


def test_bad_policy_file(workspace):
    (workspace / "gate-policy.yaml").write_text("version: 1\nalpha: 2\n")
    commit_all(workspace, "bad policy")
    patch = workspace / "specs" / "candidates" / "01-percent-and-plain-digits.patch"
    assert_one_line_error(run_release(workspace, "gate", "--candidate", str(patch)), "gate-policy.yaml", "alpha")


def test_promote_without_accepted_gate(cli, workspace):
    import json

    made = cli.json("candidate", "--from", str(workspace / "specs/candidates/01-percent-and-plain-digits.patch"))
    assert made["number"] == 2
    # promotion of an un-gated candidate gates it first, then promotes
    cli("promote", "--candidate", "v2")
    assert json.loads(cli("log", "--json").stdout)[1]["status"] == "canonical"
    assert_one_line_error(run_release(workspace, "promote", "--candidate", "v2"), "v2 is canonical")


def test_git_identity_missing_still_works(tmp_path):
    """CI machines have no git identity: candidates and tags fall back to release-pipeline's own."""
    root = make_workspace(tmp_path / "ws")
    Cli(root)("init")
    assert git(root, "for-each-ref", "--format=%(taggername)", "refs/tags/calc/v1") == "release-pipeline"


# ----- the cases a fuzzer found (issue 7, item 6) --------------------------------------------------------


def test_binary_and_utf16_files(workspace, before):
    config = workspace / "release.yaml"
    text = config.read_text()
    config.write_bytes(text.encode("utf-16"))
    assert_one_line_error(run_release(workspace, "log"), "release.yaml", "not UTF-8")
    config.write_text(text)
    suite = workspace / "specs" / "calc.yaml"
    suite.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert_one_line_error(run_release(workspace, "run"), "calc.yaml", "not UTF-8")
    assert version_line(workspace) == before


def test_deeply_nested_yaml_and_json(workspace, before):
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text("tasks: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line_error(run_release(workspace, "run"), "calc.yaml", "nested too deeply")
    jsonl = workspace / "specs" / "deep.jsonl"
    jsonl.write_text('{"id": "a", "split": "dev", "input": ' + "[" * 5000 + "]" * 5000 + "}\n")
    config = workspace / "release.yaml"
    config.write_text(config.read_text().replace("specs/calc.yaml", "specs/deep.jsonl"))
    assert_one_line_error(run_release(workspace, "run"), "deep.jsonl", "nested too deeply")


def test_corrupt_or_truncated_database(workspace, before):
    db = workspace / ".release" / "release.db"
    for extra in ("-wal", "-shm"):
        (workspace / ".release" / f"release.db{extra}").unlink(missing_ok=True)
    db.write_bytes(b"not a database at all, just bytes" * 100)
    assert_one_line_error(run_release(workspace, "log"), "release.db", "move it aside")
    assert db.read_bytes().startswith(b"not a database")  # nothing was overwritten


def test_truncated_database(workspace, before):
    db = workspace / ".release" / "release.db"
    run_release(workspace, "log")  # checkpoints the WAL into the file
    data = db.read_bytes()
    for extra in ("-wal", "-shm"):
        (workspace / ".release" / f"release.db{extra}").unlink(missing_ok=True)
    db.write_bytes(data[: len(data) // 3])
    result = run_release(workspace, "log")
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr, result.stderr
    if result.returncode == 2:
        assert_one_line_error(result)


def test_database_of_a_newer_release(workspace, before):
    import sqlite3

    conn = sqlite3.connect(workspace / ".release" / "release.db")
    conn.execute("UPDATE alembic_version SET version_num = '0042'")
    conn.commit()
    conn.close()
    assert_one_line_error(run_release(workspace, "log"), "0042", "upgrade release-pipeline")


def test_read_only_state_folder(workspace, before, tmp_path):
    """As a user without write access to .release/ (root ignores permissions, so run as nobody)."""
    import os
    import shutil
    import subprocess

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    for path in (tmp_path, *tmp_path.parents):
        if path != path.parent:
            os.chmod(path, os.stat(path).st_mode | 0o755)
    for folder, _, files in os.walk(workspace):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    os.chmod(workspace / ".release", 0o555)
    home = tmp_path / "nobody-home"
    home.mkdir(mode=0o777)
    env = {**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": "/dev/null"}
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RELEASE]
    for command in (["log"], ["run"]):
        result = subprocess.run([*argv, *command], cwd=workspace, capture_output=True, text=True, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode != 0:
            assert_one_line_error(result)
    os.chmod(workspace / ".release", 0o755)
    assert version_line(workspace) == before


def test_usage_errors_are_one_line(workspace):
    for args in (["--bogus"], ["run", "--repeats", "x"], ["log", "extra"], ["gate"], ["run", "-k", "0"]):
        assert_one_line_error(run_release(workspace, *args), "--help")


def test_a_workspace_path_with_a_question_mark(tmp_path):
    root = make_workspace(tmp_path / "odd?name#x" / "ws")
    Cli(root)("init")
    assert (root / ".release" / "release.db").is_file()
    assert not list((tmp_path / "odd?name#x").glob("*.db")) and not list(tmp_path.glob("odd*.db"))
    assert [v["number"] for v in Cli(root).json("log")] == [1]


@pytest.mark.parametrize(
    "verifier, expected",
    [
        ({"type": "regex", "pattern": "(unclosed"}, None),
        ({"type": "numeric"}, "not a number"),
        ({"type": "numeric", "abs_tol": "lots"}, None),
        ({"type": "python", "function": "nowhere:check"}, None),
        ({"type": "python", "function": "checks:takes_one"}, None),
        ({"type": "json_schema", "schema": {"type": "no-such-type"}}, None),
    ],
)
def test_a_malformed_verifier_stops_the_run_before_any_trial(tmp_path, verifier, expected):
    from conftest import build_workspace

    tasks = [{"id": f"t{i}", "input": i, "expected": expected or i * 2, "split": "dev"} for i in range(3)]
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return x * 2\n"},
        tasks=tasks,
        verifier=verifier,
        extra={"checks.py": "def takes_one(task):\n    return True\n"},
    )
    result = run_release(root, "run")
    assert_one_line_error(result)
    assert Cli(root).json("show", "v1")["runs"] == []  # nothing ran, nothing was recorded


def test_errors_under_json_are_one_json_object_with_a_stable_code_and_a_hint(workspace, before):
    import json

    cases = [
        (("show", "v99", "--json"), "not_found"),
        (("run", "--split", "training", "--json"), "bad_input"),
        (("gate", "--no-such-option", "--json"), "usage"),
    ]
    for args, code in cases:
        result = run_release(workspace, *args)
        assert result.returncode == 2 and result.stdout == "", (args, result.stdout)
        (line,) = result.stderr.strip().splitlines()
        error = json.loads(line)["error"]
        assert error["code"] == code and error["exit_code"] == 2, (args, error)
        assert error["message"] and error["hint"] and "Traceback" not in line
    (workspace / "release.yaml").write_text("agents:\n  calc: [oops\n")
    error = json.loads(run_release(workspace, "log", "--json").stderr)["error"]
    assert error["code"] == "config" and "release.yaml" in error["message"]
