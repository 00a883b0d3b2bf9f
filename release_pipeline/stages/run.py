"""Stage run: execute a version over a suite split, `k` repeats a task, and record every trial.

Trials are written in batches from a background thread, so the event loop
never waits on the database. A run that is killed keeps every trial flushed
before the kill; running it again executes only the trials still missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release_pipeline import event_loop
from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    AgentRaised,
    AttemptLost,
    ConfigError,
    ConflictError,
    InfrastructureError,
    RequestRejected,
    SandboxViolation,
    UserError,
)
from release_pipeline.llm.agent_calls import AgentLLM, allowed_models
from release_pipeline.llm.providers import check_model
from release_pipeline.models import (
    AgentResult,
    Artifact,
    Run,
    Sampling,
    Task,
    TaskOutcome,
    TrialContext,
    TrialRecord,
    Verdict,
    VersionInfo,
)
from release_pipeline.notices import say
from release_pipeline.plugins.manager import Plugins, Registry
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.store import Store, leases
from release_pipeline.trials.budget import Budget, Estimate, check, estimate
from release_pipeline.trials.clock import TrialClock, current_trial
from release_pipeline.trials.fit import bounded_text, recordable

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.trials.remote import TrialRecipe
    from release_pipeline.workspace import Workspace


EXECUTOR_ENV = "RELEASE_EXECUTOR"  # `release run --executor`: overrides `run.executor` of release.yaml
ADDRESS_ENV = "RELEASE_EXECUTOR_ADDRESS"  # `--address`: the executor's `address` option (a Ray cluster's)
FLUSH_SECONDS = 0.2
LEASE_WAIT_S = 1800.0  # how long a command waits for another process to finish the run it needs


def trial_seed(base: int, task_id: str, repeat: int, attempt: int = 0) -> int:
    """The seed of one (task, repeat, attempt): identical for every version, so versions are compared like for like.

    A retry of an `error` trial is a new attempt with a seed of its own, so it is a new sample, not a replay.
    """
    key = f"{base}:{task_id}:{repeat}" + (f":{attempt}" if attempt else "")
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")


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
    executor_options: dict[str, Any] = field(default_factory=dict)
    db_url: str = ""  # the store's URL, for trial hosts on other machines
    allowed_models: tuple[str, ...] = ()  # models agents may call besides models.agent and their manifest's

    @classmethod
    def of(cls, ws: Workspace, progress: Callable[[int], Any] | None = None) -> RunSettings:
        """The workspace's run settings, with its LLM gateway, role models, executor and store."""
        cfg = ws.config.run
        url = ws.db_url
        executor, options = cfg.executor, dict(cfg.executor_options)
        if os.environ.get(EXECUTOR_ENV, executor) != executor:  # another executor than release.yaml's
            executor, options = os.environ[EXECUTOR_ENV], {}
        if os.environ.get(ADDRESS_ENV):
            options["address"] = os.environ[ADDRESS_ENV]
        return cls(
            cfg.concurrency,
            cfg.timeout_s,
            cfg.seed,
            executor,
            progress,
            ws.llm,
            ws.config.models,
            options,
            url if isinstance(url, str) else url.render_as_string(hide_password=False),
            ws.config.allowed_models,
        )


@dataclass
class Batcher:
    """Collects finished trials and writes them to the store in batches, from a thread of its own.

    A SIGKILL loses at most the last `FLUSH_SECONDS` of finished trials, which
    a resumed run then executes again; nothing written is ever written twice.
    While it runs, it keeps the run's lease alive.
    """

    store: Store
    pool: ThreadPoolExecutor
    run_id: int
    pending: list[TrialRecord] = field(default_factory=list)
    written: int = 0
    last_beat: float = field(default_factory=time.monotonic)

    def add(self, trial: TrialRecord) -> None:
        self.pending.append(trial)

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        if time.monotonic() - self.last_beat > leases.HEARTBEAT_SECONDS:
            self.last_beat = time.monotonic()
            await loop.run_in_executor(self.pool, self.store.heartbeat, self.run_id, leases.me())
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.written += await loop.run_in_executor(self.pool, self.store.insert_trials, batch)

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


