"""The one door to the stages: every caller (each command, `promote --iterations`, the GitHub Action through the
CLI) runs a stage through its hook, `release_stage_*`, so a plugin that wraps or replaces a stage sees it run
whoever asked for it. The built-in stages are ordinary hook implementations (`builtin/stages.py`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

from release_pipeline.errors import AlreadyJudged, UserError
from release_pipeline.notices import say
from release_pipeline.progress import ProgressFactory, silent

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.models import (
        Candidate,
        CandidateContext,
        GateReport,
        HeadMove,
        Run,
        Spec,
        Symptom,
        VersionInfo,
    )
    from release_pipeline.trials.budget import Budget
    from release_pipeline.workspace import Workspace

T = TypeVar("T")


class Pipeline:
    """The stages of one agent of a workspace, each reached only through its hook."""

    def __init__(self, ws: Workspace, agent: AgentConfig):
        self.ws, self.agent = ws, agent
        self.hook = ws.plugins.hook

    def run(
        self,
        version: VersionInfo,
        *,
        split: str = "dev",
        repeats: int | None = None,
        fresh: bool = False,
        reuse: bool = False,
        progress: ProgressFactory = silent,
        budget: Budget | None = None,
    ) -> Run:
        """Stage run: `version` over `split`, resuming an identical unfinished run (or reusing a complete one)."""
        return _answered(
            "run",
            self.hook.release_stage_run(
                workspace=self.ws,
                agent=self.agent,
                version=version,
                split=split,
                repeats=repeats,
                fresh=fresh,
                reuse=reuse,
                progress=progress,
                budget=budget,
            ),
        )

    def critic(self, run_id: int, *, critic: str | None = None, progress: ProgressFactory = silent) -> list[Symptom]:
        """Stage critic: label run `run_id`'s failed trials, store the symptoms (replacing earlier ones), tell
        the plugins."""
        symptoms = _answered(
            "critic",
            self.hook.release_stage_critic(
                workspace=self.ws, agent=self.agent, run_id=run_id, critic=critic, progress=progress
            ),
        )
        self.ws.store.replace_symptoms(run_id, symptoms)
        self.hook.release_critic_finished(run_id=run_id, symptoms=symptoms)
        return symptoms

    def diagnose(self, run_id: int) -> Spec:
        """Stage diagnose: run `run_id`'s outcomes and symptoms as a stored engineering spec."""
        return _answered(
            "diagnose", self.hook.release_stage_diagnose(workspace=self.ws, agent=self.agent, run_id=run_id)
        )

    def candidate(self, context: CandidateContext, strategy: str) -> Candidate | None:
        """Stage candidate: the strategy's one candidate, recorded (None: it has nothing more to propose)."""
        return self.hook.release_stage_candidate(
            workspace=self.ws, agent=self.agent, context=context, strategy=strategy
        )

    def record_change(self, source: str, intent: str | None = None) -> Candidate:
        """Stage candidate for a change made elsewhere: a branch, commit, tag or patch file (strategy `change`)."""
        from release_pipeline.stages.candidate import change_context

        context = change_context(self.ws, self.agent, {"from": source, "intent": intent or ""})
        return _answered("candidate", self.candidate(context, "change"))

    def candidate_of(self, ref: str) -> VersionInfo:
        """A recorded candidate (`v3`, `3`), or the change at `ref` recorded as one; the same change recorded
        before against the canonical version (a merge of a gated pull request) is that candidate."""
        if re.fullmatch(r"[vV]?\d+", ref):
            return self.ws.resolve_version(self.agent, ref)
        self.ws.policy()  # a broken policy fails before anything is recorded
        self.ws.suite(self.agent)
        try:
            version = self.record_change(ref).version
        except AlreadyJudged as exc:
            say(f"{ref} is v{exc.twin}, already recorded against the canonical version")
            return self.ws.store.version(self.agent.name, exc.twin)
        say(f"recorded {ref} as candidate v{version.number} ({version.branch})")
        return version

    def gate(
        self, candidate: VersionInfo, *, progress: ProgressFactory = silent, budget: Budget | None = None
    ) -> GateReport:
        """Stage gate: `candidate` against the canonical version, task by task; the report is recorded."""
        return _answered(
            "gate",
            self.hook.release_stage_gate(
                workspace=self.ws, agent=self.agent, candidate=candidate, progress=progress, budget=budget
            ),
        )

    def promote(self, candidate: VersionInfo, *, reason: str = "") -> HeadMove:
        """Stage promote: the accepted `candidate` becomes canonical, in the store and in git together."""
        return _answered(
            "promote",
            self.hook.release_stage_promote(workspace=self.ws, agent=self.agent, candidate=candidate, reason=reason),
        )


def _answered(stage: str, result: T | None) -> T:
    """A stage's result; no answer at all means every implementation of the stage was blocked."""
    if result is None:
        raise UserError(f"no plugin ran stage {stage}: the built-in stages are blocked and nothing replaced them")
    return result
