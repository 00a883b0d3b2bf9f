"""How often the local LLM critic's label agrees with the heuristic critic's, and what a critic call costs.

    .venv/bin/python bench/critic_agreement.py [--workspace demo-workspace] [--limit 60]

For the latest complete dev run of every agent in the workspace (the demo's, by default), every failed trial
is labelled three ways: by the heuristic critic (reason codes and verifier feedback: certain for timeouts,
crashes, empty answers and format-only mistakes), by the model asked with the whole vocabulary (how the critic
worked before), and by the model asked as the `llm` critic asks now (facts of the harness left to the
heuristic, labels limited to the ones consistent with the verdict). Both label sets are mapped onto one
vocabulary; the report gives the share of agreement with the heuristic label and the model's seconds per call.
Greedy copies are asked once (the cache answers the rest), so the figure counts distinct failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# heuristic label -> the LLM critic's vocabulary
COMMON = {
    "wrong_value": "wrong_answer",
    "format_mismatch": "format_error",
    "verbose_answer": "verbose_answer",
    "malformed_output": "format_error",
    "empty_output": "empty_answer",
    "exception": "crash",
    "resource_limit": "crash",
    "timeout": "timeout",
}


def distinct(items):
    """One failure per (task, output): greedy repeats are copies."""
    seen, kept = set(), []
    for item in items:
        key = (item.task_id, json.dumps(item.output, sort_keys=True, default=str))
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


async def ask(item, services, labels, grammar_labels) -> tuple[str | None, float]:
    from release_pipeline.builtin import llm_critic

    messages = [
        {"role": "system", "content": llm_critic.SYSTEM},
        {"role": "user", "content": llm_critic.critic_prompt(item)},
    ]
    params = llm_critic.request_params(services.model, grammar_labels)
    params["max_tokens"] = 120 if grammar_labels == llm_critic.LABELS else params["max_tokens"]
    start = time.perf_counter()
    reply = await services.llm.complete(role="critic-bench", model=services.model, messages=messages, params=params)
    found, _ = llm_critic.parse_symptom(reply.content, labels)
    return (found["label"] if found else None), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default=str(HERE.parent / "demo-workspace"))
    parser.add_argument("--limit", type=int, default=60, help="distinct failures per agent at most")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from release_pipeline.builtin import llm_critic
    from release_pipeline.builtin.critics import heuristic
    from release_pipeline.models import CriticServices
    from release_pipeline.stages.critic import critic_inputs
    from release_pipeline.workspace import Workspace

    ws = Workspace(Path(args.workspace))
    services = CriticServices(ws.llm, ws.config.models["critic"])
    print(f"critic model {services.model}; workspace {args.workspace}")
    print(
        "| agent | distinct failures | agrees, model asked with the whole vocabulary (s/call) "
        "| agrees, as the critic asks now (s/call, model calls) |"
    )
    print("|---|---:|---:|---:|")
    for agent in ws.config.agents.values():
        runs = [
            r
            for v in ws.store.versions(agent.name)
            for r in ws.store.runs_of(ws.store.version_id(agent.name, v.number))
        ]
        dev = [r for r in runs if r.split == "dev" and r.status == "complete"]
        if not dev:
            continue
        run = max(dev, key=lambda r: r.id)
        items = distinct(critic_inputs(ws.store.trials(run.id), ws.suite(agent)))[: args.limit]
        if not items:
            continue
        truth = {i.trial_id: COMMON.get(heuristic([i])[0].label, "other") for i in items}
        whole, now, t_whole, t_now, asked = 0, 0, 0.0, 0.0, 0
        for item in items:
            label, took = asyncio.run(ask(item, services, llm_critic.LABELS, llm_critic.LABELS))
            whole += label == truth[item.trial_id]
            t_whole += took
            if item.reason in llm_critic.FACTUAL or llm_critic._format_only(item):
                now += 1  # the critic leaves it to the heuristic now: the same label by construction
                continue
            label, took = asyncio.run(ask(item, services, llm_critic.ASKED_LABELS, llm_critic.ASKED_LABELS))
            now += label == truth[item.trial_id]
            t_now, asked = t_now + took, asked + 1
        n = len(items)
        print(
            f"| {agent.name} | {n} | {whole / n:.0%} ({t_whole / n:.2f}) "
            f"| {now / n:.0%} ({t_now / max(1, asked):.2f}, {asked}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
