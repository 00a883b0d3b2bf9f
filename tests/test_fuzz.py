"""Fuzzed files and arguments through the CLI: never a traceback, one error line, no record changed."""

from __future__ import annotations

import random
import shutil

import pytest
from conftest import Cli, build_workspace, commit_all, git
from fuzz_cases import apply, cases, invoke, judge, snapshot, to_json

SPLITS = ["dev", "dev", "gate", "gate"]
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": s} for i, s in enumerate(SPLITS)]
JSONL = "".join(
    f'{{"id": "t{i}", "input": {i}, "expected": {i * 2}, "split": "{s}"}}\n' for i, s in enumerate(["dev", "gate"])
)


def fuzz_base(root):
    """A workspace with a canonical version, a dev run, and a committed patch that makes a candidate."""
    build_workspace(
        root,
        agent_files={"agent.py": "def solve(x):\n    return x * 2 if x < 3 else 0\n"},
        tasks=TASKS,
        run={"repeats": 1, "concurrency": 2},
        extra={"specs/toy.jsonl": JSONL},
        trusted=True,
    )
    (root / "agents" / "toy" / "agent.py").write_text("def solve(x):\n    return x * 2\n")
    (root / "change.patch").write_text(git(root, "diff") + "\n")
    git(root, "checkout", "--", "agents")
    commit_all(root, "a patch")
    Cli(root).json("run", "-k", "1")
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return fuzz_base(tmp_path_factory.mktemp("fuzz") / "ws")


def run_case(case, base, where):
    root = where / f"case-{case.seed}"
    shutil.copytree(base, root, symlinks=True)
    rng = random.Random(case.seed)
    if case.file == "specs/toy.jsonl":  # point the agent at the JSONL suite, so it is the one read
        config = root / "release.yaml"
        config.write_text(config.read_text().replace("specs/toy.yaml", "specs/toy.jsonl"))
        commit_all(root, "jsonl suite")
    apply(case, root, rng)
    before = snapshot(root)
    code, _, err, escaped = invoke(root, case.argv)
    verdict = judge(code, err, escaped, before, snapshot(root))
    shutil.rmtree(root, ignore_errors=True)
    return verdict, code


@pytest.mark.slow
def test_fuzzed_inputs_never_give_a_traceback_or_lose_a_record(base, tmp_path):
    problems = []
    for case in cases(seed=7, count=120):
        verdict, code = run_case(case, base, tmp_path)
        if not verdict.ok:
            problems.append(to_json(case, verdict, code))
    assert not problems, "\n".join(problems[:10])
