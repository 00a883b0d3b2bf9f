"""The local model's serving speed, idle and with both cores busy: our provider beside raw llama.cpp.

    .venv/bin/python bench/bench_serving.py [--db demo-workspace/.release/release.db] [--calls 120]

Replays LLM calls the demo recorded (its agent and critic calls, in their order) through:

- `provider`: our `local/` provider through litellm, `BENCH_IN_FLIGHT` (default 8) calls in flight as a run
  makes them (one generation at a time, one generating thread and two for the prompt, OpenMP threads spinning
  30,000 iterations before they sleep);
- `raw llama.cpp`: `Llama.create_chat_completion` called one after the other, with llama-cpp-python's defaults
  (on 2 cores: one generating thread, two for the prompt) and OpenMP's default wait (a long spin);

each in a process of its own (the OpenMP setting is read once, when the library loads), first on an idle machine,
then while two busy loops keep both cores busy. Imports and loading the model are left out of the wall time.
Prints tokens per second (prompt and completion) per row.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_calls(db: Path, limit: int) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT request FROM llm_calls WHERE model LIKE 'local/%' AND role IN ('agent', 'critic') ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    conn.close()
    return [json.loads(r[0]) for r in rows]


def replay(mode: str, calls_file: str) -> dict:
    """In this process: replay the calls, return wall time and token counts."""
    calls = json.loads(Path(calls_file).read_text())
    tokens = 0
    if mode == "raw":
        from llama_cpp import Llama

        from release_pipeline.llm.providers import weights_path

        llm = Llama(model_path=str(weights_path("smollm2")), n_ctx=8192, verbose=False)
        start = time.perf_counter()  # imports and loading the model left out, on both sides
        for call in calls:
            params = {k: v for k, v in call["params"].items() if k in ("max_tokens", "temperature", "stop", "seed")}
            if call["params"].get("response_format"):
                params["response_format"] = call["params"]["response_format"]
            out = llm.create_chat_completion(messages=call["messages"], **params)
            tokens += out["usage"]["total_tokens"]
        llm.close()
    else:
        import asyncio

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from release_pipeline.llm.providers import litellm_module, local_backend

        litellm = litellm_module()
        local_backend("smollm2")
        start = time.perf_counter()

        async def main() -> int:
            gate = asyncio.Semaphore(int(os.environ.get("BENCH_IN_FLIGHT", 8)))

            async def one(call: dict) -> int:
                async with gate:
                    reply = await litellm.acompletion(
                        model="local/smollm2", messages=call["messages"], num_retries=0, **call["params"]
                    )
                    return reply.usage.total_tokens

            return sum(await asyncio.gather(*(one(c) for c in calls)))

        tokens = asyncio.run(main())
    return {"wall": time.perf_counter() - start, "tokens": tokens}


def measure(mode: str, calls_file: str, busy: bool) -> dict:
    loops = []
    if busy:
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, calls_file], capture_output=True, text=True, env=env, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for loop in loops:
            loop.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=str(HERE.parent / "demo-workspace" / ".release" / "release.db"))
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(replay(*args.child)))
        return
    calls = load_calls(Path(args.db), args.calls)
    calls_file = HERE / ".work" / "serving-calls.json"
    calls_file.parent.mkdir(exist_ok=True)
    calls_file.write_text(json.dumps(calls))
    print(f"{len(calls)} calls the demo recorded (agent and critic), replayed in order")
    print("| server | machine | wall s | tokens | tokens/s |")
    print("|---|---|---:|---:|---:|")
    for busy in (False, True):
        for mode, name in (
            ("raw", "raw llama.cpp, serial, default threads"),
            ("provider", "our provider, 8 in flight"),
        ):
            result = measure(mode, str(calls_file), busy)
            rate = result["tokens"] / result["wall"]
            where = "both cores busy" if busy else "idle"
            print(f"| {name} | {where} | {result['wall']:.1f} | {result['tokens']} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    main()