class Verifiers:
    """The verifier of every task, each built once from the suite's settings."""

    def __init__(self, registry: Registry, root: Path):
        self.registry, self.root = registry, root
        self._built: dict[str, Callable[[Task, Any], Verdict]] = {}

    def __call__(self, task: Task) -> Callable[[Task, Any], Verdict]:
        key = repr(sorted(task.verifier.items()))
        fn = self._built.get(key)
        if fn is None:
            options = {k: v for k, v in task.verifier.items() if k != "type"}
            factory = self.registry.get("verifier", task.verifier["type"])
            try:
                fn = factory(options, self.root)
            except UserError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"task {task.id!r}: verifier {task.verifier['type']!r} cannot be built from its settings: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            self._built[key] = fn
        return fn

    def check(self, tasks: Iterable[Task]) -> None:
        """Build every task's verifier before any trial runs: a malformed one is a config error, not N errors.

        A verifier may also offer `check_task(task)`, which raises ConfigError for a task it cannot judge.
        """
        for task in tasks:
            check_task = getattr(self(task), "check_task", None)
            if check_task is not None:
                check_task(task)


class TrialRunner:
    """Runs one job: the agent under a timeout, then the task's verifier. Never raises for an agent's fault.

    What the agent returned is made fit for the record (`records.recordable`) before it is verified, so the
    verdict is about exactly what is stored. A fault of the harness itself is an `error` trial.
    """

    def __init__(self, artifact: Artifact, plugins: Plugins, verifiers: Verifiers, run_id: int, settings: RunSettings):
        self.artifact, self.settings = artifact, settings
        self.adapter = plugins.registry.get("adapter", artifact.manifest.adapter)(artifact)
        self.params = artifact.manifest.params
        self.timeout = artifact.manifest.timeout_s or settings.timeout_s
        self.run_id = run_id
        self.seed = settings.seed
        self.llm, self.models = settings.llm, settings.models
        self.allowed_models = allowed_models(settings.models.get("agent", ""), artifact.manifest.model,
                                             settings.allowed_models)  # fmt: skip
        self.verifiers = verifiers

    def recipe(self) -> TrialRecipe:
        """How to build this runner on another machine (for executors that run trials elsewhere); calls to a host
        built from it name the run, `self.run_id`."""
        from release_pipeline.trials.remote import TrialRecipe

        s = self.settings
        return TrialRecipe.of(self.artifact, self.verifiers.root, self.timeout, s.seed, s.models, s.db_url)

    def lost(self, job: Job, why: str) -> TrialRecord:
        """The `error` trial of a job whose worker was lost before it answered (an executor retries the job)."""
        seed = trial_seed(self.seed, job.task.id, job.repeat, job.attempt)
        trial = TrialRecord(self.run_id, job.task.id, job.repeat, seed, "error", attempt=job.attempt)
        trial.reason, trial.feedback = "worker_lost", bounded_text(why, 2000)
        return trial

    async def __call__(self, job: Job) -> TrialRecord:
        seed = trial_seed(self.seed, job.task.id, job.repeat, job.attempt)
        trial = TrialRecord(self.run_id, job.task.id, job.repeat, seed, "fail", attempt=job.attempt)
        start = time.perf_counter()
        try:
            return await self._run(job.task, trial, start)
        except UserError:
            raise  # the suite or its verifier is misconfigured: the run stops, with the trials so far kept
        except Exception as exc:  # ours, not the agent's
            trial.status, trial.output, trial.trace = "error", None, []
            return _ended(trial, start, "harness_error", f"{type(exc).__name__}: {bounded_text(exc, 500)}", [])

    async def _run(self, task: Task, trial: TrialRecord, start: float) -> TrialRecord:
        answer = await self._answer(task, trial, start)
        if isinstance(answer, TrialRecord):  # it ended without an answer
            return answer
        trial.latency_ms = (time.perf_counter() - start) * 1000
        rec = recordable(answer.output, answer.trace, answer.tokens, answer.cost)
        trial.output, trial.trace, trial.tokens, trial.cost = rec.output, rec.trace, rec.tokens, rec.cost
        trial.notes = [*answer.notes, *rec.notes]
        trial.output_size = answer.output_size or rec.output_size
        unrecordable = answer.unrecordable or rec.unrecordable
        if unrecordable:
            trial.reason, trial.feedback = "unrecordable_output", unrecordable
            return trial
        return await self._verify(task, trial)

    async def _answer(self, task: Task, trial: TrialRecord, start: float) -> AgentResult | TrialRecord:
        """The agent's answer under the trial's clock, or the trial ended with the reason it has none."""
        clock = TrialClock(self.timeout)
        llm = AgentLLM(self.llm, self.allowed_models, trial.repeat, self.models.get("agent", "")) if self.llm else None
        token = current_trial.set(clock)
        try:
            answer = await self._attempt(task, trial, start, clock, llm)
        finally:
            current_trial.reset(token)
        if llm is not None and llm.refused:  # whatever came of it: the harness refused what the agent asked for
            trial.status = "fail"
            return _ended(trial, start, "forbidden_request", bounded_text(llm.refused[0], 2000), [])
        return answer

    async def _attempt(
        self, task: Task, trial: TrialRecord, start: float, clock: TrialClock, llm: AgentLLM | None
    ) -> AgentResult | TrialRecord:
        """The adapter's answer, or the trial ended with the reason (the clock already set for the trial)."""
        try:
            ctx = TrialContext(task.id, trial.repeat, trial.seed, self.params, llm, self.models, attempt=trial.attempt)
            result = await self._attempts(task, ctx, clock)
        except TimeoutError:
            if clock.overran:  # the harness kept it waiting past its grace: load, not the agent's failure
                trial.status = "error"
                return _ended(trial, start, "harness_overloaded", f"the harness kept the trial waiting over "
                              f"{clock.grace_s:g}s (the machine is overloaded)", [])  # fmt: skip
            if clock.provider_cut_short:  # the time went waiting on an LLM provider: its fault, not the agent's
                trial.status = "error"
                return _ended(trial, start, "provider_timeout", f"the LLM provider did not answer within "
                              f"the trial's {self.timeout:g}s", [])  # fmt: skip
            return _ended(trial, start, "timeout", f"no answer within {self.timeout:g}s", [])
        except RequestRejected as exc:  # the provider refused the agent's own request
            return _ended(trial, start, "request_rejected", bounded_text(exc, 2000), [])
        except InfrastructureError as exc:
            trial.status = "error"
            return _ended(trial, start, "infrastructure", bounded_text(exc, 2000), [])
        except AgentProtocolError as exc:
            return _ended(trial, start, "malformed_output", bounded_text(exc, 2000), [])
        except SandboxViolation as exc:
            return _ended(trial, start, "sandbox_violation", bounded_text(f"sandbox: {exc}", 2000), [])
        except AgentCrashed as exc:
            return _ended(trial, start, "agent_crash", bounded_text(exc, 2000), [])
        except AgentRaised as exc:  # raised in the agent's own process, reported by name
            error = bounded_text(exc, 2000)
            return _ended(
                trial, start, "agent_exception", error, [{"type": "exception", "error": error, "where": exc.where}]
            )
        except Exception as exc:
            error = bounded_text(f"{type(exc).__name__}: {exc}", 2000)
            return _ended(
                trial, start, "agent_exception", error, [{"type": "exception", "error": error, "where": _where(exc)}]
            )
        return result

    async def _attempts(self, task: Task, ctx: TrialContext, clock: TrialClock) -> AgentResult:
        """The agent's answer under the trial's clock. An attempt lost to what ran beside it (`AttemptLost`: a worker
        it shared went down) is forgiven, and the trial runs again alone, with its whole budget; that one stands."""
        attempt: Callable[[], Awaitable[AgentResult]] = partial(self.adapter.run, task, ctx)
        for lost in (False, True):
            try:
                async with asyncio.timeout(None) as timeout:
                    clock.attach(timeout)
                    return await attempt()
            except AttemptLost as exc:
                if lost:
                    raise InfrastructureError(f"a trial run alone was lost: {exc}") from None
                clock.forgive()
                attempt = exc.rerun
        raise AssertionError("unreachable")

    async def _verify(self, task: Task, trial: TrialRecord) -> TrialRecord:
        """The verdict on the recorded output; a verifier that breaks makes the trial an `error`."""
        verify = self.verifiers(task)
        try:
            if getattr(verify, "blocking", False):  # runs code or does I/O: off the event loop
                verdict = await asyncio.to_thread(verify, task, trial.output)
            else:
                verdict = verify(task, trial.output)
        except UserError:
            raise
        except Exception as exc:  # the verifier is ours, not the agent's: infrastructure
            trial.status, trial.reason = "error", "verifier_error"
            trial.feedback = bounded_text(f"{type(exc).__name__}: {exc}", 2000)
            return trial
        trial.status = "pass" if verdict.passed else "fail"
        trial.score = verdict.score if isinstance(verdict.score, (int, float)) else float(bool(verdict.passed))
        trial.feedback, trial.reason = bounded_text(verdict.feedback), bounded_text(verdict.reason, 50)
        return trial

    async def aclose(self) -> None:
        closing = getattr(self.adapter, "aclose", None)
        if closing is not None:
            await closing()

    def close(self) -> None:
        self.adapter.close()


