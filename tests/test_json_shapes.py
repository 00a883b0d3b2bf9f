"""Every `--json` output is exactly one record (or a list of them) of `models/`: read back, it writes itself."""

from __future__ import annotations

from conftest import REPO

from release_pipeline import models
from release_pipeline.reports.json_shapes import OUTPUTS

PATCHES = REPO / "specs" / "candidates"


def same_shape(record: type[models.Record], data: dict) -> bool:
    return record.from_dict(data).to_dict() == data


def test_every_json_output_is_its_documented_record(cli):
    printed = {
        "release run": cli.json("run", "-k", "1"),
        "release critic": cli.json("critic"),
        "release diagnose": cli.json("diagnose"),
        "release candidate": cli.json("candidate", "--from", str(PATCHES / "01-percent-and-plain-digits.patch")),
        "release gate": cli.json("gate", "--candidate", "v2"),
        "release promote -c REF": cli.json("promote", "--candidate", "v2"),
        "release rollback": cli.json("rollback"),
        "release log": cli.json("log"),
        "release show": cli.json("show", "v2"),
        "release diff": cli.json("diff", "v1", "v2"),
        "release doctor": cli.json("doctor"),
        "release plugins": cli.json("plugins"),
    }
    printed["release show --run ID"] = cli.json("show", "--run", str(printed["release run"]["id"]))
    kinds = {command: (record, many) for command, record, many in OUTPUTS}
    for command, data in printed.items():
        record, many = kinds[command]
        for one in data if many else [data]:
            assert same_shape(record, one), f"{command} --json is not a {record.__name__}"
    assert printed["release show"]["gate_report"]["decision"] == printed["release gate"]["decision"]
    assert printed["release show --run ID"]["trials"], "a run shown in full lists its trials"


def test_records_round_trip_through_json():
    row = models.TaskRow(
        "t", models.TaskOutcome("t", 2, 3, 0, ("x",), (1, 2, 3)), models.TaskOutcome("t"), "fix", True, 0.1
    )
    report = models.GateReport(
        "a",
        1,
        2,
        "accepted",
        id=7,
        tasks=(row,),
        sampling={"base": models.Sampling(0.0)},
        reason_codes=(models.Reason("x", "y", ("t",)),),
    )
    data = report.to_dict()
    assert data["tasks"][0]["candidate_errors_counted"] is False and data["tasks"][0]["base"]["class"] == "flaky"
    assert data["sampling"]["base"]["greedy"] is True
    assert models.GateReport.from_dict(data) == report
