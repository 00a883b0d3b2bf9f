"""The Berkeley Function Calling Leaderboard (v4) as a suite, from the `bfcl-eval` package's data files.

Install the data with `pip install --no-deps bfcl-eval` (its declared dependencies are heavy and not
needed: only its JSON files are read). Suite reference `bfcl:` (every supported category) or
`bfcl:simple,parallel` (some of them), optionally `bfcl:simple@40` (the first 40 of each).

Supported single-turn categories: simple (simple_python), multiple, parallel, parallel_multiple,
live_simple and irrelevance. The i-th entry of a category is in split `dev` when i % 5 is 0 or 2, `gate`
when it is 1 or 3, `holdout` when it is 4.

A dev entry carries one right answer as calls (`metadata["reference"]`, see `reference_calls`), which candidate
strategies may learn from; gate and holdout entries never do.

The agent gets `{"question": [messages], "functions": [schemas]}` and answers with a list of calls,
`[{"name": ..., "arguments": {...}}]` (a prompt agent with tools does exactly that; BFCL's own
`[{"name": {...}}]` form and JSON text are accepted too). The verifier follows the benchmark's
documented rules (our code): the right function (a `.` in its name may be given as `_`, as tool-calling
APIs require); every required parameter present and no parameter the function does not have; each value
of the declared type (an integer where a float is expected is fine) and among the possible answers,
strings compared without case, spaces or `,./-_*^`; a parameter left out only where the possible answers
allow "" (optional); as many calls as expected, matched in any order for the parallel categories; and no
call at all for irrelevance. Where an entry's schema contradicts its own possible answers (a required
parameter they never list, an item type their values do not have, no value at all for an array, which we
read as the empty array: 4 entries of the 1,498), the answers win, so that every ground truth passes.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from release_pipeline.benchmarks import dev_reference, package_dir, split_for
from release_pipeline.errors import ConfigError
from release_pipeline.models import Suite, Task, Verdict
from release_pipeline.plugins.hookspecs import hookimpl

CATEGORIES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "live_simple": "live_simple",
    "irrelevance": "irrelevance",
}
PARALLEL = {"parallel", "parallel_multiple"}
TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list, "dict": dict,
    "any": object,
}  # fmt: skip
RUBRIC = "Call the given functions with the right arguments when they answer the question; call none otherwise."


def _data() -> Path:
    return package_dir("bfcl_eval", "--no-deps bfcl-eval") / "data"


@cache
def entries(category: str) -> tuple[dict[str, Any], ...]:
    """The entries of one category, each with its `ground_truth` (empty for irrelevance)."""
    name = f"BFCL_v4_{CATEGORIES[category]}.json"
    rows = [json.loads(line) for line in (_data() / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    answers: dict[str, Any] = {}
    possible = _data() / "possible_answer" / name
    if possible.exists():
        for line in possible.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    return tuple({**row, "ground_truth": answers.get(row["id"], [])} for row in rows)


def load(argument: str, root: Path) -> Suite:
    spec, _, limit_text = argument.partition("@")
    names = [c.strip() for c in spec.split(",") if c.strip()] or list(CATEGORIES)
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        raise ConfigError(f"bfcl suite: unknown category {unknown[0]!r} (supported: {', '.join(CATEGORIES)})")
    if limit_text and not limit_text.isdigit():
        raise ConfigError(f"bfcl suite: {limit_text!r} is not a number of entries")
    limit = int(limit_text) if limit_text else None
    tasks = []
    for category in names:
        for i, row in enumerate(entries(category)[:limit]):
            split = split_for(i)
            reference = dev_reference(split, reference_calls(row["ground_truth"], row["function"]))
            tasks.append(
                Task(
                    id=row["id"],
                    input={"question": row["question"][0], "functions": row["function"]},
                    split=split,
                    expected=row["ground_truth"],
                    verifier={"type": "bfcl"},
                    tags=(category,),
                    metadata={"category": category, **reference},
                )
            )
    return Suite(name="bfcl", tasks=tuple(tasks), rubric=RUBRIC, source="bfcl-eval")


def reference_calls(ground_truth: list[dict[str, Any]], functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One right answer of an entry as calls, `[{"name", "arguments"}]`: the first possible value of each
    parameter, an optional one (its answers allow "") left out unless the schema requires it; [] for irrelevance."""
    calls = []
    for entry in ground_truth:
        ((name, possible),) = entry.items()
        schema = next((f for f in functions if f["name"] == name), {})
        required = set(schema.get("parameters", {}).get("required", []))
        arguments = {}
        for param, values in possible.items():
            values = values if isinstance(values, list) else [values]
            given = [v for v in values if v != ""]
            if not values or (given and ("" not in values or param in required)):
                arguments[param] = given[0] if given else []  # no listed value: the empty array (see above)
        calls.append({"name": name, "arguments": arguments})
    return calls


