"""Markdown renderings of specs, gate reports and flip tables (for terminals, files and CI summaries)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from release_pipeline.models import Spec

OUTCOME_MARK = {
    "fix": "FIX", "regression": "REGRESSION", "flaky": "flaky", "uncertain": "uncertain",
    "unchanged_pass": "pass", "unchanged_fail": "fail", "no_data": "no data",
}  # fmt: skip


def _ids(ids: list[str]) -> str:
    return ", ".join(f"`{i}`" for i in ids) if ids else "none"


def spec_markdown(spec: Spec) -> str:
    lines = [
        f"# Engineering spec: {spec.agent} v{spec.version}",
        "",
        f"From run #{spec.run_id} on the `{spec.split}` split: "
        f"{spec.failed_tasks} of {spec.total_tasks} tasks failing.",
        "",
        "## Dominant patterns",
        "",
        "| pattern | tasks | share of failures | examples | source |",
        "|---|---:|---:|---|---|",
    ]
    for p in spec.patterns:
        lines.append(f"| {p.label} | {p.count} | {p.share:.0%} | {_ids(p.example_task_ids)} | {p.source} |")
    lines += [
        "",
        "## Intended change",
        "",
        spec.intended_change,
        "",
        f"## Expected to flip fail -> pass ({len(spec.target_tasks)})",
        "",
        _ids(spec.target_tasks),
        "",
        f"## Must stay green ({len(spec.protected_tasks)})",
        "",
        _ids(spec.protected_tasks),
        "",
    ]
    return "\n".join(lines)


def _rate(side: dict[str, Any]) -> str:
    errors = f" (+{side['errors']} err)" if side["errors"] else ""
    return f"{side['passes']}/{side['trials']}{errors}"


def flip_rows(tasks: list[dict[str, Any]], *, only_changes: bool = False) -> list[str]:
    lines = ["| task | base | candidate | outcome | p (fix / regression) | trials |", "|---|---:|---:|---|---|---|"]
    for row in tasks:
        if only_changes and row["outcome"] in ("unchanged_pass", "unchanged_fail"):
            continue
        mark = OUTCOME_MARK.get(row["outcome"], row["outcome"])
        if row.get("protected"):
            mark += " (protected)"
        ids = ",".join(str(i) for i in row["base"]["trial_ids"] + row["candidate"]["trial_ids"])
        lines.append(
            f"| `{row['task_id']}` | {_rate(row['base'])} | {_rate(row['candidate'])} | {mark} | "
            f"{row['p_fix']:.3g} / {row['p_regression']:.3g} | {ids} |"
        )
    return lines


def _cost_line(cost: dict[str, Any]) -> str:
    per_fix = "n/a (no fix)" if cost["per_confirmed_fix"] is None else f"${cost['per_confirmed_fix']:.4f}"
    return (
        f"- cost: {cost['tokens']} tokens, ${cost['dollars']:.4f} over {cost['trials']} trials "
        f"({cost['llm_calls']} new LLM calls); per confirmed fix: {per_fix}"
    )


def gate_markdown(body: dict[str, Any]) -> str:
    verdict = "ACCEPTED" if body["decision"] == "accepted" else "REJECTED"
    paired = body["paired_test"]
    unchanged = sum(1 for r in body["tasks"] if r["outcome"] in ("unchanged_pass", "unchanged_fail"))
    lines = [
        f"# Gate: {body['agent']} v{body['candidate']} against canonical v{body['base']}: {verdict}",
        "",
    ]
    if body["reasons"]:
        lines += ["## Reasons", "", *(f"- {r}" for r in body["reasons"]), ""]
    alignment = body["intent_alignment"]
    lines += [
        "## Summary",
        "",
        f"- confirmed fixes ({len(body['fixes'])}): {_ids(body['fixes'])}",
        f"- confirmed regressions ({len(body['regressions'])}): {_ids(body['regressions'])}",
        f"- flaky or unconfirmed ({len(body['flaky'])}): {_ids(body['flaky'])}",
        f"- unchanged: {unchanged} tasks",
        f"- intent alignment: {'n/a' if alignment is None else f'{alignment:.0%} of fixes in the spec targets'}",
        f"- paired test over tasks: {paired['fail_to_pass']} fail->pass, {paired['pass_to_fail']} pass->fail, "
        f"net {paired['net']:+d}, exact McNemar p = {paired['p_value']:.3g}",
        f"- trials: base run #{body['base_run']}, candidate run #{body['candidate_run']}; "
        f"{body['extra_trials']} adaptive extra trials{' (budget exhausted)' if body['budget_exhausted'] else ''}; "
        f"{body['errors_excluded']} error trials excluded",
        f"- policy {body['policy_hash']}: alpha {body['policy']['alpha']} one-sided Fisher exact per task, "
        f"{body['policy']['repeats']} repeats (up to {body['policy']['max_repeats']})",
        *(f"- note: {n}" for n in body["notes"]),
        *([_cost_line(body["cost"])] if body.get("cost") else []),
        "",
        "## Flips",
        "",
        *flip_rows(body["tasks"], only_changes=True),
        "",
    ]
    return "\n".join(lines)


def write_report(state_dir: Path, stem: str, body: dict[str, Any], markdown: str) -> Path:
    """Keep a report as files too, `.release/reports/<stem>.json` and `.md`, for people and CI to pick up."""
    folder = state_dir / "reports"
    folder.mkdir(exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    (folder / f"{stem}.md").write_text(markdown, encoding="utf-8")
    return folder / f"{stem}.md"
