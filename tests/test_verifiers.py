"""The built-in verifiers and their reason codes (which the critic reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from release_pipeline.builtin import verifiers as v
from release_pipeline.errors import ConfigError
from release_pipeline.models import Task


def check(factory, expected, output, options=None, root=Path(".")):
    return factory(options or {}, root)(Task("t", "in", "dev", expected=expected), output)


def test_exact():
    assert check(v.exact, "Paris", "Paris").passed
    assert check(v.exact, 4, 4).passed and check(v.exact, "4", 4).passed
    verdict = check(v.exact, "Paris", "paris")
    assert not verdict.passed and verdict.reason == "mismatch" and "Paris" in verdict.feedback
    assert check(v.exact, "Paris", "  ").reason == "empty"


def test_normalized():
    assert check(v.normalized, "Paris", "  paris. ").passed
    assert check(v.normalized, "New York", "new   york!").passed
    assert not check(v.normalized, "Paris", "Lyon").passed


def test_regex():
    assert check(v.regex, r"\d{3}-\d{4}", "555-1234").passed
    assert not check(v.regex, r"\d{3}", "1234").passed  # full match by default
    assert check(v.regex, None, "the code is 1234", {"pattern": r"\d{4}", "search": True}).passed
    assert check(v.regex, "yes", "YES", {"pattern": "yes", "ignore_case": True}).passed
    with pytest.raises(ConfigError):
        v.regex({"pattern": "("}, Path("."))


def test_numeric():
    assert check(v.numeric, 3.5, "3.5").passed
    assert check(v.numeric, 1 / 3, 0.3333333, {"abs_tol": 1e-6}).passed
    assert not check(v.numeric, 1 / 3, 0.33, {"abs_tol": 1e-6}).passed
    assert check(v.numeric, 1000, "1,000").reason == "unparseable"
    assert check(v.numeric, 1000, "").reason == "empty"
    assert check(v.numeric, 10, 12).reason == "mismatch"
    assert not check(v.numeric, 1, True).passed


def test_json_schema():
    schema = {"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}}
    assert check(v.json_schema, schema, '{"name": "x", "age": 3}').passed
    assert check(v.json_schema, schema, {"name": "x"}).passed
    bad = check(v.json_schema, schema, '{"age": "3"}')
    assert bad.reason == "schema_violation"
    assert check(v.json_schema, schema, "{not json").reason == "unparseable"
    assert check(v.json_schema, None, "[1]", {"schema": {"type": "array"}}).passed


def test_python_function(tmp_path):
    (tmp_path / "checks.py").write_text(
        "def even(task, output):\n    return int(output) % 2 == 0\n"
        "def half(task, output):\n    return 0.5\n"
        "def explained(task, output):\n    return (False, 'too long')\n"
    )
    assert check(v.python, None, "4", {"function": "checks:even"}, tmp_path).passed
    assert not check(v.python, None, "3", {"function": "checks:even"}, tmp_path).passed
    half = check(v.python, None, "x", {"function": "checks:half"}, tmp_path)
    assert not half.passed and half.score == 0.5
    assert check(v.python, None, "x", {"function": "checks:explained"}, tmp_path).feedback == "too long"
    with pytest.raises(ConfigError, match="no callable"):
        v.python({"function": "checks:nope"}, tmp_path)
    with pytest.raises(ConfigError, match="module:function"):
        v.python({"function": "checks"}, tmp_path)
