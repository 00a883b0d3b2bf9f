"""The main job, measured: `scripts/demo.sh` in a fresh folder, then what it cost, from its own store.

Usage: python bench/bench_demo.py   (after `make local-model`; add `unshare -n` in front to cut the network)
Prints a Markdown section for bench/RESULTS.md: wall time, LLM calls and tokens per role, and each
candidate's confirmed fixes and regressions.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "demo"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.parent.mkdir(parents=True, exist_ok=True)
    release = str(Path(sys.executable).with_name("release"))
    start = time.perf_counter()
    subprocess.run(
        ["bash", str(HERE.parent / "scripts" / "demo.sh"), str(WORK)],
        check=True,
        env={**os.environ, "RELEASE": release},
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    db = sqlite3.connect(WORK / ".release" / "release.db")
    print(f"- wall time of `scripts/demo.sh` (both agents, 2 iterations each): {wall:.1f} s")
    print()
    print("| role | LLM calls | prompt tokens | completion tokens | summed call latency s |")
    print("|---|---:|---:|---:|---:|")
    for role, calls, prompt, completion, latency in db.execute(
        "SELECT role, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms) / 1000 "
        "FROM llm_calls GROUP BY role ORDER BY role"
    ):
        print(f"| {role} | {calls} | {prompt} | {completion} | {latency:.1f} |")
    print()
    print("| agent | candidate | intent | decision | confirmed fixes | confirmed regressions |")
    print("|---|---|---|---|---:|---:|")
    for agent in ("qa", "calc"):
        out = subprocess.run(
            [release, "log", "--agent", agent, "--json"], cwd=WORK, capture_output=True, text=True, check=True
        ).stdout
        for version in json.loads(out):
            gate = version["gate"]
            if gate:
                print(
                    f"| {agent} | v{version['number']} | {version['intent']} | {gate['decision']} | "
                    f"{gate['fixes']} | {gate['regressions']} |"
                )


if __name__ == "__main__":
    main()
