"""BFCL's own ground truth, turned into the calls an agent would make (for tests and bench)."""

from typing import Any


def concrete(value: Any) -> Any:
    """One concrete value from a possible-answer value: in dicts, each key's first answer, optional ones left out."""
    if isinstance(value, dict):
        out = {}
        for key, allowed in value.items():
            options = allowed if isinstance(allowed, list) else [allowed]
            if options and "" not in options:
                out[key] = concrete(options[0])
        return out
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


def oracle_calls(ground_truth: list[dict], functions: list[dict]) -> list[dict[str, Any]]:
    calls = []
    for entry in ground_truth:
        ((name, params),) = entry.items()
        schema = next((f for f in functions if f["name"] == name), {})
        required = set(schema.get("parameters", {}).get("required", []))
        arguments = {}
        for param, allowed in params.items():
            given = [a for a in allowed if a != ""]
            # optional parameters are left out, as the benchmark allows, unless the schema requires them
            if given and ("" not in allowed or param in required):
                arguments[param] = concrete(given[0])
            elif allowed == []:  # no value listed for an array: the empty array
                arguments[param] = []
        calls.append({"name": name, "arguments": arguments})
    return calls


def solve(task_input, ctx):
    from release_pipeline.benchmarks.bfcl import CATEGORIES, entries

    for category in CATEGORIES:
        for row in entries(category):
            if row["id"] == ctx.task_id:
                return oracle_calls(row["ground_truth"], row["function"])
    raise KeyError(ctx.task_id)
