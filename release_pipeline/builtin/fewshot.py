"""The `fewshot` candidate strategy: add demonstrations aimed at the spec's dominant failures.

Demonstrations come from the dev split only (which the candidate stage may see). Each iteration adds at most
`per_iteration` of them, up to `max_demos` in the file, chosen in this order:

1. the spec's target tasks the agent failed, pattern by pattern (the most frequent pattern first), each shown
   with its labelled answer: these are the failures the spec asks to fix;
2. then, for target tags still without a demonstration, a task of that tag the agent passed, with its own
   answer (bootstrapped from its traces).

A failed task is shown with the suite's reference answer where it has one (a benchmark's dev ground truth:
BFCL's calls, HumanEval's canonical solution), else its expected answer; one with neither is left out, never
shown answering `null`, and the user is told which were left out and why. Calls are written as calls (a list of
`{name, arguments}`), which the prompt agent shows as the assistant's tool calls, the form the model's provider
expects; code is written as code.

A demonstration another candidate against the same base already added (and was judged on) is used only when
nothing new is left, and never in the same combination: the strategy proposes something different or nothing.
The prompt must fit the model's context window: demonstrations that would push the longest dev prompt past
`max_prompt_share` of it (default 0.5; tokens estimated at 3 characters each) are left out. A function-calling
task (BFCL's shape) is shown compactly: its question and its calls, without the function schemas.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from release_pipeline.builtin.prompt_agent import is_calls
from release_pipeline.config.release_yaml import load_yaml, read_text
from release_pipeline.errors import ConfigError
from release_pipeline.models import CandidateContext, CandidateProposal
from release_pipeline.notices import say
from release_pipeline.plugins.hookspecs import hookimpl

CHARS_PER_TOKEN = 3  # a conservative estimate: real tokenizers give 3.5 to 4.5 characters per token in English


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _demo_input(value: Any) -> Any:
    """What a demonstration shows of a task's input: a function-calling task by its question alone."""
    if isinstance(value, dict) and isinstance(value.get("question"), list):
        turns = [t.get("content", "") for t in value["question"] if isinstance(t, dict) and t.get("role") == "user"]
        return turns[-1] if turns else ""
    return value


def _answer(example: dict[str, Any]) -> Any:
    """What a demonstration answers: the agent's own answer where it passed, else the suite's reference answer
    (a benchmark's ground truth: calls, code), else its expected answer; None when there is none to show."""
    if example["passed"]:
        return example["output"]
    if example.get("reference") is not None:
        return example["reference"]
    return example["expected"]


def _candidates(ctx: CandidateContext) -> list[tuple[dict[str, Any], str]]:
    """Dev examples worth showing, best first, each with why it was chosen: failed targets by the pattern that
    named them, then targets no pattern named, then one passing example per target tag."""
    spec = ctx.spec
    if spec is None:
        return []
    by_id = {e["task_id"]: e for e in ctx.dev_examples}
    targets = set(spec.target_tasks)
    wanted = [(task_id, p.label) for p in spec.patterns for task_id in p.task_ids if task_id in targets]
    wanted += [(task_id, "target") for task_id in spec.target_tasks]
    failed = [(by_id[task_id], why) for task_id, why in wanted if task_id in by_id and not by_id[task_id]["passed"]]
    passing = [(e, tag) for tag in spec.target_tags for e in _passing_with(ctx.dev_examples, tag)[:1]]
    picked: list[tuple[dict[str, Any], str]] = []
    seen: set[str] = set()
    for example, why in failed + passing:
        if example["task_id"] not in seen:
            picked.append((example, why))
            seen.add(example["task_id"])
    return picked


def _passing_with(examples: tuple[dict[str, Any], ...], tag: str) -> list[dict[str, Any]]:
    """The passing dev examples tagged `tag`, by task id."""
    return sorted((e for e in examples if e["passed"] and tag in e["tags"]), key=lambda e: e["task_id"])


def _demo(example: dict[str, Any]) -> dict[str, Any] | None:
    """A demonstration of a dev example: calls stay calls (the agent shows them as its tool calls), anything else
    is text; None when there is no answer to show."""
    answer = _answer(example)
    if answer is None or answer == "":
        return None
    return {"input": _demo_input(example["input"]), "output": answer if is_calls(answer) else _show(answer)}


def _prompt_sizes(ctx: CandidateContext) -> tuple[int, int]:
    """Characters of the longest dev prompt without demonstrations, and of the template each one repeats."""
    files = ctx.base.manifest.files
    template = read_text(ctx.base.path / files["prompt"], "prompt file") if "prompt" in files else "{input}"
    system = read_text(ctx.base.path / files["system"], "system prompt") if "system" in files else ""
    longest = max((len(_show(e["input"])) for e in ctx.dev_examples), default=0)
    return len(system) + len(template) + longest, len(template)


