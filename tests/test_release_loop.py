"""The whole loop on the bundled example, through the CLI a user types."""

from __future__ import annotations

from conftest import DATA, REPO, git

PATCHES = REPO / "specs" / "candidates"
ADD_GATE = ["add-2", "add-4", "add-6"]


def test_init_records_v1_canonical_with_tag_and_branch(cli, workspace):
    log = cli.json("log")
    assert [(v["number"], v["status"]) for v in log] == [(1, "canonical")]
    assert log[0]["git_sha"] == git(workspace, "rev-parse", "HEAD")
    assert git(workspace, "rev-parse", "calc/v1^{commit}") == log[0]["git_sha"]
    assert git(workspace, "rev-parse", "canonical/calc") == log[0]["git_sha"]
    again = cli.json("init")  # idempotent
    assert again["agents"][0]["new"] is False


def test_run_critic_diagnose_produce_a_spec(cli):
    run = cli.json("run")
    assert run["counts"] == {"pass": 24, "fail": 33, "error": 0}
    symptoms = cli.json("critic")
    assert {s["label"] for s in symptoms} == {"exception", "malformed_output", "wrong_value"}
    spec = cli.json("diagnose")
    labels = {p["label"]: p for p in spec["patterns"]}
    assert labels["exception"]["example_task_ids"][0].startswith("percent-")
    assert labels["malformed_output"]["count"] == 4
    assert "percent-1" in spec["target_tasks"] and "add-1" in spec["protected_tasks"]
    assert spec["failed_tasks"] == 11 and spec["total_tasks"] == 19


def test_rerun_of_finished_run_starts_a_new_run_but_resume_executes_nothing_twice(cli):
    first = cli.json("run", "--split", "holdout")
    second = cli.json("run", "--split", "holdout")
    assert second["id"] != first["id"] and second["executed"] == first["executed"] == 27


def test_clean_candidate_is_accepted_and_promoted(cli, workspace):
    made = cli.json("candidate", "--from", str(PATCHES / "01-percent-and-plain-digits.patch"))
    assert made["status"] == "candidate" and made["branch"] == "rc/calc/v2"
    assert made["intent"] == "Support percentages and print plain digits"
    gate = cli.json("gate", "--candidate", "v2")
    assert gate["decision"] == "accepted"
    assert gate["regressions"] == []
    assert sorted(gate["fixes"]) == [
        "add-big-2",
        "add-big-4",
        "add-big-6",
        "mul-big-2",
        "mul-big-4",
        "mul-big-6",
        "percent-2",
        "percent-4",
        "percent-6",
        "percent-8",
    ]
    # every number is backed by trial ids
    row = next(r for r in gate["tasks"] if r["task_id"] == "percent-2")
    for side in ("base", "candidate"):
        assert len(row[side]["trial_ids"]) == row[side]["trials"] + row[side]["errors"] >= 3
    moved = cli.json("promote", "--candidate", "v2")
    assert (moved["from_version"], moved["to_version"]) == (1, 2)
    log = {v["number"]: v for v in cli.json("log")}
    assert log[1]["status"] == "retired" and log[2]["status"] == "canonical"
    assert git(workspace, "rev-parse", "canonical/calc") == log[2]["git_sha"]
    assert git(workspace, "cat-file", "-t", "calc/v2") == "tag"  # annotated


def test_planted_regression_is_rejected_naming_the_broken_tasks(cli):
    result = cli("gate", "--candidate", str(DATA / "break-addition.patch"), "--json", code=1)
    import json

    report = json.loads(result.stdout)
    assert report["decision"] == "rejected"
    assert sorted(report["regressions"]) == ADD_GATE
    assert any("add-2" in reason for reason in report["reasons"])
    log = cli.json("log")
    assert log[-1]["status"] == "rejected" and log[-1]["reasons"]
    # the human report names them too
    shown = cli("show", f"v{log[-1]['number']}").stdout
    assert "REGRESSION" in shown and "add-4" in shown


def test_promote_iterations_runs_the_demo_loop(cli):
    steps = cli.json("promote", "--iterations", "2")
    assert [s["decision"] for s in steps] == ["accepted", "rejected"]
    assert steps[0]["promoted"] and not steps[1]["promoted"]
    assert sorted(steps[1]["regressions"]) == ["sub-2", "sub-4", "sub-6"]
    log = cli.json("log")
    assert [(v["number"], v["status"]) for v in log] == [(1, "retired"), (2, "canonical"), (3, "rejected")]
    assert log[2]["reasons"][0].startswith("confirmed regression on protected task(s)")  # protect_passing
    assert log[1]["reasons"][0].startswith("accepted by gate report")
    # nothing left to propose: a third iteration records no candidate
    more = cli.json("promote", "--iterations", "1", code=5)  # 5: nothing was promoted
    assert more[0]["candidate"] is None
    assert len(cli.json("log")) == 3


def test_the_loop_never_proposes_content_already_judged_and_says_why_it_stopped(cli, workspace):
    import shutil

    import yaml
    from conftest import commit_all

    cli.json("promote", "--iterations", "2")  # v2 accepted, v3 (02-true-division) rejected against v2
    shutil.copy(workspace / "specs/candidates/02-true-division.patch", workspace / "specs/candidates/03-again.patch")
    config = yaml.safe_load((workspace / "release.yaml").read_text())
    config["strategy"]["patches"].append("specs/candidates/03-again.patch")
    (workspace / "release.yaml").write_text(yaml.safe_dump(config))
    commit_all(workspace, "the same change, under another name")
    (step,) = cli.json("promote", "--iterations", "3", code=5)
    assert step["candidate"] is None and "already judged" in step["stopped"] and "v3" in step["stopped"]
    assert [v["number"] for v in cli.json("log")] == [1, 2, 3]  # nothing new recorded
    refused = cli("candidate", "--from", "specs/candidates/03-again.patch", code=2)
    assert "same content as v3" in refused.output


