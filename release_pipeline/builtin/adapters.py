"""Built-in agent adapters: a Python callable, and a subprocess speaking JSON (any language)."""

from __future__ import annotations

import inspect
import json
import os
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
    """Runs `command: [...]` in the artifact folder, once per trial.

    stdin gets `{"task_id", "input", "repeat", "seed", "params"}` as JSON; stdout
    must be one JSON object with `output` and optionally `trace`, `tokens`,
    `cost`. Exit status 75 reports an infrastructure failure (an `error`
    trial); any other non-zero status is the agent's failure.
    """

    def __init__(self, artifact: Artifact):
        if not artifact.manifest.command:
            raise ConfigError(f"agent {artifact.agent!r}: the subprocess adapter needs `command: [...]`")
        self.command = list(artifact.manifest.command)
        self.cwd = artifact.path

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        import asyncio

        payload = {
            "task_id": task.id,
            "input": task.input,
            "repeat": ctx.repeat,
            "seed": ctx.seed,
            "params": ctx.params,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.cwd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONHASHSEED": str(ctx.seed)},
            )
        except OSError as exc:
            raise InfrastructureError(f"cannot start {self.command[0]!r}: {exc.strerror}") from None
        try:
            out, err = await proc.communicate(json.dumps(payload).encode())
        finally:
            if proc.returncode is None:  # cancelled (timeout): do not leave it running
                proc.kill()
                await proc.wait()
        if proc.returncode == EXIT_INFRASTRUCTURE:
            raise InfrastructureError(_tail(err) or "agent reported an infrastructure failure")
        if proc.returncode != 0:
            raise RuntimeError(f"agent exited with status {proc.returncode}: {_tail(err)}")
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise AgentProtocolError(f"agent printed invalid JSON ({exc.msg}): {_tail(out)}") from None
        if not isinstance(data, dict) or "output" not in data:
            raise AgentProtocolError("agent must print a JSON object with an `output` field")
        return as_result(data)

    def close(self) -> None:
        pass


def _tail(data: bytes, limit: int = 300) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[-limit:]


@hookimpl
def release_register_agent_adapters(register):
    register("callable", CallableAgent)
    register("subprocess", SubprocessAgent)
