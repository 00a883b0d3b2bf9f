"""Fuzz the CLI with bad files and arguments, and count what happened (for bench/RESULTS.md).

    .venv/bin/python bench/bench_fuzz.py [--seed 11] [--count 1000]

The cases come from `tests/fuzz_cases.py` (the test suite runs a smaller seeded set of the same). Prints
the exit codes per mutated file and every case that gave a traceback, more than one error line, or a
failed command that changed the record.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    from fuzz_cases import cases
    from test_fuzz import fuzz_base, run_case

    work = Path(tempfile.mkdtemp(prefix="release-fuzz-"))
    os.environ["HOME"] = str(work)
    os.environ["RELEASE_ACTOR"] = "fuzz"
    base = fuzz_base(work / "base")
    codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    problems = []
    start = time.perf_counter()
    for case in cases(seed=args.seed, count=args.count):
        verdict, code = run_case(case, base, work)
        codes[case.file or "(arguments only)"][code] += 1
        if not verdict.ok:
            problems.append((case, verdict))
    wall = time.perf_counter() - start
    print(f"{args.count} cases, seed {args.seed}, {wall:.0f} s ({wall / args.count * 1000:.0f} ms a case)")
    print("| file mutated | cases | exit 0 | exit 1 | exit 2 | problems |")
    print("|---|---:|---:|---:|---:|---:|")
    by_file = collections.Counter(c.file or "(arguments only)" for c, _ in problems)
    for name in sorted(codes):
        count = codes[name]
        print(f"| {name} | {sum(count.values())} | {count[0]} | {count[1]} | {count[2]} | {by_file[name]} |")
    for case, verdict in problems:
        print(f"PROBLEM seed={case.seed} {case.file} {case.mutation} {case.argv}: {verdict.problem}")


if __name__ == "__main__":
    main()
