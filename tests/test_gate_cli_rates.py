"""The gate through the real CLI on an agent whose per-task pass rates are known: 60 gate tasks, a sixth of them flaky.

The agent passes task x with probability RATES[x], drawn from `random.Random(f"{SALT}:{ctx.seed}")`; every
candidate gets a SALT of its own, so its trials are independent of the base's and of other candidates' (the
hard case for the gate: no pair agrees by construction). The canonical version's gate trials are stored and
grow from gate to gate, as in real use. `bench/gate_cli.py` runs the same with more gates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli, build_workspace, change_agent

FLAKY, FIXED, FAILING, PASSING = range(0, 10), range(10, 18), range(18, 30), range(30, 59)
SOFT, HARD = 59, 30  # the soft regression's task passes 0.9 on the base; the hard one's always


def base_rates() -> dict[int, float]:
    rates = {x: 0.5 for x in FLAKY} | {x: 0.0 for x in (*FIXED, *FAILING)} | {x: 1.0 for x in PASSING}
    return rates | {SOFT: 0.9}


def candidate_rates(kind: str) -> dict[int, float]:
    rates = base_rates() | {x: 1.0 for x in FIXED}
    if kind == "soft":
        rates[SOFT] = 0.4
    elif kind == "hard":
        rates[HARD] = 0.0
    return rates


def agent(rates: dict[int, float], salt: int) -> dict[str, str]:
    return {
        "agent.py": (
            "import random\n\n"
            f"RATES = {json.dumps({str(k): v for k, v in rates.items()})}\n"
            f"SALT = {salt}\n\n\n"
            "def solve(x, ctx):\n"
            "    passed = random.Random(f'{SALT}:{ctx.seed}').random() < RATES[str(x)]\n"
            "    return x * 2 if passed else -1\n"
        )
    }


TASKS = [{"id": f"t{x:02d}", "input": x, "expected": x * 2, "split": "gate"} for x in range(60)] + [
    {"id": "d0", "input": 0, "expected": 0, "split": "dev"}
]


def workspace(root: Path) -> Path:
    return build_workspace(root, agent_files=agent(base_rates(), 0), tasks=TASKS, trusted=True)


def gate_once(root: Path, kind: str, salt: int) -> dict:
    """Gate one candidate of `kind` (clean, soft, hard) with its own SALT; the report."""
    branch = change_agent(root, agent(candidate_rates(kind), salt), f"{kind} candidate {salt}")
    return Cli(root).json("gate", "--candidate", branch, code=None)


@pytest.mark.slow
def test_sampling_agent_with_a_sixth_flaky_is_accepted_and_regressions_are_not(tmp_path):
    root = workspace(tmp_path / "ws")
    clean = [gate_once(root, "clean", salt) for salt in (1, 2)]
    soft = gate_once(root, "soft", 3)
    hard = gate_once(root, "hard", 4)
    assert [r["decision"] for r in clean] == ["accepted", "accepted"], [r["reasons"] for r in clean]
    assert soft["decision"] != "accepted" and hard["decision"] != "accepted"
    assert f"t{HARD:02d}" in hard["regressions"] or f"t{HARD:02d}" in hard["uncertain"]
    assert set(clean[0]["fixes"]) <= {f"t{x:02d}" for x in FIXED} and clean[0]["fixes"]
    flaky_rows = [r for r in clean[1]["tasks"] if int(r["task_id"][1:]) in FLAKY]
    assert all(r["safe"] for r in flaky_rows)
    # the second gate reused the first one's base trials: it ran fewer base trials than the first
    assert clean[1]["spent"]["base"] < clean[0]["spent"]["base"]
