"""The information floor of the gate's safety question: the exact fixed-sample test, for bench/gate_quality.py.

For one task, with the base's pass rate p and the candidate's q, `m` base trials and `n` candidate trials
(independent binomials), the test of "q <= p - d" orders the outcomes by the likelihood ratio of the true
rates against the null's most likely pair (the most powerful ordering for those rates, which a real test
cannot know: the floor is optimistic) and takes the largest rejection region whose chance under every
(p, p - d) on the null's boundary is at most `level` (an exact unconditional test). The floor of a task
is the fewest new trials (base beyond its stored history, plus candidate) after which this test says "safe"
with the power asked for: what a design that knew the rates in advance, and looked once, would spend.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.stats import binom

GRID = np.linspace(0.0, 1.0, 81)


@cache
def _region(m: int, n: int, p1: float, q1: float, d: float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The rejection region of the exact test for (m, n): arrays of (base passes, candidate passes)."""
    kb, kc = np.meshgrid(np.arange(m + 1), np.arange(n + 1), indexing="ij")
    ps = GRID[GRID >= d - 1e-12]
    null = binom.pmf(kb.ravel()[:, None], m, ps[None, :]) * binom.pmf(kc.ravel()[:, None], n, (ps - d)[None, :])
    alt = binom.pmf(kb.ravel(), m, p1) * binom.pmf(kc.ravel(), n, q1)
    with np.errstate(divide="ignore"):
        t = np.log(alt) - np.log(null.max(axis=1))
    order = np.argsort(-t, kind="stable")
    kb_o, kc_o, t_o = kb.ravel()[order], kc.ravel()[order], t[order]
    prob = null[order]
    size = np.cumsum(prob, axis=0).max(axis=1)
    ok = size <= level
    # a prefix ending inside a run of tied statistics would split them: stop before the tie
    cut = int(np.argmin(ok)) if not ok.all() else len(ok)
    while 0 < cut < len(t_o) and np.isclose(t_o[cut - 1], t_o[cut]):
        cut -= 1
    return kb_o[:cut], kc_o[:cut]


def power(m: int, n: int, p: float, q: float, d: float, level: float) -> float:
    """The chance the exact fixed-sample test with m base and n candidate trials shows the task safe."""
    kb, kc = _region(m, n, p, q, d, level)
    return float((binom.pmf(kb, m, p) * binom.pmf(kc, n, q)).sum())


@cache
def floor(p: float, q: float, history: int, d: float, level: float, want: float, most: int = 150) -> int:
    """The fewest new trials (base past `history`, plus candidate, at least one) for `want` power."""
    best = None
    for n in range(1, most + 1):
        for extra in sorted({0, 1, 2, 4, 8, 12, 16, 24, 32, 48, max(0, n - history) // 2, max(0, n - history)}):
            if best is not None and n + extra >= best:
                continue
            if power(history + extra, n, p, q, d, level) >= want:
                best = n + extra
        if best is not None and n >= best:
            break
    return best if best is not None else 2 * most
