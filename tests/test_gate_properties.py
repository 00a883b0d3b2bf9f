"""The gate's promises, checked on many simulated gates with known pass rates (the real planner and tests)."""

from __future__ import annotations

import random

import pytest
from gate_sim import decide, simulate

from release_pipeline.config.policy import GatePolicy

POLICY = GatePolicy()


def rates(rng: random.Random, tasks: int) -> list[float]:
    """A suite's base pass rates: mostly passing or failing always, some flaky, some nearly stable."""
    return [rng.choice((1.0, 1.0, 0.0, 0.9, 0.1, rng.uniform(0.3, 0.7))) for _ in range(tasks)]


@pytest.mark.slow
def test_a_task_that_did_not_change_is_rarely_confirmed_as_a_flip():
    """Same rates on both sides: confirmed regressions at most max_false_reject / 2 a gate, fixes alpha a task."""
    rng = random.Random(11)
    gates, tasks = 200, 8
    with_regression = fixes = 0
    for _ in range(gates):
        base = rates(rng, tasks)
        planned, _ = simulate(base, list(base), POLICY, rng, history=3)
        with_regression += any(r.outcome == "regression" for r in planned.rows)
        fixes += sum(r.outcome == "fix" for r in planned.rows)
    # the stated rates, with room for the simulation's own noise (about 3 standard errors)
    assert with_regression / gates <= POLICY.max_false_reject / 2 + 3 * (0.05 * 0.95 / gates) ** 0.5
    assert fixes / (gates * tasks) <= POLICY.alpha + 3 * (0.05 * 0.95 / (gates * tasks)) ** 0.5


@pytest.mark.slow
@pytest.mark.parametrize("drop", [(1.0, 0.0), (0.9, 0.4), (1.0, 0.5)])
def test_a_candidate_with_a_drop_of_min_effect_is_rarely_promoted(drop):
    """One task drops by min_effect (or all the way): promoted at most max_false_promote of the time."""
    rng = random.Random(5)
    gates, tasks, promoted, caught = 200, 8, 0, 0
    for _ in range(gates):
        base = rates(rng, tasks)
        cand = [1.0 if p == 0.0 else p for p in base]  # fixes too, so that only the drop can stop it
        base[0], cand[0] = drop
        planned, _ = simulate(base, cand, POLICY, rng, history=3)
        decision = decide(planned, POLICY)
        promoted += decision == "accepted"
        caught += planned.rows[0].outcome == "regression"
    assert promoted / gates <= POLICY.max_false_promote + 3 * (0.01 * 0.99 / gates) ** 0.5
    if drop == (1.0, 0.0):  # a hard regression: always caught, and named
        assert promoted == 0 and caught == gates


def test_a_clean_deterministic_candidate_is_accepted_without_waste():
    rng = random.Random(3)
    base = [1.0] * 30 + [0.0] * 10
    cand = [1.0] * 30 + [1.0] * 5 + [0.0] * 5
    planned, source = simulate(base, cand, POLICY, rng, history=12)
    assert decide(planned, POLICY) == "accepted"
    spent = source.spent()
    assert spent["candidate"] / len(base) <= 9  # nine passes rule out a drop to 0.5; failing tasks need three
    assert spent["base"] == 0  # the canonical version's stored trials were enough
