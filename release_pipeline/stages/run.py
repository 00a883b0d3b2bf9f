"""Stage run: execute a version over a suite split, `k` repeats a task, and record every trial.

Trials are written in batches from a background thread, so the event loop
never waits on the database. A run that is killed keeps every trial flushed
before the kill; running it again executes only the trials still missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release_pipeline.builtin.adapters import AgentProtocolError, SandboxViolation
from release_pipeline.errors import InfrastructureError, UserError
from release_pipeline.llm.providers import check_model
from release_pipeline.models import Artifact, Task, TaskOutcome, TrialContext, TrialRecord, Verdict, VersionInfo
from release_pipeline.plugins import Plugins
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.stages.budget import Budget, Estimate, check, estimate
from release_pipeline.store import Store

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


FLUSH_SECONDS = 0.2


def trial_seed(base: int, task_id: str, repeat: int) -> int:
    """The seed of one (task, repeat): identical for every version, so versions are compared like for like."""
    digest = hashlib.blake2b(f"{base}:{task_id}:{repeat}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Job:
    task: Task
    repeat: int
    attempt: int = 0


@dataclass
class RunSettings:
    concurrency: int
    timeout_s: float
    seed: int
    executor: str = "local"
    progress: Callable[[int], Any] | None = None
    llm: Any = None
    models: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, ws: Workspace, progress: Callable[[int], Any] | None = None) -> RunSettings:
        """The workspace's run settings, with its LLM gateway and role models."""
        cfg = ws.config.run
        return cls(cfg.concurrency, cfg.timeout_s, cfg.seed, cfg.executor, progress, ws.llm, ws.config.models)


@dataclass
class Batcher:
    """Collects finished trials and writes them to the store in batches, from a thread of its own.

    A SIGKILL loses at most the last `FLUSH_SECONDS` of finished trials, which
    a resumed run then executes again; nothing written is ever written twice.
    """

    store: Store
    pool: ThreadPoolExecutor
    pending: list[TrialRecord] = field(default_factory=list)
    written: int = 0

    def add(self, trial: TrialRecord) -> None:
        self.pending.append(trial)

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        await asyncio.get_running_loop().run_in_executor(self.pool, self.store.insert_trials, batch)
        self.written += len(batch)

    async def flush_until(self, done: asyncio.Event) -> None:
        """Flush every FLUSH_SECONDS until `done`, then once more for the last trials."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            await self.flush()
        # trials that finished while the last flush was writing are still pending
        await self.flush()


class TrialRunner:
    """Runs one job: the agent under a timeout, then the task's verifier. Never raises for an agent's fault."""

    def __init__(self, artifact: Artifact, plugins: Plugins, root: Path, run_id: int, settings: RunSettings):
        registry = plugins.registry
        self.adapter = registry.get("adapter", artifact.manifest.adapter)(artifact)
        self.params = artifact.manifest.params
        self.timeout = artifact.manifest.timeout_s or settings.timeout_s
        self.run_id = run_id
        self.seed = settings.seed
        self.llm, self.models = settings.llm, settings.models
        self.root = root
        self.registry = registry
        self._verifiers: dict[str, Callable[[Task, Any], Verdict]] = {}

    def verifier(self, task: Task) -> Callable[[Task, Any], Verdict]:
        key = repr(sorted(task.verifier.items()))
        fn = self._verifiers.get(key)
        if fn is None:
            options = {k: v for k, v in task.verifier.items() if k != "type"}
            fn = self._verifiers[key] = self.registry.get("verifier", task.verifier["type"])(options, self.root)
        return fn

    async def __call__(self, job: Job) -> TrialRecord:
        task = job.task
        seed = trial_seed(self.seed, task.id, job.repeat)
        trial = TrialRecord(self.run_id, task.id, job.repeat, seed, "fail", attempt=job.attempt)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                ctx = TrialContext(task.id, job.repeat, seed, self.params, self.llm, self.models)
                result = await self.adapter.run(task, ctx)
        except TimeoutError:
            return _ended(trial, start, "timeout", f"no answer within {self.timeout:g}s", [])
        except InfrastructureError as exc:
            trial.status = "error"
            return _ended(trial, start, "infrastructure", str(exc), [])
        except AgentProtocolError as exc:
            return _ended(trial, start, "malformed_output", str(exc), [])
        except SandboxViolation as exc:
            return _ended(trial, start, "sandbox_violation", f"sandbox: {exc}", [])
        except Exception as exc:
            step = {"type": "exception", "error": f"{type(exc).__name__}: {exc}", "where": _where(exc)}
            return _ended(trial, start, "agent_exception", step["error"], [step])
        trial.latency_ms = (time.perf_counter() - start) * 1000
        trial.output, trial.trace, trial.tokens, trial.cost = result.output, result.trace, result.tokens, result.cost
        try:
            verify = self.verifier(task)
            if getattr(verify, "blocking", False):  # runs code or does I/O: off the event loop
                verdict = await asyncio.to_thread(verify, task, result.output)
            else:
                verdict = verify(task, result.output)
        except Exception as exc:  # the verifier is ours, not the agent's: infrastructure
            trial.status, trial.reason, trial.feedback = "error", "verifier_error", f"{type(exc).__name__}: {exc}"
            return trial
        trial.status = "pass" if verdict.passed else "fail"
        trial.score, trial.feedback, trial.reason = verdict.score, verdict.feedback, verdict.reason
        return trial

    def close(self) -> None:
        self.adapter.close()


def _ended(trial: TrialRecord, start: float, reason: str, feedback: str, trace: list) -> TrialRecord:
    trial.latency_ms = (time.perf_counter() - start) * 1000
    trial.reason, trial.feedback, trial.trace = reason, feedback, trace
    return trial


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{last.name} line {last.lineno}"


async def _execute(jobs: list[Job], runner: TrialRunner, plugins: Plugins, store: Store, settings: RunSettings) -> int:
    executor = plugins.registry.get("executor", settings.executor)()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-writer") as pool:
        batcher = Batcher(store, pool)
        done = asyncio.Event()
        flusher = asyncio.create_task(batcher.flush_until(done))
        progress = settings.progress

        def on_result(trial: TrialRecord) -> None:
            batcher.add(trial)
            if progress is not None:
                progress(1)

        try:
            await executor.map(jobs, runner, settings.concurrency, on_result)
        finally:
            done.set()
            await flusher
    return batcher.written


def execute_jobs(
    artifact: Artifact,
    jobs: Iterable[Job],
    *,
    run_id: int,
    plugins: Plugins,
    store: Store,
    root: Path,
    settings: RunSettings,
) -> int:
    """Run `jobs` for `artifact` and record them under `run_id`; returns how many trials were recorded."""
    jobs = list(jobs)
    if not jobs:
        return 0
    runner = TrialRunner(artifact, plugins, root, run_id, settings)
    try:
        return asyncio.run(_execute(jobs, runner, plugins, store, settings))
    finally:
        runner.close()


def effective(trials: Iterable[TrialRecord]) -> dict[tuple[str, int], TrialRecord]:
    """The last attempt of every (task, repeat): what the run's verdict for that trial is."""
    latest: dict[tuple[str, int], TrialRecord] = {}
    for t in trials:
        key = (t.task_id, t.repeat)
        if key not in latest or t.attempt > latest[key].attempt:
            latest[key] = t
    return latest


