"""`release report`: an agent's release history as self-contained static HTML pages (no script, no font, nothing
fetched at view time), one folder that can be opened, copied or uploaded as a CI artifact.

- `<agent>.html`: the version line with each version's pass rate per split (an inline SVG chart) and head moves;
- `<agent>-v<N>.html`: one version: its latest gate (decision, reasons, bounds, cost, and the flip matrix: every
  task with both versions' pass counts, its class and the largest drop the evidence still allows), the failure
  patterns of the spec it was built from, its runs and its diff;
- `<agent>-run<ID>.html`: one run: every task's verdict per repeat, and the critic's symptoms.

Every page links to the others it names.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release_pipeline.reports.queries import show_version, version_line
from release_pipeline.trials.jobs import effective

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.models import GateReport, VersionInfo
    from release_pipeline.workspace import Workspace

SPLITS = ("dev", "gate", "holdout")
COLOURS = {"dev": "#4c78a8", "gate": "#f58518", "holdout": "#54a24b"}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.regression{background:#fbe3e3}.fix{background:#e3f6e3}.uncertain{background:#fff6d6}
.accepted{color:#1a7f37}.rejected{color:#c62828}.undecided{color:#9a6700}pre{background:#f6f8fa;padding:1em;
overflow:auto}code{background:#f6f8fa}td.pass{background:#e3f6e3}td.fail{background:#fbe3e3}td.error{background:#eee}
nav{margin-bottom:1em}
"""


def line_page(agent: str) -> str:
    return f"{agent}.html"


def page_name(agent: str, number: int) -> str:
    return f"{agent}-v{number}.html"


def run_page(agent: str, run_id: int) -> str:
    return f"{agent}-run{run_id}.html"


def write_site(ws: Workspace, agent: AgentConfig, folder: Path) -> None:
    """Every page of the agent: its line, each version, each run, written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = {line_page(agent.name): render_line(ws, agent)}
    for version in ws.store.versions(agent.name):
        pages[page_name(agent.name, version.number)] = render(ws, agent, version)
        for run in ws.store.runs_of(ws.store.version_id(agent.name, version.number)):
            pages[run_page(agent.name, run.id)] = render_run(ws, agent, run.id)
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")


def _page(title: str, agent: str, body: list[str]) -> str:
    nav = f'<nav><a href="{line_page(agent)}">{escape(agent)}: version line</a></nav>'
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{nav}{''.join(body)}</body></html>\n"
    )


def render_line(ws: Workspace, agent: AgentConfig) -> str:
    """The agent's page: the version line and every head move."""
    moves = "".join(
        f"<tr><td>{move.at:%Y-%m-%d %H:%M}</td><td>{escape(move.kind)}</td>"
        f"<td>{'' if not move.from_version else _version_link(agent.name, move.from_version)}</td>"
        f"<td>{_version_link(agent.name, move.to_version)}</td><td>{escape(move.actor)}</td>"
        f"<td>{escape(move.reason)}</td></tr>"
        for move in ws.store.head_moves(agent.name)
    )
    body = [f"<h1>{escape(agent.name)}</h1>", _line(ws, agent, current=0)]
    if moves:
        body.append(
            "<h2>Head moves</h2><table><tr><th>at</th><th>kind</th><th>from</th><th>to</th><th>by</th>"
            f"<th>reason</th></tr>{moves}</table>"
        )
    return _page(f"{agent.name}: version line", agent.name, body)


def _version_link(agent: str, number: int) -> str:
    return f'<a href="{page_name(agent, number)}">v{number}</a>'


