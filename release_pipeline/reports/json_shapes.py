"""The JSON shapes of every `--json` output, written from the records in `models/` (`docs/json.md`).

`python -m release_pipeline.reports.json_shapes > docs/json.md` regenerates the page; a test fails when a record changes
and the page was not regenerated.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import fields
from datetime import datetime
from typing import Any, Literal, Union

from release_pipeline import models
from release_pipeline.models import Record

# What each command prints under --json: the record, and whether it is a list of them.
OUTPUTS: tuple[tuple[str, type[Record], bool], ...] = (
    ("release init", models.InitResult, False),
    ("release run", models.Run, False),
    ("release critic", models.Symptom, True),
    ("release diagnose", models.Spec, False),
    ("release candidate", models.Candidate, False),
    ("release gate", models.GateReport, False),
    ("release gate --plan", models.GatePlan, False),
    ("release promote -c REF", models.HeadMove, False),
    ("release promote --iterations N", models.IterationSummary, True),
    ("release rollback", models.HeadMove, False),
    ("release log", models.VersionEntry, True),
    ("release show", models.VersionDetail, False),
    ("release show --run ID", models.Run, False),
    ("release diff", models.FlipTable, False),
    ("release doctor", models.DoctorReport, True),
    ("release plugins", models.PluginInfo, True),
)

INTRO = """\
# JSON shapes

Every command that takes `--json` prints one record (or a list of them) on stdout; these are the records, generated
from `release_pipeline/models/` by `python -m release_pipeline.reports.json_shapes`. Plugins receive
the same records as Python objects (`release_pipeline.Run`, `release_pipeline.GateReport`, ...), and
`Record.from_dict` reads one back.

Under `--json`, a command that fails prints nothing on stdout and one line on stderr: `{"error": ErrorReport}`
(see [ErrorReport](#errorreport)); its exit code is the one the command documents (2 for bad input).

| command | prints |
|---|---|
"""


def render() -> str:
    """The whole page."""
    lines = [INTRO.rstrip("\n")]
    for command, record, many in OUTPUTS:
        shape = f"list of {_link(record)}" if many else _link(record)
        note = " (when the gate does not accept: a [GateReport](#gatereport))" if command.endswith("-c REF") else ""
        lines.append(f"| `{command} --json` | {shape}{note} |")
    lines.append("")
    for record in _reachable([r for _, r, _ in OUTPUTS] + [models.ErrorReport]):
        lines += _section(record)
    return "\n".join(lines).rstrip("\n") + "\n"


def _reachable(roots: list[type[Record]]) -> list[type[Record]]:
    """The records, then every record their fields hold, each once, in the order first met."""
    seen: list[type[Record]] = []
    queue = list(roots)
    while queue:
        record = queue.pop(0)
        if record in seen:
            continue
        seen.append(record)
        for hint in typing.get_type_hints(record).values():
            queue += [r for r in _records_in(hint) if r not in seen]
    return seen


def _records_in(hint: Any) -> list[type[Record]]:
    if isinstance(hint, type) and issubclass(hint, Record):
        return [hint]
    return [r for arg in typing.get_args(hint) for r in _records_in(arg)]


def _section(record: type[Record]) -> list[str]:
    doc = " ".join(inspect.cleandoc(record.__doc__ or "").split())
    lines = [f"## {record.__name__}", "", doc, "", "| key | type |", "|---|---|"]
    hints = typing.get_type_hints(record)
    for f in fields(record):  # type: ignore[arg-type]
        if f.name in record.FLATTEN:
            lines.append(f"| (every key of {_link(hints[f.name])}) | |")
        else:
            lines.append(f"| `{f.metadata.get('key', f.name)}` | {_type(hints[f.name])} |")
    for key, name in record.COMPUTED.items():
        returns = typing.get_type_hints(getattr(record, name).fget)["return"]
        lines.append(f"| `{key}` | {_type(returns)} |")
    return [*lines, ""]


def _link(record: type[Record]) -> str:
    return f"[{record.__name__}](#{record.__name__.lower()})"


def _type(hint: Any) -> str:
    """A type as a JSON reader meets it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        named = [_type(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' for a in args)
    if origin in (tuple, list):
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"object of {_type(args[1])}"
    if isinstance(hint, type) and issubclass(hint, Record):
        return _link(hint)
    names = {int: "integer", float: "number", str: "string", bool: "boolean", datetime: "ISO 8601 time"}
    return names.get(hint, "any JSON value")


if __name__ == "__main__":
    print(render(), end="")
