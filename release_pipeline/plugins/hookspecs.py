"""Every hook a release-pipeline plugin can implement.

Plugins are modules or objects with functions marked `@hookimpl`, registered
through the `release_pipeline` entry-point group or dropped into a workspace's
`plugins/` folder. The built-in behaviour is registered the same way (see
`release_pipeline/builtin/`), so a plugin extends exactly the surface the core
uses. Hooks are always called with keyword arguments: an implementation may
accept fewer arguments than the spec names, which lets a hook grow later.

Two kinds of hooks:

* register hooks hand the plugin a `register(name, component)` callback; the
  core, not the plugin, rejects duplicate names;
* stage hooks *are* the stages of `run -> critic -> diagnose -> candidate ->
  gate -> promote` (`release_stage_*`, pytest's `pytest_runtest_protocol` is the
  model): each is `firstresult`, the built-in plugin implements it (`trylast`),
  and every caller (each command, `promote --iterations`, the GitHub Action)
  reaches a stage only through its hook (`release_pipeline.pipeline`). A
  plugin wraps a stage with `@hookimpl(wrapper=True)` (`result = yield`, for
  timing, tracing, a transaction, a retry) or replaces it by returning a result
  first. Their arguments are the stage's typed inputs plus `workspace`, the
  handle an implementation needs to do the stage's work;
* notification and collecting hooks (`release_run_finished`, `release_diagnose`,
  `release_gate_checks`, ...) are called by the stages with frozen data objects
  (never a database session): collecting hooks gather every implementation's
  answer; the others are notifications.

(Register hooks are called once per plugin, so that each component is attributed to the plugin that
registered it.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import typer

    from release_pipeline.config.policy import GatePolicy
    from release_pipeline.config.release_yaml import AgentConfig, WorkspaceConfig
    from release_pipeline.models import (
        Artifact,
        Candidate,
        CandidateContext,
        DiagnosisRequest,
        GateEvidence,
        GateReport,
        HeadMove,
        Pattern,
        Reason,
        Run,
        Spec,
        Suite,
        Symptom,
        VersionInfo,
    )
    from release_pipeline.progress import ProgressFactory
    from release_pipeline.trials.budget import Budget

PROJECT = "release_pipeline"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


class WorkspaceView(Protocol):
    """What a stage hook receives as `workspace`: the workspace's settings, store, plugins and LLM gateway, and
    the versions of its agents (`release_pipeline.workspace.Workspace` is the one the CLI passes)."""

    root: Path

    @property
    def config(self) -> WorkspaceConfig: ...

    @property
    def store(self) -> Any: ...

    @property
    def plugins(self) -> Any: ...

    @property
    def llm(self) -> Any: ...

    def head(self, agent: AgentConfig) -> VersionInfo: ...

    def suite(self, agent: AgentConfig) -> Suite: ...

    def materialize(self, agent: AgentConfig, version: VersionInfo) -> Artifact: ...


# ----- register hooks ------------------------------------------------------------------


@hookspec
def release_register_agent_adapters(register: Register) -> None:
    """Register agent adapters: `register(name, factory)`.

    `factory(artifact: Artifact)` returns an object with
    `async run(task: Task, ctx: TrialContext) -> AgentResult` and `close()`.
    An agent manifest names its adapter in `adapter:`. Built in: `callable`
    (a Python `module:function`), `subprocess` (JSON on stdin and stdout) and
    `prompt` (prompt files and demonstrations, through litellm). An adapter
    may also offer `models(models) -> list[str]` (checked before a run starts),
    `planned_call(task, ctx)` (priced by `--budget`) and `async aclose()`
    (awaited on the run's event loop when it ends, before `close()`). An adapter
    that runs untrusted code must run it out of the harness's process, as the
    built-in ones do (`release_pipeline.sandbox.isolation`, `release_pipeline.sandbox.pool`).
    """


@hookspec
def release_register_suite_loaders(register: Register) -> None:
    """Register suite loaders: `register(name, loader, extensions=(...))`.

    `loader(reference: str, root: Path) -> Suite`. A workspace names a suite as
    a file path (dispatched by extension) or as `name:argument` for loaders that
    build a suite from something other than a file. Built in: `yaml`, `jsonl`.
    """


@hookspec
def release_register_verifiers(register: Register) -> None:
    """Register verifiers: `register(name, factory)`.

    `factory(options: dict, root: Path)` returns `verify(task: Task, output) -> Verdict`.
    A suite selects one with `verifier: {type: name, ...options}`. Built in:
    `exact`, `normalized`, `regex`, `numeric`, `json_schema`, `python`.
    The factory raises ConfigError for settings it cannot use; `verify` may carry
    `check_task(task)`, which raises ConfigError for a task it cannot judge. Both
    run before any trial does, so a malformed verifier stops a run with exit 2.
    `output` is always plain JSON data, exactly as the trial records it.
    """


@hookspec
def release_register_critics(register: Register) -> None:
    """Register critics: `register(name, critic)`.

    `critic(items: list[CriticInput], services: CriticServices) -> list[Symptom]`.
    A critic sees failed trials only through `CriticInput`, which carries no part
    of the agent artifact: it is implementation-blind by construction.
    `services` holds the LLM gateway and the critic role's model. Built in:
    `heuristic` (no LLM) and `llm`.
    """


@hookspec
def release_register_candidate_strategies(register: Register) -> None:
    """Register candidate strategies: `register(name, strategy)`.

    `strategy(ctx: CandidateContext) -> CandidateProposal | None`; None means it
    has nothing (more) to propose. A proposal is a patch, new file contents or a
    git ref; it is recorded and gated like any candidate. Used by `release
    promote --iterations N`. Built in: `patch-queue` (human-authored patches,
    taken in order), `fewshot` (demonstrations from the dev split) and `llm-edit`
    (the synthesizer model rewrites the editable files).
    """


@hookspec
def release_register_executors(register: Register) -> None:
    """Register executors: `register(name, factory)`.

    `factory(**options)` (options from `run: {executor: {name, ...}}` in release.yaml, or `--address`) returns an
    object with `async map(jobs: list, work: async callable, concurrency: int, on_result: callable)` that awaits
    `work(job)` for every job, at most `concurrency` at a time, and hands each result to `on_result` as soon as it
    is ready. An executor that runs trials elsewhere builds the runner there from `work.recipe()` (picklable:
    `host = remote_trials.TrialHost(recipe)`, then `await host.run(job, work.run_id)`; a host serves every run of
    the same artifact), and hands over `work.lost(job, why)` (an `error` trial) for a job whose worker was lost.
    Built in: `local`, `ray`.
    """


@hookspec
def release_register_commands(app: typer.Typer) -> None:
    """Add commands to the `release` CLI: `@app.command()` on the given Typer app."""


# ----- stage hooks: the stages themselves ----------------------------------------------


@hookspec(firstresult=True)
def release_stage_run(
    workspace: WorkspaceView,
    agent: AgentConfig,
    version: VersionInfo,
    split: str,
    repeats: int | None,
    fresh: bool,
    reuse: bool,
    progress: ProgressFactory,
    budget: Budget | None,
) -> Run | None:
    """Stage run: run `version` of `agent` over `split` and return the run's record.

    :param repeats: repeats per task (None: the workspace's `run.repeats`).
    :param fresh: start a new run instead of resuming an unfinished identical one.
    :param reuse: return an identical complete run as it is instead of running again.
    :param progress: a progress-bar factory, `progress(text, total)`.
    :param budget: what the run may spend; a run estimated over it is refused before anything runs.

    First result wins: the built-in implementation executes the missing trials through the trial engine and
    records them. Reached by `release run`, `release candidate --strategy` and `release promote`.
    """


@hookspec(firstresult=True)
def release_stage_critic(
    workspace: WorkspaceView, agent: AgentConfig, run_id: int, critic: str | None, progress: ProgressFactory
) -> list[Symptom] | None:
    """Stage critic: return the symptoms of run `run_id`'s failed trials; the pipeline stores them.

    :param run_id: a complete run of `agent`.
    :param critic: the critic to use (None: the one the agent's configuration names, `critic:`).
    :param progress: a progress-bar factory.

    First result wins: the built-in implementation calls the critic, which sees only `CriticInput`s. A
    replacement returns `Symptom`s, one or more per failed trial it labels.
    """


@hookspec(firstresult=True)
def release_stage_diagnose(workspace: WorkspaceView, agent: AgentConfig, run_id: int) -> Spec | None:
    """Stage diagnose: turn run `run_id`'s outcomes and symptoms into a stored engineering spec.

    First result wins: the built-in implementation merges every `release_diagnose` answer into one spec.
    """


@hookspec(firstresult=True)
def release_stage_candidate(
    workspace: WorkspaceView, agent: AgentConfig, context: CandidateContext, strategy: str
) -> Candidate | None:
    """Stage candidate: synthesize and record exactly one release candidate from `context`.

    :param context: the canonical artifact, the spec, dev examples, the strategy's options and the candidates
        already judged against the base.
    :param strategy: the strategy's name (`change` records the ref or patch file in option `from`, as
        `release candidate --from` and `release gate --candidate REF` do).

    Returns the recorded candidate, or None when there is nothing (more) to propose. First result wins: the
    built-in implementation asks the registered strategy and records its proposal (raising `AlreadyJudged` for
    content judged before).
    """


@hookspec(firstresult=True)
def release_stage_gate(
    workspace: WorkspaceView,
    agent: AgentConfig,
    candidate: VersionInfo,
    progress: ProgressFactory,
    budget: Budget | None,
) -> GateReport | None:
    """Stage gate: compare `candidate` with the canonical version task by task, record and return the report.

    First result wins: the built-in implementation runs the flip-centered gate under the canonical commit's
    policy; every `release_gate_checks` implementation gives its reasons. A replacement records its report
    (`workspace.store.save_gate_report`) and decides `release gate`, `release promote` and the GitHub Action.
    """


@hookspec(firstresult=True)
def release_stage_promote(
    workspace: WorkspaceView, agent: AgentConfig, candidate: VersionInfo, reason: str
) -> HeadMove | None:
    """Stage promote: make the accepted `candidate` canonical, in the store and in git together.

    :param reason: why, recorded with the move.

    First result wins: the built-in implementation is a compare-and-swap of the head and the git ref.
    """


# ----- notifications and collecting hooks, called by the stages ------------------------


@hookspec
def release_run_finished(run: Run, counts: dict[str, int]) -> None:
    """Stage run: a run finished. `run` is the run record, `counts` maps status to trial count."""


@hookspec
def release_critic_finished(run_id: int, symptoms: list[Symptom]) -> None:
    """Stage critic: symptoms of a run's failed trials were labelled and stored."""


@hookspec
def release_diagnose(request: DiagnosisRequest) -> list[Pattern]:  # type: ignore[empty-body]
    """Stage diagnose: return failure patterns found in a run's outcomes and symptoms.

    Every implementation contributes; the core merges the patterns of all
    diagnosis scripts into one spec, ordered by count. Must be deterministic:
    the same request gives the same patterns, so a spec can be audited.
    """


@hookspec
def release_candidate_created(version: VersionInfo, changed_files: list[str]) -> None:
    """Stage candidate: a release candidate was recorded on its own git branch."""


@hookspec
def release_gate_checks(evidence: GateEvidence, policy: GatePolicy) -> list[Reason | str]:  # type: ignore[empty-body]
    """Stage gate: return reasons not to accept the candidate (an empty list means no objection).

    Every implementation is asked; the candidate is accepted only when no reason is given. A reason is a
    `Reason(code, message, tasks)`, whose code decides between rejected and undecided (see
    `release_pipeline.models.Reason`), or a plain string, which rejects with the code `plugin`. The built-in
    checks apply the gate policy. `evidence.rows` holds every task's class, counts and largest possible drop.
    """


@hookspec
def release_promoted(move: HeadMove, workspace: Path) -> None:
    """Stage promote: the canonical head moved (a promotion or a rollback) in the workspace at `workspace`."""


@hookspec
def release_candidate_rejected(version: VersionInfo, reasons: list[str]) -> None:
    """Stage gate/promote: a candidate was rejected and stays on record with its reasons."""