def render_run(ws: Workspace, agent: AgentConfig, run_id: int) -> str:
    """One run's page: a row per task with its verdict per repeat, and the critic's symptoms."""
    run = ws.store.run(run_id)
    final = effective(ws.store.trials(run_id, with_trace=False)).values()
    verdicts: dict[str, dict[int, str]] = {}
    for trial in final:
        verdicts.setdefault(trial.task_id, {})[trial.repeat] = trial.status
    symptoms: dict[str, set[str]] = {}
    for symptom in ws.store.symptoms(run_id):
        symptoms.setdefault(symptom.task_id, set()).add(symptom.label)
    repeats = range(max((r + 1 for by in verdicts.values() for r in by), default=run.repeats))
    head = "".join(f"<th>r{r}</th>" for r in repeats)
    rows = []
    for task, by_repeat in sorted(verdicts.items()):
        cells = "".join(f'<td class="{by_repeat.get(r, "")}">{by_repeat.get(r, "")}</td>' for r in repeats)
        passes = sum(v == "pass" for v in by_repeat.values())
        labels = ", ".join(sorted(symptoms.get(task, ())))
        rows.append(
            f"<tr><td>{escape(task)}</td>{cells}<td>{passes}/{len(by_repeat)}</td><td>{escape(labels)}</td></tr>"
        )
    counts = ", ".join(f"{sum(t.status == s for t in final)} {s}" for s in ("pass", "fail", "error"))
    body = [
        f"<h1>{escape(agent.name)} run #{run_id}</h1>",
        f"<p>{_version_link(agent.name, run.version)} on {escape(run.split)}, {run.repeats} repeats "
        f"({escape(run.purpose)}, {escape(run.status)}): {counts}.</p>",
        f"<table><tr><th>task</th>{head}<th>passes</th><th>symptoms</th></tr>{''.join(rows)}</table>",
    ]
    return _page(f"{agent.name} run #{run_id}", agent.name, body)


def render(ws: Workspace, agent: AgentConfig, version: VersionInfo) -> str:
    """The whole page of one version."""
    detail = show_version(ws, agent, version)
    parts = [
        f"<h1>{escape(agent.name)} v{version.number} <small>{escape(version.status)}</small></h1>",
        f"<p>{escape(version.intent)}</p>",
        _line(ws, agent, version.number),
    ]
    if detail.gate_report is not None:
        parts.append(_gate(detail.gate_report))
    if detail.spec is not None and detail.spec.patterns:
        rows = "".join(
            f"<tr><td>{escape(p.label)}</td><td>{p.count}</td><td>{p.share:.0%}</td>"
            f"<td>{escape(p.intended_change)}</td></tr>"
            for p in detail.spec.patterns
        )
        parts.append(
            f"<h2>Failure patterns (spec #{detail.spec.id})</h2><table><tr><th>pattern</th><th>tasks</th>"
            f"<th>share</th><th>intended change</th></tr>{rows}</table>"
        )
    if detail.runs:
        runs = "".join(
            f'<li><a href="{run_page(agent.name, one.id)}">run #{one.id}</a>: {escape(one.split)} x{one.repeats} '
            f"({escape(one.purpose)}, {escape(one.status)})</li>"
            for one in detail.runs
        )
        parts.append(f"<h2>Runs</h2><ul>{runs}</ul>")
    if detail.diff:
        parts.append(f"<h2>Change</h2><pre>{escape(detail.diff)}</pre>")
    return _page(f"{agent.name} v{version.number}", agent.name, parts)


def _line(ws: Workspace, agent: AgentConfig, current: int) -> str:
    """The version line: a row per version with its pass rate per split, and the rates as a bar chart."""
    rows, rates = [], []
    for entry in version_line(ws, agent):
        v = entry.version
        rate = _pass_rates(ws, v)
        rates.append((v.number, rate))
        cells = "".join(f"<td>{'' if rate.get(s) is None else f'{rate[s]:.0%}'}</td>" for s in SPLITS)
        gate = "" if entry.gate is None else f"{entry.gate.decision} vs v{entry.gate.against}"
        name = f"v{v.number}" if v.number == current else _version_link(agent.name, v.number)
        rows.append(f"<tr><td>{name}</td><td>{escape(v.status)}</td>{cells}<td>{escape(gate)}</td></tr>")
    head = "".join(f"<th>{s}</th>" for s in SPLITS)
    table = f"<table><tr><th>version</th><th>status</th>{head}<th>gate decision</th></tr>{''.join(rows)}</table>"
    return f"<h2>Version line</h2>{_chart(rates)}{table}"