def _prompt_chars(sizes: tuple[int, int], demos: list[dict[str, Any]]) -> int:
    """An upper estimate of the longest dev prompt's length with these demonstrations, in characters."""
    bare, template = sizes
    return bare + sum(template + len(_show(d["input"])) + len(_show(d["output"])) + 16 for d in demos)


def _used_before(ctx: CandidateContext, demos_file: str, base_inputs: set[str]) -> set[str]:
    """Inputs of demonstrations that candidates already judged against this base added."""
    used: set[str] = set()
    for judged in ctx.judged:
        text = judged.files.get(demos_file)
        if text:
            try:
                earlier = yaml.safe_load(text) or []
            except yaml.YAMLError:
                continue
            used |= {_show(d.get("input")) for d in earlier if isinstance(d, dict)} - base_inputs
    return used


def fewshot(ctx: CandidateContext) -> CandidateProposal | None:
    """Demonstrations for the spec's targets added to the agent's `demos:` file, a few an iteration, within the
    model's context window; never a set of demonstrations already judged against this base."""
    demos_file = ctx.base.manifest.files.get("demos")
    if not demos_file:
        raise ConfigError(f"strategy fewshot needs `demos: <file>` in agent {ctx.agent!r}'s manifest")
    path = ctx.base.path / demos_file
    demos = (load_yaml(path, "demonstrations") or []) if path.exists() else []
    room = min(int(ctx.options.get("per_iteration", 3)), int(ctx.options.get("max_demos", 6)) - len(demos))
    if room <= 0 or ctx.spec is None:
        return None
    share = float(ctx.options.get("max_prompt_share", 0.5))
    budget = int(ctx.context_tokens * share * CHARS_PER_TOKEN) if ctx.context_tokens else None
    dropped: dict[str, list[str]] = {}
    for choice in _choices(ctx, demos_file, demos):
        added, reasons = _choose(choice, room, budget, _prompt_sizes(ctx), demos, dropped)
        text = yaml.safe_dump(demos + added, sort_keys=False, allow_unicode=True)
        if added and ctx.already_judged({demos_file: text}) is None:
            _say_dropped(dropped)
            aims = ", ".join(dict.fromkeys(reasons))
            intent = f"Add {len(added)} demonstration(s) for {aims}, targeting spec #{ctx.spec.id}'s dominant patterns"
            return CandidateProposal(intent=intent, files={demos_file: text}, source=f"fewshot:spec-{ctx.spec.id}")
    _say_dropped(dropped)
    return None


def _choices(
    ctx: CandidateContext, demos_file: str, demos: list[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], str]], ...]:
    """The examples to choose from, not shown yet: first those no judged candidate added, then all of them."""
    shown = {_show(d["input"]) for d in demos}
    used = _used_before(ctx, demos_file, shown)
    pool = [(e, why) for e, why in _candidates(ctx) if _show(_demo_input(e["input"])) not in shown]
    fresh = [c for c in pool if _show(_demo_input(c[0]["input"])) not in used]
    return fresh, fresh + [c for c in pool if c not in fresh]


NO_ANSWER = "no answer to show (failed on dev; the suite has no reference or expected answer for it)"
TOO_LONG = "too long for the model's context window"


def _choose(
    choice: list[tuple[dict[str, Any], str]],
    room: int,
    budget: int | None,
    sizes: tuple[int, int],
    demos: list[dict[str, Any]],
    dropped: dict[str, list[str]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Up to `room` demonstrations from `choice`, in order; what was left out goes into `dropped`, by reason."""
    added: list[dict[str, Any]] = []
    reasons: list[str] = []
    for example, why in choice:
        if len(added) == room:
            break
        demo = _demo(example)
        if demo is None:
            dropped.setdefault(NO_ANSWER, []).append(example["task_id"])
            continue
        if budget is not None and _prompt_chars(sizes, demos + added + [demo]) > budget:
            dropped.setdefault(TOO_LONG, []).append(example["task_id"])
            continue  # a shorter one may still fit
        added.append(demo)
        reasons.append(why)
    return added, reasons


def _say_dropped(dropped: dict[str, list[str]]) -> None:
    """Tell the user which demonstrations were left out, and why."""
    for why, ids in dropped.items():
        unique = list(dict.fromkeys(ids))
        shown = ", ".join(unique[:5]) + (f" and {len(unique) - 5} more" if len(unique) > 5 else "")
        say(f"fewshot: left out {len(unique)} demonstration(s): {why}: {shown}")


@hookimpl
def release_register_candidate_strategies(register):
    register("fewshot", fewshot)
