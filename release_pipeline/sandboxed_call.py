"""Run one call of a Python agent inside the sandbox: `python -m release_pipeline.sandboxed_call module:function`.

Reads `{"input", "task_id", "repeat", "seed", "params"}` as JSON on stdin, calls the function from the
current folder (the artifact) and prints its result as JSON, the way the subprocess adapter expects.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from pathlib import Path


def main() -> None:
    from release_pipeline.loading import load_callable
    from release_pipeline.models import TrialContext

    target = sys.argv[1]
    payload = json.load(sys.stdin)
    fn = load_callable(target, Path.cwd(), what="agent entry")
    ctx = TrialContext(payload["task_id"], payload["repeat"], payload["seed"], payload.get("params", {}))
    args = (payload["input"], ctx) if len(inspect.signature(fn).parameters) >= 2 else (payload["input"],)
    result = fn(*args)
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    if not (isinstance(result, dict) and "output" in result):
        result = {"output": result}
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
