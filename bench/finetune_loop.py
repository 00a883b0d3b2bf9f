"""Does fine-tuning teach the qa agent what prompt edits cannot? The loop with each strategy, from the same v1.

    .venv/bin/python bench/finetune_loop.py [--iterations 2] [--arms fewshot,lora-sft,grpo]

Each arm is a fresh copy of the bundled qa example (the demo's `release init`), improved by
`release promote --agent qa --iterations N --strategy ARM`; then the canonical version it ends on runs the
holdout split, which no strategy and no gate ever saw. Printed per arm: the versions promoted, and on the holdout
the exact-match passes (the suite's verdict) and the answers that contain the expected word (`contains_expected`,
content apart from format), with the wall time of the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RELEASE = str(REPO / ".venv" / "bin" / "release")
OPTIONS = {
    "fewshot": [],
    "lora-sft": ["-o", "steps=60"],
    "grpo": ["-o", "steps=30"],
}


def sh(cwd: Path, *args: str) -> str:
    done = subprocess.run([RELEASE, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"release {' '.join(args)}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def workspace(root: Path) -> None:
    root.mkdir(parents=True)
    for name in ("agents", "specs", "plugins", "gate-policy.yaml"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    config = yaml.safe_load((REPO / "release.yaml").read_text())
    config["agents"] = {"qa": config["agents"]["qa"]}
    (root / "release.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".gitignore").write_text(".release/\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "qa"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)
    sh(root, "init")


def arm(root: Path, strategy: str, iterations: int) -> dict:
    workspace(root)
    start = time.perf_counter()
    steps = json.loads(
        sh(root, "promote", "--agent", "qa", "--iterations", str(iterations), "--strategy", strategy,
           *OPTIONS.get(strategy, []), "--json")
    )  # fmt: skip
    seconds = time.perf_counter() - start
    run = json.loads(sh(root, "run", "--agent", "qa", "--split", "holdout", "--json"))
    tasks = run["counts"]["pass"] + run["counts"]["fail"] + run["counts"]["error"]
    contains = run["secondary"]["contains_expected"]
    return {
        "strategy": strategy,
        "promoted": [s["candidate"] for s in steps if s["promoted"]],
        "decisions": [s["decision"] for s in steps],
        "canonical": run["version"],
        "holdout_exact": f"{run['counts']['pass']}/{tasks}",
        "holdout_contains": f"{contains['passes']}/{contains['trials']}",
        "loop_s": round(seconds),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--arms", default="fewshot,lora-sft,grpo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="finetune-loop-") as tmp:
        for strategy in args.arms.split(","):
            print(json.dumps(arm(Path(tmp) / strategy, strategy, args.iterations)), flush=True)


if __name__ == "__main__":
    main()
