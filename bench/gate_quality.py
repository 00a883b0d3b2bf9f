"""How often the gate decides wrong, and what it spends, measured on candidates whose per-task pass rates are known.

    .venv/bin/python bench/gate_quality.py [--gates 200] [--seed 1] [--only TEXT] [--compare] [--paths 2000]

Each simulated gate drives the real gate code (`stages/gate_plan.plan_and_judge`, the statistics of
`gate/stats.py`, the policy's defaults) with a trial source that draws pass or fail from each task's
known rate on each side (`tests/gate_sim.py`). Families of scenarios (a suite size, a share of flaky tasks,
what the candidate changed, the canonical version's stored history, whether both versions share each repeat's
seed) give:

- for candidates with a regression of at least the policy's `min_effect`: the share promoted;
- for clean candidates (fixes, no regression): the share accepted, rejected, left undecided;
- the trials this gate ran per task and side, and for clean candidates the fixed-sample floor (`gate_floor.py`:
  the fewest new trials with which the exact test, knowing the rates, shows every task safe with the power
  needed for the whole suite to be accepted 90 % of the time), and the ratio of the two;

beside two baselines computed on the same trials: the paper's gate (one trial per task per version, reject on
any pass-to-fail flip) and a mean-score gate (accept when the candidate's mean pass rate is higher).

`--compare` measures the per-task safety test alone against its alternatives on the same simulated pairs:
the previous mixture likelihood ratio (independent sides, the null's best pair in the denominator), the
betting e-process with predictable plug-in bets of the `ville` library, the mean e-process of the `expectation`
library, a group-sequential design with four looks, and the paired mixture the gate uses: pairs to show a
clean task safe, and how often a task with a drop of exactly `min_effect` is shown safe (the error it must
keep under `max_false_promote` at every stopping point).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gate_floor import floor  # noqa: E402
from gate_sim import decide, simulate  # noqa: E402

from release_pipeline.config.policy import GatePolicy  # noqa: E402
from release_pipeline.gate.stats import Pairs, safety_margin  # noqa: E402

WANT = 0.9  # the chance a clean candidate must be accepted with, for the floor


@dataclass
class Family:
    name: str
    tasks: int
    flaky: float  # share of tasks with a pass rate near one half on both versions
    regression: str  # none | hard | soft
    fixes: int = 8
    history: int = 6  # canonical trials a task kept from earlier gates
    near_stable: float = 0.1  # share of tasks at 0.9 or 0.1
    coupled: bool = False  # both versions share each repeat's seed
    coin: bool = False  # flaky tasks at exactly 0.5 (the suite), else spread over 0.35 to 0.65


def scenario(family: Family, rng: random.Random) -> tuple[list[float], list[float], bool]:
    """Per-task pass rates of base and candidate, and whether the candidate has a regression of min_effect."""
    base, cand = [], []
    flaky = round(family.flaky * family.tasks)
    for i in range(family.tasks):
        if i < flaky:
            p = 0.5 if family.coin else rng.uniform(0.35, 0.65)
        elif rng.random() < family.near_stable / (1 - family.flaky):
            p = rng.choice((0.9, 0.1))
        else:
            p = rng.choice((1.0, 1.0, 0.0))
        base.append(p)
        cand.append(p)
    failing = [i for i, p in enumerate(base) if p <= 0.1]
    for i in rng.sample(failing, min(family.fixes, len(failing))):
        cand[i] = 1.0 if base[i] == 0.0 else 0.9
    if family.regression != "none":
        passing = [i for i, p in enumerate(base) if p >= 0.9 and cand[i] == p]
        i = rng.choice(passing)
        if family.regression == "hard":
            base[i], cand[i] = 1.0, 0.0
        else:
            base[i], cand[i] = 0.9, 0.4
    return base, cand, family.regression != "none"


def suite_floor(base: list[float], cand: list[float], history: int, policy: GatePolicy) -> int:
    """The fixed-sample floor of a clean candidate's gate: every task shown safe, the suite accepted WANT of the time.

    Tasks whose versions are both deterministic are shown safe for sure at their floor; the power WANT is
    shared among the others (each gets WANT ** (1 / K)). Every task gets at least one candidate trial (a design
    that does not know which tasks were fixed must look). Confirming the one fix the policy needs is left out,
    so the floor is, if anything, low.
    """
    random_tasks = sum(1 for p, q in zip(base, cand, strict=True) if p not in (0.0, 1.0) or q not in (0.0, 1.0))
    want = round(WANT ** (1 / max(1, random_tasks)), 4)
    return sum(
        _task_floor(round(p * 20) / 20, round(q * 20) / 20, history, policy.min_effect, policy.max_false_promote, want)
        for p, q in zip(base, cand, strict=True)
    )


@cache
def _task_floor(p: float, q: float, history: int, d: float, level: float, want: float) -> int:
    return floor(p, q, history, d, level, want if p not in (0.0, 1.0) or q not in (0.0, 1.0) else 0.99)


@dataclass
class Tally:
    gates: int = 0
    accepted: int = 0
    rejected: int = 0
    undecided: int = 0
    trials: dict[str, int] = field(default_factory=lambda: {"base": 0, "candidate": 0})
    floor: int = 0
    paper_wrong: int = 0
    mean_wrong: int = 0
    tasks: int = 0


def run_family(family: Family, gates: int, seed: int, policy: GatePolicy) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    for _ in range(gates):
        base, cand, regressing = scenario(family, rng)
        planned, source = simulate(base, cand, policy, rng, history=family.history, coupled=family.coupled)
        decision = decide(planned, policy)
        spent = source.spent()
        tally.gates += 1
        tally.tasks += family.tasks
        for side in spent:
            tally.trials[side] += spent[side]
        if not regressing:
            tally.floor += suite_floor(base, cand, family.history, policy)
        tally.accepted += decision == "accepted"
        tally.rejected += decision == "rejected"
        tally.undecided += decision == "undecided"
        draws = source.draws
        # the paper's gate: one trial per task and version (each side's first), any pass->fail flip rejects
        first_base = [d[0] for d in draws["base"]]
        first_cand = [d[0] for d in draws["candidate"]]
        paper_promotes = not any(b and not c for b, c in zip(first_base, first_cand, strict=True))
        tally.paper_wrong += paper_promotes if regressing else not paper_promotes
        # a mean-score gate on the same trials as ours
        mean_base = sum(sum(d) / len(d) for d in draws["base"]) / family.tasks
        mean_cand = sum(sum(d) / len(d) for d in draws["candidate"]) / family.tasks
        mean_promotes = mean_cand > mean_base
        tally.mean_wrong += mean_promotes if regressing else not mean_promotes
    return tally


def families() -> list[Family]:
    out = []
    for flaky in (0.0, 0.05, 0.2, 0.4):
        for kind in ("none", "soft", "hard"):
            near = 0.0 if flaky == 0.0 else 0.1
            out.append(Family(f"{flaky:.0%} flaky, 60 tasks, {_kind(kind)}", 60, flaky, kind, near_stable=near))
    out += [
        Family("a sixth flaky at 0.5, 60 tasks, clean", 60, 1 / 6, "none", near_stable=0.0, coin=True),
        Family("a sixth flaky at 0.5, 60 tasks, soft regression", 60, 1 / 6, "soft", near_stable=0.0, coin=True),
        Family("a sixth flaky at 0.5, 60 tasks, hard regression", 60, 1 / 6, "hard", near_stable=0.0, coin=True),
        Family("a sixth flaky at 0.5, 60 tasks, clean, shared seeds", 60, 1 / 6, "none", 8, 6, 0.0, True, True),
        Family("a sixth flaky at 0.5, 60 tasks, soft, shared seeds", 60, 1 / 6, "soft", 8, 6, 0.0, True, True),
        Family("20% flaky, 60 tasks, clean, no history", 60, 0.2, "none", history=0),
        Family("20% flaky, 60 tasks, soft regression, no history", 60, 0.2, "soft", history=0),
        Family("20% flaky, 60 tasks, clean, long history (30)", 60, 0.2, "none", history=30),
        Family("20% flaky, 60 tasks, soft regression, long history (30)", 60, 0.2, "soft", history=30),
        Family("0% flaky, 20 tasks, clean", 20, 0.0, "none", fixes=3, near_stable=0.0),
        Family("0% flaky, 20 tasks, soft regression", 20, 0.0, "soft", fixes=3, near_stable=0.0),
        Family("20% flaky, 20 tasks, clean", 20, 0.2, "none", fixes=3),
        Family("20% flaky, 20 tasks, soft regression", 20, 0.2, "soft", fixes=3),
        Family("40% flaky, 200 tasks, clean", 200, 0.4, "none", fixes=10),
        Family("40% flaky, 200 tasks, soft regression", 200, 0.4, "soft", fixes=10),
        Family("20% flaky, 2000 tasks, clean", 2000, 0.2, "none", fixes=20),
        Family("20% flaky, 2000 tasks, soft regression", 2000, 0.2, "soft", fixes=20),
    ]
    return out


def _kind(kind: str) -> str:
    return {"none": "clean", "soft": "soft regression 0.9->0.4", "hard": "hard regression"}[kind]


def report_families(args: argparse.Namespace, policy: GatePolicy) -> None:
    print(
        f"policy: min_effect {policy.min_effect}, max_false_promote {policy.max_false_promote}, "
        f"max_false_reject {policy.max_false_reject}, repeats {policy.repeats}, pooled extra budget "
        f"{policy.extra_budget(1)} a task; {args.gates} gates a family (200 tasks: a third, 2000 tasks: 20), "
        f"seed {args.seed}"
    )
    print(
        "| family | gates | accepted | wrong | undecided | trials/task (base, cand) | floor/task | trials / floor "
        "| paper gate: wrong | mean-score gate: wrong | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for family in families():
        if args.only and args.only not in family.name:
            continue
        gates = args.gates if family.tasks <= 60 else max(20, args.gates // 3) if family.tasks <= 200 else 20
        start = time.perf_counter()
        t = run_family(family, gates, args.seed, policy)
        wall = time.perf_counter() - start
        per = {side: n / t.tasks for side, n in t.trials.items()}
        clean = family.regression == "none"
        wrong = (t.rejected + t.undecided) if clean else t.accepted
        kind = "rejected or undecided" if clean else "promoted"
        floor_cells = (
            f"{t.floor / t.tasks:.1f} | {sum(t.trials.values()) / t.floor:.2f}" if clean and t.floor else "- | -"
        )
        print(
            f"| {family.name} | {t.gates} | {t.accepted / t.gates:.1%} | {wrong / t.gates:.1%} {kind} | "
            f"{t.undecided / t.gates:.1%} | {per['base']:.1f}, {per['candidate']:.1f} | {floor_cells} | "
            f"{t.paper_wrong / t.gates:.1%} | {t.mean_wrong / t.gates:.1%} | {wall:.0f} |",
            flush=True,
        )


# ----- --compare: the per-task safety test against its alternatives ----------------------------------------


def _old_mixture():
    """The gate's previous statistic (before issue 23): Beta-mixture numerator, the null's best pair below."""
    prior = ((0.45, 1.0, 0.02), (0.25, 0.02, 1.0), (0.3, 1.0, 1.0))

    def lbeta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    @cache
    def marginal(k: int, n: int) -> float:
        terms = [math.log(w) + lbeta(a + k, b + n - k) - lbeta(a, b) for w, a, b in prior]
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))

    def loglik(rate: float, k: int, n: int) -> float:
        if rate <= 0.0:
            return 0.0 if k == 0 else -math.inf
        if rate >= 1.0:
            return 0.0 if k == n else -math.inf
        return k * math.log(rate) + (n - k) * math.log1p(-rate)

    @cache
    def best_null(kb: int, m: int, kc: int, n: int, shift: float) -> float:
        p_hat, q_hat = (kb / m if m else 0.5), (kc / n if n else 0.5)
        if q_hat <= p_hat - shift:
            return loglik(p_hat, kb, m) + loglik(q_hat, kc, n)

        def along(p: float) -> float:
            return loglik(p, kb, m) + loglik(min(1.0, max(0.0, p - shift)), kc, n)

        ratio = (math.sqrt(5) - 1) / 2
        a, b = shift, 1.0
        for _ in range(60):
            c, d = b - ratio * (b - a), a + ratio * (b - a)
            if along(c) < along(d):
                a = c
            else:
                b = d
        return max(along((a + b) / 2), along(shift), along(1.0))

    def shown(kb: int, m: int, kc: int, n: int, shift: float, level: float) -> bool:
        return marginal(kb, m) + marginal(kc, n) - best_null(kb, m, kc, n, shift) >= -math.log(level)

    return shown


def _pair_paths(p: float, q: float, coupling: str, paths: int, horizon: int, rng):
    """Base and candidate outcomes of `paths` tasks, `horizon` repeats each (numpy arrays of 0/1)."""
    u = rng.random((paths, horizon))
    base = (u < p).astype(int)
    if coupling == "shared":  # the same seed: one uniform for both
        cand = (u < q).astype(int)
    elif coupling == "opposite":  # the candidate passes on the other end of the seed's range
        cand = (u >= 1 - q).astype(int)
    else:
        cand = (rng.random((paths, horizon)) < q).astype(int)
    return base, cand


def _group_sequential(d: float, level: float, looks: tuple[int, ...]):
    """A group-sequential test of mean(D) <= -d on pairs: reject at look k when sum(D) >= bound_k.

    Pocock-like bounds (one z for all looks on the scale of sum(D) + d n), calibrated exactly: the largest
    rejection chance over the null's boundary laws of D (P(-1) - P(+1) = d) is at most `level`.
    """
    import numpy as np

    def size(z: float) -> float:
        worst = 0.0
        for c in np.linspace(0.0, (1 - d) / 2, 11):
            a = c + d
            b = 1 - a - c
            offset = looks[-1]
            dist = np.zeros(2 * offset + 1)
            dist[offset] = 1.0
            rejected, done = 0.0, 0
            for n in looks:
                for _ in range(n - done):
                    dist = a * np.roll(dist, -1) + b * dist + c * np.roll(dist, 1)
                done = n
                bound = -d * n + z * math.sqrt(n)
                sums = np.arange(-offset, offset + 1)
                hit = sums >= bound
                rejected += dist[hit].sum()
                dist[hit] = 0.0
            worst = max(worst, rejected)
        return worst

    lo, hi = 0.0, 6.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if size(mid) <= level else (mid, hi)
    return [(n, -d * n + hi * math.sqrt(n)) for n in looks]


def compare(args: argparse.Namespace, policy: GatePolicy) -> None:
    """Pairs to show a clean task safe, and how often a task that dropped by min_effect is shown safe."""
    import numpy as np

    d, level, history, horizon = policy.min_effect, policy.max_false_promote, 6, args.horizon
    old = _old_mixture()
    try:
        from ville import BettingTest
    except ImportError:
        BettingTest = None  # noqa: N806
    try:
        from expectation.seqtest.sequential_e_testing import SequentialTesting
    except ImportError:
        SequentialTesting = None  # noqa: N806
    group = _group_sequential(d, level, (12, 24, 36, 48))
    classes = [
        ("clean (1, 1)", 1.0, 1.0, "independent"),
        ("clean (0.95, 0.95)", 0.95, 0.95, "independent"),
        ("clean (0.9, 0.9)", 0.9, 0.9, "independent"),
        ("clean (0.5, 0.5)", 0.5, 0.5, "independent"),
        ("clean (0.5, 0.5), shared seed", 0.5, 0.5, "shared"),
        ("drop (0.9, 0.4)", 0.9, 0.4, "independent"),
        ("drop (0.9, 0.4), shared seed", 0.9, 0.4, "shared"),
        ("drop (0.9, 0.4), opposite seed", 0.9, 0.4, "opposite"),
        ("drop (0.75, 0.25)", 0.75, 0.25, "independent"),
        ("drop (1.0, 0.5)", 1.0, 0.5, "independent"),
    ]
    print(
        f"per-task safety test, min_effect {d}, level {level}, base history {history} trials, pairs up to {horizon}, "
        f"{args.paths} tasks a class (expectation: {args.paths // 10}); clean: mean pairs to shown safe "
        "(shown within the horizon); drop: share ever shown safe (must stay <= the level)"
    )
    names = ["paired mixture (ours)", "old mixture (unpaired)", "ville plug-in betting", "expectation mean",
             "group-sequential, 4 looks"]  # fmt: skip
    print("| task | floor (new trials, power 0.99) | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    rng = np.random.default_rng(args.seed)
    for label, p, q, coupling in classes:
        base, cand = _pair_paths(p, q, coupling, args.paths, horizon, rng)
        results = {}
        stops = {name: [] for name in names}
        for i in range(args.paths):
            b, c = base[i], cand[i]
            stops[names[0]].append(_first(lambda n, b=b, c=c: _ours(b, c, n, history, d, level), horizon))
            stops[names[1]].append(
                _first(
                    lambda n, b=b, c=c: old(
                        int(b[: max(history, n)].sum()), max(history, n), int(c[:n].sum()), n, d, level
                    ),
                    horizon,
                )  # fmt: skip
            )
            diff = c - b
            if BettingTest is not None:
                log_e = (
                    BettingTest(m0=-d, bounds=(-1.0, 1.0), alternative="greater", alpha=level)
                    .fit(diff.astype(float))
                    .log_e_values_
                )
                hits = np.nonzero(log_e >= -math.log(level))[0]
                stops[names[2]].append(int(hits[0]) + 1 if hits.size else horizon + 1)
            if SequentialTesting is not None and i < args.paths // 10:
                stops[names[3]].append(_expectation_stop(SequentialTesting, diff, d, level, min(horizon, 100)))
            sums = np.cumsum(diff)
            hit = [n for n, bound in group if sums[n - 1] >= bound]
            stops[names[4]].append(hit[0] if hit else horizon + 1)
        for name in names:
            s = np.array(stops[name]) if stops[name] else None
            if s is None:
                results[name] = "not installed"
            elif label.startswith("clean"):
                within = s <= horizon
                results[name] = f"{np.minimum(s, horizon).mean():.1f} ({within.mean():.1%})"
            else:
                shown_safe = (s <= horizon).mean()
                results[name] = f"{shown_safe:.2%}" + (" **over**" if shown_safe > level + 3 * math.sqrt(
                    level * (1 - level) / len(s)) else "")  # fmt: skip
        fl = floor(p, q, history, d, level, 0.99) if label.startswith("clean") and coupling == "independent" else None
        print(f"| {label} | {fl if fl is not None else '-'} | " + " | ".join(results[n] for n in names) + " |",
              flush=True)  # fmt: skip


def _first(test, horizon: int) -> int:
    for n in range(1, horizon + 1):
        if test(n):
            return n
    return horizon + 1


def _ours(b, c, n: int, history: int, d: float, level: float) -> bool:
    m = max(history, n)
    diff = c[:n] - b[:n]
    pairs = Pairs(
        int((diff < 0).sum()), int((diff == 0).sum()), int((diff > 0).sum()), int(b[:m].sum()), m, int(c[:n].sum()), n
    )
    return safety_margin(pairs, d, level) >= 0


def _expectation_stop(SequentialTesting, diff, d: float, level: float, horizon: int) -> int:  # noqa: N803
    import warnings

    test = SequentialTesting(test_type="mean", null_value=-d, alternative="greater")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(1, horizon + 1):
            result = test.update(float(diff[n - 1]))
            if result.e_value is not None and float(result.e_process.cumulative_value) >= 1 / level:
                return n
    return 10**6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="run the families whose name contains this")
    parser.add_argument("--min-effect", type=float, default=GatePolicy.min_effect)
    parser.add_argument("--compare", action="store_true", help="compare the per-task tests instead")
    parser.add_argument("--paths", type=int, default=2000, help="tasks a class for --compare")
    parser.add_argument("--horizon", type=int, default=150, help="pairs a task for --compare")
    args = parser.parse_args()
    policy = GatePolicy(min_effect=args.min_effect)
    if args.compare:
        compare(args, policy)
    else:
        report_families(args, policy)


if __name__ == "__main__":
    main()
