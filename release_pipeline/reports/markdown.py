"""Markdown renderings of specs, gate reports and flip tables (for terminals, files and CI summaries)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from release_pipeline.models import GatePlan, Sampling, Spec
from release_pipeline.trials.secondary import secondary_line

OUTCOME_MARK = {
    "fix": "FIX", "regression": "REGRESSION", "flaky": "flaky", "uncertain": "UNCERTAIN", "unchanged": "unchanged",
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


def flip_rows(tasks: list[dict[str, Any]], *, only_changes: bool = False, explain: bool = False) -> list[str]:
    """The per-task table: both versions' counts, the class, the largest drop not ruled out, the trial ids.

    With `explain`, every task and why the gate spent (or stopped spending) trials on it.
    """
    header = "| task | base | candidate | class | largest possible drop | trials |"
    lines = [header + (" why |" if explain else ""), "|---|---:|---:|---|---:|---|" + ("---|" if explain else "")]
    for row in tasks:
        if only_changes and not explain and row["outcome"] in ("unchanged", "flaky"):
            continue
        mark = OUTCOME_MARK.get(row["outcome"], row["outcome"])
        if row.get("protected"):
            mark += " (protected)"
        if row.get("candidate_errors_counted"):
            mark += " (candidate errors counted as fails)"
        ids = ",".join(str(i) for i in row["base"]["trial_ids"] + row["candidate"]["trial_ids"])
        line = f"| `{row['task_id']}` | {_rate(row['base'])} | {_rate(row['candidate'])} | {mark} | "
        line += f"{row['max_drop']:.2f} | {ids} |"
        lines.append(line + (f" {row.get('why', '')} |" if explain else ""))
    return lines


def _cost_line(cost: dict[str, Any]) -> str:
    per_fix = "n/a (no fix)" if cost["per_confirmed_fix"] is None else f"${cost['per_confirmed_fix']:.4f}"
    return (
        f"- cost: {cost['tokens']} tokens, ${cost['dollars']:.4f} over {cost['trials']} trials "
        f"({cost['llm_calls']} new LLM calls); per confirmed fix: {per_fix}"
    )


def _training_line(training: dict[str, Any]) -> str:
    """How a fine-tuned candidate was trained: method, steps, speed, and the share of useless GRPO groups."""
    s = training.get("summary", {})
    line = (
        f"- training: {training.get('method')} of {training.get('base_model')}, {s.get('steps')} steps on "
        f"{s.get('device')} ({s.get('steps_per_s')} steps/s, {s.get('tokens_per_s')} tokens/s)"
    )
    zero = training.get("frac_reward_zero_std")
    if zero:
        shown = ", ".join(f"{v:.2f}" for v in zero[:20]) + (", ..." if len(zero) > 20 else "")
        line += f"; frac_reward_zero_std per step (groups that taught nothing): {shown}"
    return line


def gate_markdown(body: dict[str, Any], *, explain: bool = False) -> str:
    """The gate report for people and CI summaries; with `explain`, every task and why trials were spent on it.

    A report a plugin's gate made may leave out the evidence the built-in gate records (bounds, trials, the
    paired test): only what it has is shown."""
    lines = [
        f"# Gate: {body['agent']} v{body['candidate']} ({body['candidate_sha'][:10]}) against canonical "
        f"v{body['base']} ({body['base_sha'][:10]}): {body['decision'].upper()}",
        "",
    ]
    if body["reason_codes"]:
        lines += ["## Reasons", "", *(f"- `{r['code']}`: {r['message']}" for r in body["reason_codes"]), ""]
    elif body["reasons"]:
        lines += ["## Reasons", "", *(f"- {r}" for r in body["reasons"]), ""]
    lines += ["## Summary", "", *_summary_lines(body), *_context_lines(body), ""]
    lines += ["## Tasks" if explain else "## Flips", "", *flip_rows(body["tasks"], only_changes=True, explain=explain)]
    return "\n".join([*lines, ""])


def _summary_lines(body: dict[str, Any]) -> list[str]:
    """What the gate concluded: the flips, the promotion bound, the paired test, the trials it took."""
    alignment = body["intent_alignment"]
    lines = [
        f"- confirmed fixes ({len(body['fixes'])}): {_ids(body['fixes'])}",
        f"- confirmed regressions ({len(body['regressions'])}): {_ids(body['regressions'])}",
        f"- uncertain, not shown safe ({len(body['uncertain'])}): {_ids(body['uncertain'])}",
        f"- flaky but safe ({len(body['flaky'])}): {_ids(body['flaky'])}",
        f"- unchanged: {len(body['unchanged'])} tasks",
    ]
    bounds, paired, trials, spent = body["bounds"], body["paired_test"], body["trials"], body["spent"]
    if bounds:
        held = "held" if bounds["promotion_bound_held"] else "not held"
        lines.append(
            f"- promotion bound {held}: the largest drop of any task not ruled out is "
            f"{bounds['largest_possible_drop']:.2f} (min_effect {bounds['min_effect']:g}, at a "
            f"{bounds['max_false_promote']:g} chance of error; regressions confirmed at a "
            f"{bounds['max_false_reject'] / 2:g} chance over all tasks)"
        )
    lines.append(
        f"- intent alignment: {'n/a' if alignment is None else f'{alignment:.0%} of fixes in the spec targets'}"
    )
    if paired:
        lines.append(
            f"- paired test over tasks: {paired['fail_to_pass']} fail->pass, {paired['pass_to_fail']} pass->fail, "
            f"net {paired['net']:+d}, exact McNemar p = {paired['p_value']:.3g}"
        )
    if trials and spent:
        lines.append(
            f"- trials used: base {trials['base']} (run #{body['base_run']}), candidate {trials['candidate']} "
            f"(run #{body['candidate_run']}); run by this gate: base {spent['base']}, candidate "
            f"{spent['candidate']}, {spent['extra']} of them adaptive, in {spent['rounds']} round(s)"
            f"{' (extra-trial budget exhausted)' if body['budget_exhausted'] else ''}"
        )
    return lines


# What the report says about how it was judged, each line shown when the report has it.
_CONTEXT_LINES: tuple[tuple[str, Any], ...] = (
    ("policy_hash", lambda v: f"- policy {v}"),
    ("sampling", lambda v: _sampling_line(v)),
    ("protected_because", lambda v: _protected_line(v)),
    ("secondary", lambda v: f"- {secondary_line(v)}"),
)
_COST_LINES: tuple[tuple[str, Any], ...] = (
    ("cost", lambda v: _cost_line(v)),
    ("price", lambda v: _price_line(v)),
    ("training", lambda v: _training_line(v)),
)


def _context_lines(body: dict[str, Any]) -> list[str]:
    """The policy, sampling, protection, secondary verifiers, notes, cost, price and training, where present."""
    lines = [render(body[key]) for key, render in _CONTEXT_LINES if body.get(key)]
    lines += [f"- note: {n}" for n in body["notes"]]
    return lines + [render(body[key]) for key, render in _COST_LINES if body.get(key)]


def _price_line(price: dict[str, Any]) -> str:
    expected = price["expected"]
    return (
        f"- priced before running ({price['sims']} simulated clean gates from the stored history): "
        f"{expected.get('base', 0):g} base and {expected.get('candidate', 0):g} candidate trials, "
        f"${price['dollars']:.4f}; every task settled in {price['settle_chance']:.0%} of them"
    )


def plan_markdown(plan: GatePlan) -> str:
    """`release gate --plan` for people: the expected cost per task class, and what the budget affords."""
    affordable = plan.min_effect_affordable
    lines = [
        f"# Gate price: {plan.agent} against canonical v{plan.base}, {plan.tasks} gate tasks",
        "",
        f"- expected new trials to show every task safe: base {plan.expected.get('base', 0):g}, candidate "
        f"{plan.expected.get('candidate', 0):g}; ${plan.dollars:.4f}",
        f"- settled within the budget ({plan.budget} extra trials) at min_effect {plan.min_effect:g}: "
        f"{plan.settle_chance:.0%} of {plan.sims} priced gates",
        "- smallest min_effect settled 90 % of the time: "
        + (f"{affordable:g}" if affordable is not None else "none of 0.1 to 0.9"),
        *(f"- note: {n}" for n in plan.notes),
        "",
        "| tasks | how many | base rate | base trials a task | candidate trials a task | $ a task |",
        "|---|---:|---|---:|---:|---:|",
        *(
            f"| {c.name} | {c.tasks} | {c.rates} | {c.base:g} | {c.candidate:g} | {c.dollars:.4f} |"
            for c in plan.classes
        ),
        "",
    ]
    return "\n".join(lines)


def _sampling_line(sampling: dict[str, dict[str, Any]]) -> str:
    def said(s: dict[str, Any]) -> str:
        return Sampling.from_dict(s).describe()

    return f"- sampling: base {said(sampling['base'])}; candidate {said(sampling['candidate'])}"


def _protected_line(why: dict[str, list[str]]) -> str:
    said = {"policy": "named by the policy", "spec": "named by the spec", "canonical_always_passed": "always passed"}
    parts = [f"{len(ids)} {said[k]} ({_ids(ids)})" for k, ids in why.items() if ids]
    return "- protected gate tasks: " + ("; ".join(parts) if parts else "none")


def write_report(state_dir: Path, stem: str, body: dict[str, Any], markdown: str) -> Path:
    """Keep a report as files too, `.release/reports/<stem>.json` and `.md`, for people and CI to pick up."""
    folder = state_dir / "reports"
    folder.mkdir(exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    (folder / f"{stem}.md").write_text(markdown, encoding="utf-8")
    return folder / f"{stem}.md"


def gate_junit(body: dict[str, Any]) -> str:
    """The gate as JUnit XML for CI: one test case per gate task; a confirmed regression fails, a task the gate
    could not show safe is skipped with the reason, every other task passes. A candidate rejected before running
    (it changed files it may not) is one failing case."""
    import xml.etree.ElementTree as ET

    name = f"{body['agent']} v{body['candidate']} against v{body['base']}"
    suite = ET.Element("testsuite", name=name)
    failures = skipped = 0
    for row in body.get("tasks", []):
        case = ET.SubElement(suite, "testcase", classname=f"{body['agent']}.gate", name=row["task_id"])
        base, cand = row["base"], row["candidate"]
        seen = f"base {base['passes']}/{base['trials']}, candidate {cand['passes']}/{cand['trials']}"
        if row["outcome"] == "regression":
            failures += 1
            ET.SubElement(case, "failure", message=f"confirmed regression: {seen}", type="regression")
        elif not row["safe"]:
            skipped += 1
            why = row.get("why") or "not shown free of a drop of min_effect"
            ET.SubElement(case, "skipped", message=f"uncertain ({seen}): {why}")
    if not body.get("tasks") and body["decision"] == "rejected":
        case = ET.SubElement(suite, "testcase", classname=f"{body['agent']}.gate", name="candidate")
        ET.SubElement(case, "failure", message="; ".join(body.get("reasons", [])), type="rejected")
        failures += 1
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name="release-pipeline gate")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