def _raised(trial: TrialRecord, start: float, error: str, where: str) -> TrialRecord:
    return _ended(trial, start, "agent_exception", error, [{"type": "exception", "error": error, "where": where}])


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


@contextmanager
def _stdout_kept_clean() -> Iterator[None]:
    """Whatever runs during a run writes to stderr, never to stdout (where `--json` goes)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def make_executor(plugins: Plugins, settings: RunSettings) -> Any:
    """The configured executor, built with its options; an option it does not take is a config error."""
    factory = plugins.registry.get("executor", settings.executor)
    try:
        return factory(**settings.executor_options)
    except TypeError as exc:
        options = ", ".join(sorted(settings.executor_options)) or "none"
        raise ConfigError(f"executor {settings.executor!r} does not take these options ({options}): {exc}") from None


async def _execute(jobs: list[Job], runner: TrialRunner, plugins: Plugins, store: Store, settings: RunSettings) -> int:
    executor = make_executor(plugins, settings)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-writer") as pool:
            batcher = Batcher(store, pool, runner.run_id)
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
    finally:
        await runner.aclose()
    return batcher.written


def execute_jobs(
    artifact: Artifact,
    jobs: Iterable[Job],
    *,
    run_id: int,
    plugins: Plugins,
    store: Store,
    verifiers: Verifiers,
    settings: RunSettings,
) -> int:
    """Run `jobs` for `artifact` and record them under `run_id`; returns how many trials were recorded.

    The caller holds the run's lease (`leased`).
    """
    jobs = list(jobs)
    if not jobs:
        return 0
    verifiers.check(j.task for j in jobs)
    runner = TrialRunner(artifact, plugins, verifiers, run_id, settings)
    prestart = getattr(runner.adapter, "prestart", None)
    if prestart is not None:  # sandboxed workers start now, while the run is set up
        prestart(min(settings.concurrency, len(jobs)))
    try:
        with _stdout_kept_clean():
            return event_loop.run(_execute(jobs, runner, plugins, store, settings))
    finally:
        runner.close()


@dataclass
class Lease:
    """A run held by this process; `complete()` marks it so when the lease ends, otherwise it ends interrupted."""

    store: Store
    run_id: int
    status: str = "interrupted"

    def complete(self) -> None:
        self.status = "complete"


@contextmanager
def leased(store: Store, run_id: int, *, wait_s: float = LEASE_WAIT_S) -> Iterator[Lease]:
    """Hold the lease on a run while executing it: no other process executes it meanwhile.

    If another live process holds it, wait for it (up to `wait_s`), then busy. However this process
    ends, short of SIGKILL, the run is left `complete` or `interrupted`, never `running`; after a SIGKILL
    the next process takes the lease over from the dead holder.
    """
    from sqlalchemy.exc import SQLAlchemyError

    owner = leases.me()
    deadline = time.monotonic() + wait_s
    told = False
    while (holder := store.claim_run(run_id, owner)) is not None:
        if time.monotonic() > deadline:
            raise ConflictError(
                f"run #{run_id} is being executed by {leases.describe(holder['owner'])}: busy, retry when it ends"
            )
        if not told:
            say(f"run #{run_id} is being executed by {leases.describe(holder['owner'])}: waiting")
            told = True
        time.sleep(1.0)
    lease = Lease(store, run_id)
    try:
        yield lease
    finally:
        try:
            store.release_run(run_id, owner, lease.status)
        except SQLAlchemyError:  # the database went away: the lease's holder is dead to the next reader
            pass


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
    ws.verifiers.check(j.task for j in jobs)
    adapter = ws.plugins.registry.get("adapter", artifact.manifest.adapter)(artifact)
    prestart = getattr(adapter, "prestart", None)
    if prestart is not None and jobs:  # where pools are kept, its workers start while the run is planned
        prestart(min(ws.config.run.concurrency, len(jobs)), early=True)
    try:
        for model in getattr(adapter, "models", lambda _: [])(ws.config.models):
            check_model(model)
        if budget is None or not jobs:
            return Estimate(len(jobs), 0, 0.0)
        seed = ws.config.run.seed
        est = estimate(
            adapter,
            jobs,
            seed_of=lambda j: trial_seed(seed, j.task.id, j.repeat, j.attempt),
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
    if create:  # found or made in one step: runners that need the same run at once share it
        return ws.store.find_or_create_run(
            version_id,
            split=split,
            seed=seed,
            suite=suite.fingerprint(split),
            statuses=statuses,
            repeats=repeats,
            purpose=purpose,
            task_ids=[t.id for t in suite.split(split)],
            sampling=Sampling.of(ws.materialize(agent, version).manifest).to_dict(),
        )
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
    return None, False


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its stored row, how many trials this call executed, whether it resumed one, the counts."""

    run: dict[str, Any]
    executed: int
    resumed: bool
    counts: dict[str, int]
    version: VersionInfo

    @property
    def record(self) -> Run:
        """What plugins and `--json` readers get."""
        return Run.of(self.run, self.version, counts=self.counts, executed=self.executed, resumed=self.resumed)


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
    from release_pipeline.sandbox.workers import kept_pools

    with kept_pools():  # the workers started for its preflight are the run's
        return _run_version(ws, agent, version, split, repeats, purpose, fresh, reuse, progress, budget)