def missing_jobs(
    tasks: Iterable[Task],
    repeats: Iterable[int],
    done: dict[tuple[str, int], TrialRecord],
    max_attempt: int | None = None,
) -> list[Job]:
    """Jobs for every (task, repeat) with no trial yet, and a new attempt for those that ended in `error`.

    With `max_attempt`, an `error` trial is retried only while its attempt number is below it.
    """
    jobs = []
    repeats = list(repeats)
    for task in tasks:
        for r in repeats:
            prior = done.get((task.id, r))
            if prior is None:
                jobs.append(Job(task, r))
            elif prior.status == "error" and (max_attempt is None or prior.attempt < max_attempt):
                jobs.append(Job(task, r, prior.attempt + 1))
    return jobs


# ----- service: `release run` ---------------------------------------------------------------


def preflight(
    ws: Workspace, artifact: Artifact, jobs: list[Job], budget: Budget | None, what: str, reserved: float = 0.0
) -> Estimate:
    """Before anything runs: the agent loads, its models can be called, and the budget covers the jobs.

    `reserved` is what other work of the same step will cost (the other side of a gate).
    """
    adapter = ws.plugins.registry.get("adapter", artifact.manifest.adapter)(artifact)
    try:
        for model in getattr(adapter, "models", lambda _: [])(ws.config.models):
            check_model(model)
        if budget is None or not jobs:
            return Estimate(len(jobs), 0, 0.0)
        seed = ws.config.run.seed
        est = estimate(
            adapter,
            jobs,
            seed_of=lambda j: trial_seed(seed, j.task.id, j.repeat),
            store=ws.store,
            models=ws.config.models,
        )
        check(budget, est, what, reserved)
        return est
    finally:
        adapter.close()


