"""One trial: the agent under the trial's clock, then the task's verifier; never raises for the agent's fault."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from functools import partial

from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    AgentRaised,
    AttemptLost,
    InfrastructureError,
    RequestRejected,
    SandboxViolation,
    UserError,
)
from release_pipeline.llm.agent_calls import AgentLLM, allowed_models
from release_pipeline.models import AgentResult, Artifact, Task, TrialContext, TrialRecord, TrialStatus
from release_pipeline.plugins.registry import Registry
from release_pipeline.trials.clock import TrialClock, current_trial
from release_pipeline.trials.fit import bounded_text, recordable
from release_pipeline.trials.jobs import Job, trial_seed
from release_pipeline.trials.recipe import TrialRecipe
from release_pipeline.trials.settings import RunSettings
from release_pipeline.trials.verifiers import Verifiers


class TrialRunner:
    """Runs one job: the agent under a timeout, then the task's verifier. Never raises for an agent's fault.

    What the agent returned is made fit for the record (`trials.fit.recordable`) before it is verified, so the
    verdict is about exactly what is stored. A fault of the harness itself is an `error` trial.
    """

    def __init__(
        self, artifact: Artifact, registry: Registry, verifiers: Verifiers, run_id: int, settings: RunSettings
    ):
        self.artifact, self.settings = artifact, settings
        self.adapter = registry.get("adapter", artifact.manifest.adapter)(artifact)
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
            return await self._attempts(task, ctx, clock)
        except TimeoutError:
            return self._timed_out(trial, start, clock)
        except Exception as exc:
            return _ended_by(trial, start, exc)

    def _timed_out(self, trial: TrialRecord, start: float, clock: TrialClock) -> TrialRecord:
        """The trial ran out of time: the agent's failure, unless the harness or a provider took the time."""
        if clock.overran:  # the harness kept it waiting past its grace: load, not the agent's failure
            trial.status = "error"
            why = f"the harness kept the trial waiting over {clock.grace_s:g}s (the machine is overloaded)"
            return _ended(trial, start, "harness_overloaded", why, [])
        if clock.provider_cut_short:  # the time went waiting on an LLM provider: its fault, not the agent's
            trial.status = "error"
            why = f"the LLM provider did not answer within the trial's {self.timeout:g}s"
            return _ended(trial, start, "provider_timeout", why, [])
        return _ended(trial, start, "timeout", f"no answer within {self.timeout:g}s", [])

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


# What an exception out of the agent's attempt makes of its trial, first match wins: the reason, whether the
# trial is the agent's `fail` or the harness's `error`, and how the feedback begins. Anything else the agent
# raised is an `agent_exception`, with where it was raised.
ENDINGS: tuple[tuple[type[Exception], str, TrialStatus, str], ...] = (
    (RequestRejected, "request_rejected", "fail", ""),  # the provider refused the agent's own request
    (InfrastructureError, "infrastructure", "error", ""),
    (AgentProtocolError, "malformed_output", "fail", ""),
    (SandboxViolation, "sandbox_violation", "fail", "sandbox: "),
    (AgentCrashed, "agent_crash", "fail", ""),
)


def _ended_by(trial: TrialRecord, start: float, exc: Exception) -> TrialRecord:
    """The trial ended by what its attempt raised (see `ENDINGS`)."""
    for kind, reason, status, prefix in ENDINGS:
        if isinstance(exc, kind):
            trial.status = status
            return _ended(trial, start, reason, bounded_text(f"{prefix}{exc}", 2000), [])
    if isinstance(exc, AgentRaised):  # raised in the agent's own process, reported by name
        error, where = bounded_text(exc, 2000), exc.where
    else:
        error, where = bounded_text(f"{type(exc).__name__}: {exc}", 2000), _where(exc)
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