def _run_version(
    ws: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    split: str,
    repeats: int | None,
    purpose: str,
    fresh: bool,
    reuse: bool,
    progress: ProgressFactory | None,
    budget: Budget | None,
) -> RunOutcome:
    cfg = ws.config.run
    repeats = repeats or cfg.repeats
    tasks = ws.suite(agent).split(split)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in split {split!r}")
    unfinished = ("running", "interrupted")
    statuses = () if fresh else ("complete", *unfinished) if reuse else unfinished
    run, resumed = open_run(
        ws, agent, version, split=split, repeats=repeats, purpose=purpose, statuses=statuses, create=False
    )
    done = effective(ws.store.trials(run["id"], with_trace=False)) if run else {}
    jobs = missing_jobs(tasks, range(repeats), done)
    artifact = ws.materialize(agent, version)
    preflight(ws, artifact, jobs, budget, f"run of {agent.name} v{version.number} on {split}")
    if ws.unisolated:
        say(f"warning: {ws.unisolated}")
    if run is None:
        # the same choice again, now made atomically: another runner may have made the run meanwhile
        run, resumed = open_run(ws, agent, version, split=split, repeats=repeats, purpose=purpose, statuses=statuses)
        assert run is not None
    executed = execute_leased(ws, artifact, run["id"], tasks, repeats, progress or silent)
    final = effective(ws.store.trials(run["id"], with_trace=False))
    counts = {s: sum(1 for t in final.values() if t.status == s) for s in ("pass", "fail", "error")}
    outcome = RunOutcome(ws.store.run(run["id"]), executed, resumed, counts, version)
    ws.plugins.hook.release_run_finished(run=outcome.record, counts=counts)
    return outcome


