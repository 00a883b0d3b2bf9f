"""Built-in agent adapters: a Python callable, and a subprocess speaking JSON (any language)."""

from __future__ import annotations

import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from release_pipeline.errors import ConfigError, InfrastructureError
from release_pipeline.hookspecs import hookimpl
from release_pipeline.loading import load_callable
from release_pipeline.models import AgentResult, Artifact, Task, TrialContext

# Exit status by which a subprocess agent says "the infrastructure failed, not me" (sysexits EX_TEMPFAIL).
EXIT_INFRASTRUCTURE = 75


class AgentProtocolError(Exception):
    """The agent answered, but not in the shape its adapter requires."""


def as_result(value: Any) -> AgentResult:
    """Accept an AgentResult, a mapping with `output` (and `trace`, `tokens`, `cost`), or a bare answer."""
    if isinstance(value, AgentResult):
        return value
    if isinstance(value, dict) and "output" in value:
        trace = value.get("trace") or []
        if not isinstance(trace, list):
            raise AgentProtocolError("`trace` must be a list of steps")
        return AgentResult(value["output"], trace, int(value.get("tokens", 0)), float(value.get("cost", 0.0)))
    return AgentResult(value)


class CallableAgent:
    """Runs `entry: module:function` from the artifact folder.

    The function takes `(input)` or `(input, ctx)`; `async def` functions run on
    the event loop, plain ones in a thread so a slow agent cannot stall the rest.
    With `sandbox:` in the manifest, each call runs in the sandbox instead, in a
    process of its own (`ctx.llm` is then not available to it).
    """

    def __init__(self, artifact: Artifact):
        if not artifact.manifest.entry:
            raise ConfigError(f"agent {artifact.agent!r}: the callable adapter needs `entry: module:function`")
        self.fn = load_callable(artifact.manifest.entry, artifact.path, what=f"agent {artifact.agent!r} entry")
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.wants_ctx = len(inspect.signature(self.fn).parameters) >= 2
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        import asyncio

        args = (task.input, ctx) if self.wants_ctx else (task.input,)
        if self.is_async:
            return as_result(await self.fn(*args))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="agent")
        loop = asyncio.get_running_loop()
        return as_result(await loop.run_in_executor(self._pool, lambda: self.fn(*args)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class SubprocessAgent:
    """Runs `command: [...]` from the artifact folder, once per trial, inside the sandbox.

    stdin gets `{"task_id", "input", "repeat", "seed", "params"}` as JSON; stdout
    must be one JSON object with `output` and optionally `trace`, `tokens`,
    `cost`. Exit status 75 reports an infrastructure failure (an `error`
    trial); any other non-zero status, or a sandbox limit, is the agent's failure.
    The manifest's `sandbox:` sets the limits (`cpu_s`, `memory_mb`, `processes`,
    `file_size_mb`) and `network: true` for agents that must reach a provider.
    """

    def __init__(self, artifact: Artifact):
        from release_pipeline.sandbox import Limits, Sandbox

        if not artifact.manifest.command:
            raise ConfigError(f"agent {artifact.agent!r}: the subprocess adapter needs `command: [...]`")
        self.command = list(artifact.manifest.command)
        self.cwd = artifact.path
        options = dict(artifact.manifest.sandbox)
        wall = float(artifact.manifest.timeout_s or 60) + 1  # the run loop's timeout comes first
        self.sandbox = Sandbox(Limits(**{"wall_s": wall, "cpu_s": int(wall) + 1, **options}))

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        import asyncio

        from release_pipeline.sandbox import SandboxError

        payload = {
            "task_id": task.id,
            "input": task.input,
            "repeat": ctx.repeat,
            "seed": ctx.seed,
            "params": ctx.params,
        }
        try:
            result = await asyncio.to_thread(self.sandbox.run, self.command, stdin=json.dumps(payload), cwd=self.cwd)
        except SandboxError as exc:
            raise InfrastructureError(str(exc)) from None
        if result.status == "violation":
            raise SandboxViolation(result.reason)
        if result.returncode == EXIT_INFRASTRUCTURE:
            raise InfrastructureError(_tail(result.stderr) or "agent reported an infrastructure failure")
        if result.returncode == 127 or result.returncode == 126:
            raise InfrastructureError(f"cannot start {self.command[0]!r}: {_tail(result.stderr)}")
        if result.returncode != 0:
            raise RuntimeError(f"agent exited with status {result.returncode}: {_tail(result.stderr)}")
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise AgentProtocolError(f"agent printed invalid JSON ({exc.msg}): {_tail(result.stdout)}") from None
        if not isinstance(data, dict) or "output" not in data:
            raise AgentProtocolError("agent must print a JSON object with an `output` field")
        return as_result(data)

    def close(self) -> None:
        pass


class SandboxedCallableAgent(SubprocessAgent):
    """A callable agent whose every call runs in the sandbox, through `release_pipeline.sandboxed_call`."""

    def __init__(self, artifact: Artifact):
        import sys
        from dataclasses import replace

        if not artifact.manifest.entry:
            raise ConfigError(f"agent {artifact.agent!r}: the callable adapter needs `entry: module:function`")
        command = (sys.executable, "-m", "release_pipeline.sandboxed_call", artifact.manifest.entry)
        super().__init__(replace(artifact, manifest=replace(artifact.manifest, command=command)))


def callable_agent(artifact: Artifact) -> CallableAgent | SandboxedCallableAgent:
    """The `callable` adapter: in-process, or in the sandbox when the manifest has `sandbox:`."""
    return SandboxedCallableAgent(artifact) if artifact.manifest.sandbox else CallableAgent(artifact)


class SandboxViolation(Exception):
    """The agent's code ran into a sandbox limit: its failure, with the limit as the reason."""


def _tail(text: str, limit: int = 300) -> str:
    return text.strip()[-limit:]


@hookimpl
def release_register_agent_adapters(register):
    register("callable", callable_agent)
    register("subprocess", SubprocessAgent)
