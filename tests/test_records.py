"""No output an agent returns can cost a trial its record, or another trial its own (issue 7, item 3)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import Cli, build_workspace

from release_pipeline.models import TrialRecord
from release_pipeline.store import Store
from release_pipeline.trials.fit import OUTPUT_LIMIT, recordable

ODD = (
    "import math\n"
    "class Thing:\n    pass\n"
    "def solve(x):\n"
    "    return [\n"
    "        {1, 2},\n"  # t0: a set
    "        b'bytes',\n"  # t1
    "        (i for i in range(3)),\n"  # t2: a generator
    "        Thing(),\n"  # t3: an object
    "        {'output': 2 * 4, 'tokens': 10 ** 30},\n"  # t4: passes, tokens out of range
    "        'nul\\x00inside',\n"  # t5
    "        {'output': math.nan, 'trace': [{'v': math.inf}]},\n"  # t6
    "        {'output': 14, 'tokens': 2 ** 40, 'cost': -1},\n"  # t7: passes
    "        'x' * (100 * 1024 * 1024),\n"  # t8: 100 MB
    "        'lone \\ud800 surrogate',\n"  # t9
    "        {'output': 20, 'trace': [{1, 2}, b'raw']},\n"  # t10: passes, odd trace
    "        22,\n"  # t11: passes
    "    ][x]\n"
)
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(12)]


@pytest.mark.parametrize("trusted", [False, True])
def test_odd_outputs_are_recorded_and_cost_no_other_trial(database, tmp_path, trusted):
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": ODD},
        tasks=TASKS,
        run={"repeats": 1, "concurrency": 12, "timeout_s": 60},
        manifest={"sandbox": {"memory_mb": 2048}},
        trusted=trusted,
    )
    out = Cli(root).json("run")
    assert out["counts"] == {"pass": 4, "fail": 8, "error": 0}, out
    trials = {t["task_id"]: t for t in Cli(root).json("show", "--run", str(out["id"]))["trials"]}
    assert len(trials) == 12
    for i in (0, 1, 2, 3):
        assert trials[f"t{i}"]["reason"] == "unrecordable_output", trials[f"t{i}"]
        assert isinstance(trials[f"t{i}"]["output"], str)  # its repr, for the critic to read
    assert trials["t4"]["status"] == "pass" and trials["t4"]["tokens"] == 0
    assert trials["t5"]["output"] == "nulinside"
    assert trials["t6"]["output"] == "nan" and trials["t6"]["trace"] == [{"v": "inf"}]
    assert trials["t7"]["status"] == "pass" and trials["t7"]["tokens"] == 0 and trials["t7"]["cost"] == 0
    assert trials["t8"]["output_size"] == 100 * 1024 * 1024 + 2 and len(trials["t8"]["output"]) == OUTPUT_LIMIT
    assert any("truncated" in note for note in trials["t8"]["notes"])
    assert "\ud800" not in trials["t9"]["output"]
    assert trials["t10"]["status"] == "pass" and len(trials["t10"]["trace"]) == 2
    assert Cli(root).json("show", "--run", str(out["id"]))["status"] == "complete"
    if database == "sqlite":
        assert (root / ".release" / "release.db").stat().st_size < 16 * 1024 * 1024


def test_a_batch_the_database_refuses_is_written_trial_by_trial(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.ensure_agent("a", "agents/a")
    version = store.create_version("a", status="candidate", parent_number=None, git_sha="0" * 40, content_hash="h")
    run = store.create_run(
        store.version_id("a", version.number), split="dev", repeats=1, seed=0, purpose="run", task_ids=[], suite=""
    )
    good = [TrialRecord(run, f"t{i}", 0, i, "pass", output=i) for i in range(5)]
    bad = TrialRecord(run, "bad", 0, 9, "pass", output={1, 2})  # bypassing `recordable`: JSON cannot hold it
    assert store.insert_trials([*good[:2], bad, *good[2:]]) == 6
    stored = {t.task_id: t for t in store.trials(run)}
    assert [stored[f"t{i}"].output for i in range(5)] == [0, 1, 2, 3, 4]
    assert stored["bad"].status == "error" and stored["bad"].reason == "unrecordable"
    assert store.insert_trials(good) == 0  # written once, never twice


def test_recordable_keeps_what_fits_and_says_what_it_changed():
    rec = recordable({"a": (1, 2), 3: [math.inf]}, [{"x": object()}], tokens=True, cost=float("nan"))
    assert rec.output == {"a": [1, 2], "3": ["inf"]} and not rec.unrecordable
    assert rec.trace[0]["x"].startswith("<object object")
    assert rec.tokens == 0 and rec.cost == 0.0 and len(rec.notes) == 4
    deep: list = []
    for _ in range(200):
        deep = [deep]
    assert "nesting" in recordable(deep, []).unrecordable
    assert json.dumps(recordable(deep, [deep]).trace)  # a trace is cut, never refused