def execute_leased(
    ws: Workspace, artifact: Artifact, run_id: int, tasks: list[Task], repeats: int, progress: ProgressFactory
) -> int:
    """Hold the run's lease, execute the trials it still misses, mark it complete; returns how many ran."""
    with leased(ws.store, run_id) as lease:
        # another process may have executed some of them while we waited for the lease
        jobs = missing_jobs(tasks, range(repeats), effective(ws.store.trials(run_id, with_trace=False)))
        with progress(f"{artifact.agent} v{artifact.number} {tasks[0].split}", len(jobs)) as advance:
            settings = RunSettings.of(ws, advance)
            execute_jobs(
                artifact,
                jobs,
                run_id=run_id,
                plugins=ws.plugins,
                store=ws.store,
                verifiers=ws.verifiers,
                settings=settings,
            )
        lease.complete()
    return len(jobs)


def task_outcomes(
    trials: Iterable[TrialRecord], tasks: Iterable[Task], repeats: int | dict[str, int] | None = None
) -> dict[str, TaskOutcome]:
    """Pass counts per task over the effective trials; `error` trials are counted apart, never as fails.

    With `repeats` (one number, or one per task id), only repeat indices below
    it count, so two versions are compared over the same seeds even when one of
    them ran more repeats.
    """
    counted: dict[str, list[TrialRecord]] = {t.id: [] for t in tasks}
    for (task_id, repeat), trial in sorted(effective(trials).items()):
        limit = repeats.get(task_id) if isinstance(repeats, dict) else repeats
        if task_id in counted and (limit is None or repeat < limit):
            counted[task_id].append(trial)
    return {t.id: _outcome(t, counted[t.id]) for t in tasks}


def _outcome(task: Task, trials: list[TrialRecord]) -> TaskOutcome:
    """One task's counts over its trials (in repeat order); `error` trials apart."""
    judged = [t for t in trials if t.status != "error"]
    return TaskOutcome(
        task.id,
        passes=sum(1 for t in judged if t.status == "pass"),
        trials=len(judged),
        errors=len(trials) - len(judged),
        tags=task.tags,
        trial_ids=tuple(t.id for t in trials if t.id is not None),  # stored trials always have one
    )