# ----- reading the agent's calls -----------------------------------------------------------


def calls_of(output: Any) -> list[tuple[str, dict[str, Any]]] | None:
    """The agent's answer as (name, arguments) pairs; [] for no call; None when it is not a list of calls."""
    if output is None or output == "" or output == []:
        return []
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except (json.JSONDecodeError, RecursionError):
            return []  # plain text: the agent called nothing
    if isinstance(output, dict):
        output = [output]
    if not isinstance(output, list):
        return None
    calls = []
    for call in output:
        if not isinstance(call, dict):
            return None
        if "name" in call and isinstance(call.get("arguments", {}), dict):
            calls.append((str(call["name"]), dict(call.get("arguments") or {})))
        elif len(call) == 1 and isinstance(next(iter(call.values())), dict):  # BFCL's {name: {args}}
            name, args = next(iter(call.items()))
            calls.append((str(name), dict(args)))
        else:
            return None
    return calls


# ----- the rules ---------------------------------------------------------------------------

_STRIP = re.compile(r"[ ,./\-_*^]")


def standard(text: str) -> str:
    return _STRIP.sub("", text).lower().replace("'", '"')


def _same_name(got: str, want: str) -> bool:
    return got == want or got == want.replace(".", "_")


def _type_ok(value: Any, kind: str) -> bool:
    expected = TYPES.get(kind, object)
    if expected is object:
        return True
    if expected is int:
        return type(value) is int
    if expected is float:
        return type(value) in (int, float)
    return type(value) is expected


def _value_ok(value: Any, allowed: list[Any]) -> bool:
    """`value` is one of the possible answers (strings standardized, lists and dicts compared inside)."""
    if allowed == []:  # a few entries list no answer for an array parameter: the empty array
        return value == []
    for option in allowed:
        if option == "" and value != "":
            continue
        if _equal(value, option):
            return True
    return False


def _equal(value: Any, option: Any) -> bool:
    if isinstance(value, str) and isinstance(option, str):
        return standard(value) == standard(option)
    if isinstance(value, (list, tuple)) and isinstance(option, list):
        return len(value) == len(option) and all(_equal(v, o) for v, o in zip(value, option, strict=True))
    if isinstance(value, dict) and isinstance(option, dict):
        return _dict_ok(value, option)
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    if isinstance(value, (int, float)) and isinstance(option, (int, float)):
        return float(value) == float(option)
    return value == option


def _dict_ok(value: dict[str, Any], option: dict[str, Any]) -> bool:
    """A nested dict: each key's value among that key's possible answers, missing keys only if optional."""
    for key, got in value.items():
        if key not in option:
            return False
        allowed = option[key] if isinstance(option[key], list) else [option[key]]
        if not _value_ok(got, allowed):
            return False
    return all("" in (v if isinstance(v, list) else [v]) for k, v in option.items() if k not in value)