def test_diff_between_versions_that_ran_the_gate_split(cli):
    cli.json("promote", "--iterations", "2")
    table = cli.json("diff", "v1", "v2")
    assert table["counts"]["fix"] == 10 and "regression" not in table["counts"]
    table = cli.json("diff", "v2", "v3")
    assert sorted(table["regressions"]) == ["sub-2", "sub-4", "sub-6"]
    text = cli("diff", "v2", "v3").stdout
    assert "REGRESSION" in text


def test_rollback_is_recorded_like_a_promotion(cli, workspace):
    cli.json("promote", "--iterations", "1")
    moved = cli.json("rollback", "--reason", "customer report")
    assert (moved["from_version"], moved["to_version"]) == (2, 1)
    log = {v["number"]: v for v in cli.json("log")}
    assert log[1]["status"] == "canonical" and log[2]["status"] == "retired"
    assert git(workspace, "rev-parse", "canonical/calc") == log[1]["git_sha"]
    shown = cli.json("show", "v1")
    assert [m["kind"] for m in shown["head_moves"]] == ["init", "promote", "rollback"]
    assert shown["head_moves"][-1]["reason"] == "customer report"
    assert shown["head_moves"][-1]["actor"] == "tester"
    # v3 was never canonical: it cannot be rolled back to
    cli("rollback", "--to", "v1", code=2)


def test_candidate_from_a_branch(cli, workspace):
    base = git(workspace, "rev-parse", "HEAD")
    git(workspace, "checkout", "-q", "-b", "feature")
    ops = workspace / "agents" / "calc" / "formatting.py"
    ops.write_text(ops.read_text().replace('f"{value:,}"', "str(value)"))
    git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "Plain digits")
    git(workspace, "checkout", "-q", base)
    made = cli.json("candidate", "--from", "feature")
    assert made["intent"] == "Plain digits" and made["changed_files"] == ["agents/calc/formatting.py"]
    gate = cli.json("gate", "--candidate", "v2")
    assert gate["decision"] == "accepted" and all(t.endswith(("big-2", "big-4", "big-6")) for t in gate["fixes"])


def test_change_outside_editable_files_is_rejected_before_running(cli, workspace):
    git(workspace, "checkout", "-q", "-b", "sneaky")
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text(suite.read_text().replace("expected: 42", "expected: 43"))
    (workspace / "agents" / "calc" / "agent.yaml").write_text(
        (workspace / "agents" / "calc" / "agent.yaml").read_text() + "\n# widen\n"
    )
    git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "Edit the suite")
    git(workspace, "checkout", "-q", "-")
    result = cli("candidate", "--from", "sneaky", "--json", code=1)
    import json

    made = json.loads(result.stdout)
    assert made["status"] == "rejected"
    assert "specs/calc.yaml" in made["reasons"][0] and "agents/calc/agent.yaml" in made["reasons"][0]
    gate = cli.json("gate", "--candidate", f"v{made['number']}", code=1)
    assert gate["decision"] == "rejected"
    assert cli.json("promote", "--candidate", f"v{made['number']}", code=1)["decision"] == "rejected"
    runs = cli.json("show", f"v{made['number']}")["runs"]
    assert runs == []  # it never ran


def test_runs_are_reused_only_while_the_suite_split_is_unchanged(cli, workspace):
    """The gate reads the suite from the canonical commit; `release run` from the working tree."""
    from conftest import commit_all

    first = cli.json("gate", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    again = cli.json("gate", "--candidate", "v2")
    assert again["base_run"] == first["base_run"] and again["candidate_run"] == first["candidate_run"]
    suite = workspace / "specs" / "calc.yaml"
    suite.write_text(
        suite.read_text().replace("input: add 7 and 8\n  expected: 15", "input: add 7 and 9\n  expected: 16")
    )
    commit_all(workspace, "fix a task")
    # the gate judges with the canonical commit's suite, which did not change: its runs still count
    judged = cli.json("gate", "--candidate", "v2")
    assert judged["base_run"] == first["base_run"] and judged["candidate_run"] == first["candidate_run"]
    assert any("specs/calc.yaml" in note and "differ" in note for note in judged["notes"])
    # a run of the working tree's suite, whose gate split changed, is a new run
    assert cli.json("run", "--split", "gate")["id"] not in (first["base_run"], first["candidate_run"])
    dev = cli.json("run", "--split", "dev")
    assert cli.json("run", "--split", "dev")["id"] != dev["id"]  # a complete run is not resumed


def test_show_a_run_lists_its_trials(cli):
    run = cli.json("run", "--split", "holdout", "-k", "1")["id"]
    data = cli.json("show", "--run", str(run))
    assert data["split"] == "holdout" and len(data["trials"]) == 9
    failed = next(t for t in data["trials"] if t["task_id"] == "percent-5")
    assert failed["status"] == "fail" and failed["reason"] == "agent_exception"
    assert failed["trace"][0]["type"] == "exception"
    assert "percent-5" in cli("show", "--run", str(run)).stdout