def open_run(
    ws: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    *,
    split: str,
    repeats: int,
    purpose: str,
    statuses: tuple[str | None, ...],
    create: bool = True,
) -> tuple[dict[str, Any] | None, bool]:
    """An existing run of this version, split, seed and suite fingerprint, or a new one.

    `statuses` lists, in order of preference, which existing runs may be taken
    (None: any status, with any repeats); an empty tuple always starts a new run.
    Returns the run (None when none exists and `create` is off) and whether it already existed.
    """
    seed = ws.config.run.seed
    suite = ws.suite(agent)
    version_id = ws.store.version_id(agent.name, version.number)
    for status in statuses:
        found = ws.store.find_run(
            version_id,
            split=split,
            seed=seed,
            suite=suite.fingerprint(split),
            status=status,
            repeats=None if status is None else repeats,
        )
        if found is not None:
            return found, True
    if not create:
        return None, False
    run_id = ws.store.create_run(
        version_id,
        split=split,
        repeats=repeats,
        seed=seed,
        purpose=purpose,
        task_ids=[t.id for t in suite.split(split)],
        suite=suite.fingerprint(split),
    )
    return ws.store.run(run_id), False


@dataclass
class RunOutcome:
    run: dict[str, Any]
    executed: int
    resumed: bool
    counts: dict[str, int]


def run_version(
    ws: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    *,
    split: str,
    repeats: int | None = None,
    purpose: str = "run",
    fresh: bool = False,
    reuse: bool = False,
    progress: ProgressFactory | None = None,
    budget: Budget | None = None,
) -> RunOutcome:
    """Run `version` of `agent` over a split; resume an unfinished identical run unless `fresh`.

    With `reuse`, an identical complete run (same tasks, seed and repeats) is
    returned as it is instead of running again. With a `budget`, a run whose
    estimated cost exceeds what is left of it is refused before anything runs.
    """
    cfg = ws.config.run
    repeats = repeats or cfg.repeats
    tasks = ws.suite(agent).split(split)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in split {split!r}")
    statuses = () if fresh else ("complete", "running") if reuse else ("running",)
    where = {"split": split, "repeats": repeats, "purpose": purpose}
    run, resumed = open_run(ws, agent, version, **where, statuses=statuses, create=False)
    done = effective(ws.store.trials(run["id"], with_trace=False)) if run else {}
    jobs = missing_jobs(tasks, range(repeats), done)
    artifact = ws.materialize(agent, version)
    preflight(ws, artifact, jobs, budget, f"run of {agent.name} v{version.number} on {split}")
    if run is None:
        run, _ = open_run(ws, agent, version, **where, statuses=())
    label = f"{agent.name} v{version.number} {split}"
    with (progress or silent)(label, len(jobs)) as advance:
        settings = RunSettings.of(ws, advance)
        execute_jobs(
            artifact, jobs, run_id=run["id"], plugins=ws.plugins, store=ws.store, root=ws.root, settings=settings
        )
    ws.store.set_run(run["id"], status="complete")
    final = effective(ws.store.trials(run["id"], with_trace=False))
    counts = {s: sum(1 for t in final.values() if t.status == s) for s in ("pass", "fail", "error")}
    run = ws.store.run(run["id"])
    ws.plugins.hook.release_run_finished(run=run, counts=counts)
    return RunOutcome(run, len(jobs), resumed, counts)


def task_outcomes(
    trials: Iterable[TrialRecord], tasks: Iterable[Task], repeats: int | dict[str, int] | None = None
) -> dict[str, TaskOutcome]:
    """Pass counts per task over the effective trials; `error` trials are counted apart, never as fails.

    With `repeats` (one number, or one per task id), only repeat indices below
    it count, so two versions are compared over the same seeds even when one of
    them ran more repeats.
    """
    outcomes = {t.id: TaskOutcome(t.id, 0, 0, 0, t.tags) for t in tasks}
    ids: dict[str, list[int]] = {t: [] for t in outcomes}
    for (task_id, repeat), trial in sorted(effective(trials).items()):
        outcome = outcomes.get(task_id)
        if outcome is None:
            continue
        limit = repeats.get(task_id) if isinstance(repeats, dict) else repeats
        if limit is not None and repeat >= limit:
            continue
        ids[task_id].append(trial.id)
        if trial.status == "error":
            outcome.errors += 1
            continue
        outcome.trials += 1
        outcome.passes += trial.status == "pass"
    for task_id, outcome in outcomes.items():
        outcome.trial_ids = tuple(ids[task_id])
    return outcomes