def check_call(call: tuple[str, dict[str, Any]], answer: dict[str, dict[str, list]], functions: list[dict]) -> str:
    """Why one call does not match one ground-truth entry ('' when it does)."""
    ((want, possible),) = answer.items()
    name, args = call
    if not _same_name(name, want):
        return f"called {name!r}, expected {want!r}"
    schema = next((f for f in functions if f["name"] == want), None)
    params = (schema or {}).get("parameters", {})
    properties, required = params.get("properties", {}), params.get("required", [])
    for param in required:
        # the possible answers are authoritative: a handful of entries require a parameter they never list
        if param not in args and param in possible:
            return f"{want}: missing required parameter {param!r}"
    for param, value in args.items():
        if param not in properties or param not in possible:
            return f"{want}: unexpected parameter {param!r}"
        if value is None and None in possible[param]:  # passing the default explicitly
            continue
        kind = properties[param].get("type", "any")
        if kind == "tuple" and isinstance(value, tuple):
            value = list(value)
        # a string where the answers hold one for a non-string parameter names a variable (`data['sales']`)
        variable = (
            isinstance(value, str) and kind != "string" and any(isinstance(a, str) and a != "" for a in possible[param])
        )
        # and where the data's schema contradicts its own answer, a value given verbatim in the answers stands
        variable = variable or any(type(a) is type(value) and a == value for a in possible[param])
        if not variable and not _type_ok(value, kind):
            return f"{want}: {param!r} should be {kind}, got {type(value).__name__}"
        item_kind = properties[param].get("items", {}).get("type") if kind in ("array", "tuple") else None
        if not variable and item_kind and any(not _type_ok(v, item_kind) for v in value):
            return f"{want}: {param!r} should hold {item_kind} values"
        if not _value_ok(value, possible[param]):
            return f"{want}: {param!r} = {value!r} is not among {possible[param]!r}"
    for param, allowed in possible.items():
        if param not in args and "" not in allowed:
            return f"{want}: parameter {param!r} left out, and it is not optional"
    return ""


def _match_all(calls: list, answers: list[dict], functions: list[dict]) -> str:
    """Every call matched to a distinct ground-truth entry, in any order ('' on success)."""
    if len(calls) != len(answers):
        return f"{len(calls)} call(s), expected {len(answers)}"

    def assign(i: int, free: frozenset[int]) -> bool:
        if i == len(calls):
            return True
        return any(not check_call(calls[i], answers[j], functions) and assign(i + 1, free - {j}) for j in free)

    if assign(0, frozenset(range(len(answers)))):
        return ""
    for call in calls:  # say what is wrong with the first call that matches nothing
        problems = [check_call(call, a, functions) for a in answers]
        if all(problems):
            return problems[0]
    return "the calls do not pair up with the expected ones"


def bfcl(options: dict[str, Any], root: Path):
    """Checks an agent's function calls against BFCL's possible answers."""

    def verify(task: Task, output: Any) -> Verdict:
        calls = calls_of(output)
        category = task.metadata.get("category", "simple")
        if calls is None:
            return Verdict(False, 0.0, "the answer is not a list of function calls", "unparseable")
        if category == "irrelevance":
            if calls:
                return Verdict(False, 0.0, f"called {calls[0][0]!r}, but no function fits the question", "mismatch")
            return Verdict(True, 1.0)
        functions = task.input["functions"]
        answers = task.expected
        if not calls:
            return Verdict(False, 0.0, "no function call", "empty")
        if category not in PARALLEL and len(calls) != 1:
            return Verdict(False, 0.0, f"{len(calls)} calls, expected exactly one", "mismatch")
        problem = _match_all(calls, answers, functions)
        return Verdict(not problem, 0.0 if problem else 1.0, problem, "mismatch" if problem else "ok")

    return verify


@hookimpl
def release_register_suite_loaders(register):
    register("bfcl", load)


@hookimpl
def release_register_verifiers(register):
    register("bfcl", bfcl)
