"""The pairs a task needs, from its base pass rate, by simulating the gate's own safety test.

The planner (`plan.py`) uses this for each task's cap (a clean task like it is shown safe within the cap almost
always, so a task still open there likely has a drop) and for the size of its next step; the pricing of a whole
gate (`cost.py`) for its per-task figures. The test simulated is `stats.safety_margin`, on clean pairs: base and
candidate pass independently at the same rate p (a shared seed only makes pairs agree more often, which makes
them cheaper). Simulations are seeded, so the same policy prices the same task the same way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from release_pipeline.gate.stats import Pairs, safety_margin

PATHS = 400
HORIZON = 400  # pairs; a task that needs more is priced at the horizon
RATE_STEP = 0.05  # rates are priced on this grid


@dataclass(frozen=True)
class Need:
    """Pairs a clean task needs to be shown safe: on average, at the median, and the cap: twice its 99th
    percentile (a clean task goes past that about once in many thousands; the simulation cannot see rarer)."""

    mean: float
    median: int
    cap: int


@lru_cache(maxsize=4096)
def _need(rate: float, min_effect: float, level: float) -> Need:
    rng = random.Random(f"{rate}:{min_effect}:{level}")
    stops = []
    for _ in range(PATHS):
        down = same = up = passes = 0
        n = 0
        while n < HORIZON:
            n += 1
            b, c = rng.random() < rate, rng.random() < rate
            down, same, up, passes = down + (b and not c), same + (b == c), up + (c and not b), passes + b
            if safety_margin(Pairs(down, same, up, passes, n), min_effect, level) >= 0:
                break
        stops.append(n)
    stops.sort()
    q99 = stops[math.ceil(0.99 * len(stops)) - 1]
    return Need(sum(stops) / len(stops), stops[len(stops) // 2], q99 if q99 == stops[0] else 2 * q99)


def pairs_needed(rate: float, min_effect: float, level: float) -> Need:
    """The pairs a clean task whose versions both pass at `rate` needs before it is shown safe."""
    rate = min(1.0, max(0.0, round(rate / RATE_STEP) * RATE_STEP))
    return _need(round(rate, 4), min_effect, level)


def hardest_rate(passes: int, trials: int, z: float = 2.0) -> float:
    """The base rate, among those the base's trials allow (a Wilson interval), that costs most to show safe.

    A flaky task whose first three base trials all passed may still be a coin: it is priced as one until its
    trials say otherwise, so it is never given up on a few trials in.
    """
    if trials == 0:
        return 0.5
    p = passes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    lo, hi = centre - half, centre + half
    return min(max(0.5, lo), hi)