def _pass_rates(ws: Workspace, version: VersionInfo) -> dict[str, float | None]:
    """Share of passing effective trials in the version's latest complete run of each split."""
    vid = ws.store.version_id(version.agent, version.number)
    rates: dict[str, float | None] = {}
    for split in SPLITS:
        run = ws.store.latest_run(vid, split)
        if run is None:
            rates[split] = None
            continue
        judged = [t for t in effective(ws.store.trials(run.id, with_trace=False)).values() if t.status != "error"]
        rates[split] = sum(t.status == "pass" for t in judged) / len(judged) if judged else None
    return rates


def _chart(rates: list[tuple[int, dict[str, float | None]]]) -> str:
    """Grouped bars, one group per version, one bar per split that ran: an inline SVG."""
    bar, gap, height = 12, 16, 120
    width = len(rates) * (bar * len(SPLITS) + gap) + 40
    shapes = []
    for i, (number, rate) in enumerate(rates):
        x0 = 30 + i * (bar * len(SPLITS) + gap)
        for j, split in enumerate(SPLITS):
            value = rate.get(split)
            if value is None:
                continue
            h = value * height
            shapes.append(
                f'<rect x="{x0 + j * bar}" y="{10 + height - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                f'fill="{COLOURS[split]}"><title>v{number} {split}: {value:.0%}</title></rect>'
            )
        shapes.append(f'<text x="{x0}" y="{height + 26}" font-size="11">v{number}</text>')
    legend = " ".join(f'<span style="color:{COLOURS[s]}">&#9632; {s}</span>' for s in SPLITS)
    return (
        f'<svg role="img" aria-label="pass rate per split per version" width="{width}" height="{height + 32}">'
        f'<line x1="28" y1="10" x2="28" y2="{height + 10}" stroke="#999"/>'
        f'<text x="0" y="16" font-size="10">100%</text><text x="10" y="{height + 10}" font-size="10">0%</text>'
        f"{''.join(shapes)}</svg><p>{legend}</p>"
    )


def _gate(report: GateReport) -> str:
    """The gate: decision, reasons, bounds and cost, then the flip matrix."""
    reasons = "".join(f"<li><code>{escape(r.code)}</code> {escape(r.message)}</li>" for r in report.reason_codes)
    bounds = report.bounds
    sure = (
        ""
        if bounds is None
        else f"<p>Largest drop in pass rate any task could still have: {bounds.largest_possible_drop:.2f} (min_effect "
        f"{bounds.min_effect:g}, promotion bound {'held' if bounds.promotion_bound_held else 'not held'}; false "
        f"promotion at most {bounds.max_false_promote:g}, false rejection at most {bounds.max_false_reject:g}).</p>"
    )
    cost = "" if report.cost is None else f"<p>Cost: {report.cost.tokens} tokens, ${report.cost.dollars:.4f}.</p>"
    rows = "".join(_flip_row(r.to_dict()) for r in report.tasks)
    matrix = (
        "<table><tr><th>task</th><th>base</th><th>candidate</th><th>class</th><th>largest possible drop</th>"
        f"<th>why</th></tr>{rows}</table>"
    )
    return (
        f'<h2>Gate against v{report.base}: <span class="{report.decision}">{report.decision.upper()}</span></h2>'
        f"<p>{len(report.fixes)} confirmed fixes, {len(report.regressions)} confirmed regressions, "
        f"{len(report.uncertain)} uncertain.</p><ul>{reasons}</ul>{sure}{cost}<h3>Flip matrix</h3>{matrix}"
    )


def _flip_row(row: dict[str, Any]) -> str:
    base, cand = row["base"], row["candidate"]
    return (
        f'<tr class="{escape(row["outcome"])}"><td>{escape(row["task_id"])}</td>'
        f"<td>{base['passes']}/{base['trials']}</td><td>{cand['passes']}/{cand['trials']}</td>"
        f"<td>{escape(row['outcome'])}</td><td>{row['max_drop']:.2f}</td><td>{escape(row['why'])}</td></tr>"
    )
