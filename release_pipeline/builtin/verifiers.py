"""Built-in verifiers: exact, normalized text, regex, numeric tolerance, JSON schema, Python function."""

from __future__ import annotations

import inspect
import json
import math
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from release_pipeline.errors import ConfigError
from release_pipeline.loading import load_callable
from release_pipeline.models import Task, Verdict
from release_pipeline.plugins.hookspecs import hookimpl

Verify = Callable[[Task, Any], Verdict]

_PUNCT = str.maketrans("", "", string.punctuation)


def _empty(output: Any) -> bool:
    return output is None or (isinstance(output, str) and not output.strip())


def _brief(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _compare(equal: Callable[[Any, Any], bool]) -> Verify:
    def verify(task: Task, output: Any) -> Verdict:
        if _empty(output):
            return Verdict(False, 0.0, "empty output", "empty")
        if equal(output, task.expected):
            return Verdict(True, 1.0)
        return Verdict(False, 0.0, f"expected {_brief(task.expected)}, got {_brief(output)}", "mismatch")

    return verify


def exact(options: dict[str, Any], root: Path) -> Verify:
    """Passes when the output equals the expected value (strings compared as they are)."""
    return _compare(lambda out, exp: out == exp or (isinstance(exp, str) and str(out) == exp))


def normalize_text(value: Any) -> str:
    """Case-folded, punctuation stripped, whitespace collapsed."""
    return " ".join(str(value).casefold().translate(_PUNCT).split())


def normalized(options: dict[str, Any], root: Path) -> Verify:
    """Passes when output and expected agree after case folding, dropping punctuation and extra spaces."""
    return _compare(lambda out, exp: normalize_text(out) == normalize_text(exp))


def contains(options: dict[str, Any], root: Path) -> Verify:
    """Passes when the expected answer appears in the output as whole words (after case and punctuation)."""

    def found(out: Any, exp: Any) -> bool:
        want = normalize_text(exp)
        return bool(want) and f" {want} " in f" {normalize_text(out)} "

    return _compare(found)


def regex(options: dict[str, Any], root: Path) -> Verify:
    """Passes when the output matches `pattern` (default: the task's expected value).

    In full by default; anywhere with `search: true`; `ignore_case: true` as it says.
    """
    flags = re.IGNORECASE if options.get("ignore_case") else 0
    fixed = options.get("pattern")
    try:
        compiled = re.compile(fixed, flags) if fixed else None
    except re.error as exc:
        raise ConfigError(f"regex verifier: bad pattern {fixed!r}: {exc}") from None
    search = bool(options.get("search"))

    def verify(task: Task, output: Any) -> Verdict:
        if _empty(output):
            return Verdict(False, 0.0, "empty output", "empty")
        pattern = compiled or re.compile(str(task.expected), flags)
        text = str(output)
        hit = pattern.search(text) if search else pattern.fullmatch(text.strip())
        if hit:
            return Verdict(True, 1.0)
        return Verdict(False, 0.0, f"{_brief(text)} does not match /{pattern.pattern}/", "mismatch")

    def check_task(task: Task) -> None:
        if compiled is None:
            try:
                re.compile(str(task.expected), flags)
            except re.error as exc:
                raise ConfigError(f"task {task.id}: expected value is not a regular expression: {exc}") from None

    verify.check_task = check_task  # type: ignore[attr-defined]
    return verify


def parse_number(value: Any) -> float | None:
    """A number from an int, a float or a plain numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def numeric(options: dict[str, Any], root: Path) -> Verify:
    """Passes when the output is a number within `abs_tol` / `rel_tol` of the expected one."""
    try:
        abs_tol = float(options.get("abs_tol", 1e-9))
        rel_tol = float(options.get("rel_tol", 1e-9))
    except (TypeError, ValueError):
        raise ConfigError("numeric verifier: abs_tol and rel_tol must be numbers") from None

    def verify(task: Task, output: Any) -> Verdict:
        if _empty(output):
            return Verdict(False, 0.0, "empty output", "empty")
        got = parse_number(output)
        if got is None:
            return Verdict(False, 0.0, f"output {_brief(output)} is not a number", "unparseable")
        want = parse_number(task.expected)
        if want is None:
            raise ConfigError(f"task {task.id}: expected value {task.expected!r} is not a number")
        if math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
            return Verdict(True, 1.0)
        return Verdict(False, 0.0, f"expected {want:g}, got {got:g}", "mismatch")

    def check_task(task: Task) -> None:
        if parse_number(task.expected) is None:
            raise ConfigError(f"task {task.id}: expected value {task.expected!r} is not a number")

    verify.check_task = check_task  # type: ignore[attr-defined]
    return verify


def json_schema(options: dict[str, Any], root: Path) -> Verify:
    """Passes when the output (a JSON value, or a string holding one) is valid against a JSON schema.

    The schema is the `schema` option, or else the task's expected value.
    """
    import jsonschema

    fixed = options.get("schema")

    def verify(task: Task, output: Any) -> Verdict:
        if _empty(output):
            return Verdict(False, 0.0, "empty output", "empty")
        value = output
        if isinstance(output, str):
            try:
                value = json.loads(output)
            except json.JSONDecodeError as exc:
                return Verdict(False, 0.0, f"output is not valid JSON: {exc.msg}", "unparseable")
            except RecursionError:
                return Verdict(False, 0.0, "output is JSON nested too deeply", "unparseable")
        schema = fixed if fixed is not None else task.expected
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
        if error is None:
            return Verdict(True, 1.0)
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Verdict(False, 0.0, f"schema violation at {where}: {error.message}", "schema_violation")

    def check_task(task: Task) -> None:
        schema = fixed if fixed is not None else task.expected
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as exc:
            raise ConfigError(f"task {task.id}: not a valid JSON schema: {exc.message}") from None

    verify.check_task = check_task  # type: ignore[attr-defined]
    return verify


def python(options: dict[str, Any], root: Path) -> Verify:
    """Calls `function: module:function` with (task, output).

    It may return a bool, a score in [0, 1] (passing at 1), a `(passed, feedback)`
    pair, or a `Verdict`. Modules are looked up in the workspace first.
    """
    target = options.get("function")
    if not target:
        raise ConfigError("python verifier needs `function: module:function`")
    fn = load_callable(target, root, what="verifier function")
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        raise ConfigError(f"verifier function {target!r} must take (task, output)") from None
    except ValueError:  # no signature to inspect (a builtin): trust it
        pass

    def verify(task: Task, output: Any) -> Verdict:
        result = fn(task, output)
        if isinstance(result, Verdict):
            return result
        if isinstance(result, tuple):
            passed, feedback = result
            return Verdict(bool(passed), 1.0 if passed else 0.0, str(feedback), "ok" if passed else "mismatch")
        if isinstance(result, bool):
            return Verdict(
                result, float(result), "" if result else "rejected by verifier function", "ok" if result else "mismatch"
            )
        score = float(result)
        return Verdict(score >= 1.0, score, f"score {score:g}", "ok" if score >= 1.0 else "mismatch")

    return verify


@hookimpl
def release_register_verifiers(register):
    for factory in (exact, normalized, contains, regex, numeric, json_schema, python):
        register(factory.__name__, factory)
