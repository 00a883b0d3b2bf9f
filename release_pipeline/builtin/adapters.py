"""Built-in agent adapters: a Python callable, and a subprocess speaking JSON (any language).

Both run the agent's code in the sandbox, out of the harness's process: a callable in a pool of
sandboxed Python workers, several trials at once each (`release_pipeline.sandbox.pool`), a subprocess
once per trial. Only an agent the workspace's own `release.yaml` marks `trusted: true` (never its
manifest, which a candidate ships) runs in-process, with none of the sandbox's protections.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import threading
from pathlib import Path
from typing import Any

from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    ConfigError,
    InfrastructureError,
    SandboxViolation,
)
from release_pipeline.loading import load_callable
from release_pipeline.models import AgentResult, Artifact, Task, TrialContext
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.sandbox.contract import EXIT_INFRASTRUCTURE, as_result, trial_payload
from release_pipeline.sandbox.isolation import Limits

DEFAULT_TIMEOUT_S = 60.0


def agent_limits(artifact: Artifact) -> Limits:
    """The sandbox's limits for an agent: its manifest's `sandbox:` over defaults fitted to its timeout.

    An empty or partial `sandbox:` means those defaults, never "no sandbox".
    """
    options = dict(artifact.manifest.sandbox)
    options["env"] = tuple(options.get("env", ()))
    wall = float(artifact.manifest.timeout_s or DEFAULT_TIMEOUT_S) + 1  # the run loop's timeout comes first
    return Limits(**{"wall_s": wall, "cpu_s": math.ceil(wall) + 1, **options})


def _check_entry(artifact: Artifact) -> str:
    entry = artifact.manifest.entry
    module, sep, attr = entry.partition(":")
    if not (module and sep and attr):
        raise ConfigError(f"agent {artifact.agent!r}: the callable adapter needs `entry: module:function`")
    return entry


class SandboxedCallableAgent:
    """Runs `entry: module:function` from the artifact folder in sandboxed worker processes.

    The function takes `(input)` or `(input, ctx)`, plain or `async def`; `ctx.llm` is a proxy whose
    calls the harness makes (cached, recorded, with keys that never enter the sandbox). Its workers are
    the command's (`sandbox.pool.kept_pools`): kept from run to run, and shared by the adapters of one version.
    """

    def __init__(self, artifact: Artifact):
        from release_pipeline.sandbox.pool import pool_for

        limits = agent_limits(artifact)
        self.pool = pool_for(_check_entry(artifact), artifact.path, limits, artifact.content_hash)

    def prestart(self, concurrency: int, early: bool = False) -> None:
        """Start the workers `concurrency` trials need now, ahead of the first one (`early`, while a run is only
        being planned: where the command keeps its pools, so the run finds them started)."""
        if not early or self.pool.kept:
            self.pool.plan(concurrency)

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        from release_pipeline.sandbox.worker import AgentLoadFailed

        try:
            return await self.pool.run(task, ctx)
        except AgentLoadFailed as exc:
            raise AgentProtocolError(f"the agent failed to import: {exc}") from None

    async def aclose(self) -> None:
        """The run ends: a kept pool waits for the next run, any other is stopped."""
        self.close()

    def close(self) -> None:
        if self.pool.kept:
            self.pool.detach()
        else:
            self.pool.close(wait=False)  # killed now; its folders are removed in the background


class TrustedCallableAgent:
    """A callable agent run in the harness's own process: only for agents the workspace marks `trusted`.

    `async def` functions run on the event loop, plain ones in a daemon thread each, so a slow agent
    cannot stall the rest and one that never returns cannot keep the process from exiting.
    """

    def __init__(self, artifact: Artifact):
        entry = _check_entry(artifact)
        self.fn = load_callable(entry, artifact.path, what=f"agent {artifact.agent!r} entry")
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.wants_ctx = len(inspect.signature(self.fn).parameters) >= 2

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        args = (task.input, ctx) if self.wants_ctx else (task.input,)
        if not self.is_async:
            return as_result(await _in_daemon_thread(self.fn, args))
        try:
            return as_result(await self.fn(*args))
        except SystemExit as exc:  # caught here, before it reaches the event loop and ends the run
            raise AgentCrashed(f"the agent called sys.exit({exc.code})") from None

    def close(self) -> None:
        pass


async def _in_daemon_thread(fn: Any, args: tuple) -> Any:
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(value)

    def work() -> None:
        error: BaseException | None
        try:
            value, error = fn(*args), None
        except SystemExit as exc:  # it must not end the harness
            value, error = None, AgentCrashed(f"the agent called sys.exit({exc.code})")
        except BaseException as exc:
            value, error = None, exc if isinstance(exc, Exception) else RuntimeError(f"agent raised {exc!r}")
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is gone: the trial was abandoned
            pass

    threading.Thread(target=work, name="trusted-agent", daemon=True).start()
    return await future


class SubprocessAgent:
    """Runs `command: [...]` from the artifact folder, once per trial, inside the sandbox.

    stdin gets `{"task_id", "input", "repeat", "attempt", "seed", "params"}` as JSON; stdout
    must be one JSON object with `output` and optionally `trace`, `tokens`,
    `cost`. Exit status 75 reports an infrastructure failure (an `error`
    trial); any other non-zero status, or a sandbox limit, is the agent's failure.
    The manifest's `sandbox:` sets the limits (`cpu_s`, `memory_mb`, `processes`,
    `file_size_mb`, `disk_mb`), `network: true` for agents that must reach a
    provider, and `env: [NAMES]` for variables to pass through.
    """

    def __init__(self, artifact: Artifact):
        from release_pipeline.sandbox.isolation import Sandbox

        if not artifact.manifest.command:
            raise ConfigError(f"agent {artifact.agent!r}: the subprocess adapter needs `command: [...]`")
        self.command = list(artifact.manifest.command)
        self.cwd: Path = artifact.path
        self.sandbox = Sandbox(agent_limits(artifact))

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        from release_pipeline.sandbox.isolation import SandboxError

        stdin = json.dumps(trial_payload(task, ctx))
        try:
            # all it printed (its file-size limit bounds that): the answer is whole JSON, cut to size once parsed
            whole = self.sandbox.limits.file_size_mb * 1024 * 1024
            result = await asyncio.to_thread(
                self.sandbox.run, self.command, stdin=stdin, cwd=self.cwd, stdout_limit=whole
            )
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
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise AgentProtocolError(f"agent printed invalid JSON ({detail}): {_tail(result.stdout)}") from None
        if not isinstance(data, dict) or "output" not in data:
            raise AgentProtocolError("agent must print a JSON object with an `output` field")
        return as_result(data)

    def close(self) -> None:
        pass


def callable_agent(artifact: Artifact) -> SandboxedCallableAgent | TrustedCallableAgent:
    """The `callable` adapter: sandboxed workers, or in-process for an agent the workspace trusts."""
    return TrustedCallableAgent(artifact) if artifact.trusted else SandboxedCallableAgent(artifact)


def _tail(text: str, limit: int = 300) -> str:
    return text.strip()[-limit:]


@hookimpl
def release_register_agent_adapters(register):
    register("callable", callable_agent)
    register("subprocess", SubprocessAgent)
