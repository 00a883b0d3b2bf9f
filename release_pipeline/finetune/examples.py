"""What a fine-tuning strategy trains on, taken from the canonical version's own evidence on the dev split.

* SFT (rejection sampling): the chat each passing dev task was asked, with the answer the agent gave, plus the
  failing dev tasks answered with the suite's reference answer (a benchmark's dev ground truth: BFCL's calls,
  HumanEval's canonical solution) and the spec's target tasks with their expected text answer.
* The two kinds are balanced: the passing answers ("keep") make up `keep_share` of what the model sees, however
  few they are. The gate rejects a candidate for one lost pass, and a model shown three times as many calls as
  refusals learns to call on every question (the caller's lora-sft: 14 fixes, 10 regressions, all irrelevance).
  `spread` turns the weights into copies, so every example is seen and none is left to a draw's luck.
* Contrasts (tool-calling tasks, option `contrasts`): each dev question whose target is a call is also shown with
  another dev task's functions, none of them its own, and answered with no call. The pair differs only in the
  functions offered, so what the model learns is to call when a function fits, not to call always; they count with
  the passing answers, whose behaviour they protect.
* Every chat is rendered as the model is served it (`llm/tool_format.py`): the task's functions in the system
  prompt, demonstrations' calls in the call format; a target that is calls is written in the chat template's
  tool-call format (`<tool_call>[...]</tool_call>`, the empty list for no call), code as code.
* GRPO: dev prompts, drawn with a weight of `p(1 - p)` where `p` is the task's pass rate in the stored dev run:
  a prompt whose rollouts all pass or all fail teaches nothing (every advantage is zero), a prompt in between
  teaches most. When the stored run shows no task in between (greedy decoding: one observation a task), failing
  tasks are drawn four times as often as passing ones (which keep the model from forgetting).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from typing import Any

from release_pipeline.builtin.prompt_agent import PromptAgent, is_calls, is_function_task, tool_name
from release_pipeline.errors import UserError
from release_pipeline.llm.tool_format import parse_answer, render_calls, render_chat
from release_pipeline.models import CandidateContext

FAILING_WEIGHT, PASSING_WEIGHT = 1.0, 0.25
KEEP = ("own_pass", "contrast")  # what the model already does right, and the refusals that protect it


@dataclass(frozen=True)
class Prompt:
    task_id: str
    messages: list[dict[str, str]]
    answer: str  # what to imitate (SFT); empty for GRPO
    weight: float = 1.0
    source: str = ""  # own_pass | reference | spec_demo | contrast | dev
    names: dict[str, str] | None = None  # a tool-calling chat: tool names back to the task's (None: text answers)


def _prompt_agent(ctx: CandidateContext) -> PromptAgent:
    if ctx.base.manifest.adapter != "prompt":
        raise UserError(f"fine-tuning needs a prompt agent (adapter: prompt), not {ctx.base.manifest.adapter!r}")
    return PromptAgent(ctx.base)


class Chats:
    """The chats a prompt agent is served, as plain messages, and its answers as the model writes them."""

    def __init__(self, agent: PromptAgent):
        self.agent = agent

    def prompt(self, value: Any) -> tuple[list[dict[str, str]], dict[str, str] | None]:
        """The plain chat of a task and, when it offers tools, the map from tool names to the task's."""
        tools, names = self.agent.tools_for(value)
        chat = render_chat(self.agent.messages(value), tools)
        return chat, (names or {t["function"]["name"]: t["function"]["name"] for t in tools}) if tools else None

    @staticmethod
    def target(answer: Any, names: dict[str, str] | None) -> str | None:
        """An answer as the model should write it: calls in the call format, text as it is; None if unusable."""
        if names is not None and is_calls(answer):
            return render_calls([{"name": tool_name(c["name"]), "arguments": c.get("arguments") or {}} for c in answer])
        if isinstance(answer, str) and answer.strip() and names is None:
            return answer
        return None


def agent_output(text: str, names: dict[str, str] | None) -> Any:
    """What the prompt agent makes of a completion: its calls (task names) when the chat offers tools, else text."""
    if names is None:
        return text.strip()
    _, calls = parse_answer(text)
    return [{"name": names.get(c["function"]["name"], c["function"]["name"]), "arguments": _args(c)} for c in calls]


def _args(call: dict[str, Any]) -> Any:
    return json.loads(call["function"]["arguments"])


def sft_prompts(ctx: CandidateContext, *, demos: bool = True) -> list[Prompt]:
    """The passing dev answers, and (with `demos`) failing dev tasks with their reference answers and the spec's
    failing targets with their expected text answers."""
    chats = Chats(_prompt_agent(ctx))
    targets = set(ctx.spec.target_tasks) if ctx.spec else set()
    prompts = []
    for e in ctx.dev_examples:
        messages, names = chats.prompt(e["input"])
        own = chats.target(e["output"], names) if e["passed"] else None
        if own is not None:
            prompts.append(Prompt(e["task_id"], messages, own, source="own_pass", names=names))
            continue
        if not demos or e["passed"]:
            continue
        reference = chats.target(e.get("reference"), names) if e.get("reference") is not None else None
        if reference is not None:
            prompts.append(Prompt(e["task_id"], messages, reference, source="reference", names=names))
        elif e["task_id"] in targets and isinstance(e["expected"], str):
            prompts.append(Prompt(e["task_id"], messages, e["expected"], source="spec_demo", names=names))
    if not prompts:
        raise UserError(
            "nothing to fine-tune on: no passing dev answer, no dev reference answer and no spec target with a "
            "text answer"
        )
    return prompts


def contrast_prompts(ctx: CandidateContext, prompts: list[Prompt], seed: int) -> list[Prompt]:
    """For each prompt whose target is a call, its question offered another dev task's functions (sharing no
    name with its own), answered with no call."""
    chats = Chats(_prompt_agent(ctx))
    inputs = {e["task_id"]: e["input"] for e in ctx.dev_examples if is_function_task(e["input"])}
    calling = [p for p in prompts if p.task_id in inputs and p.names is not None and p.answer != render_calls([])]
    others = list(inputs)
    random.Random(seed).shuffle(others)
    out = []
    for i, p in enumerate(calling):
        own = _function_names(inputs[p.task_id])
        for other in others[i % len(others) :] + others[: i % len(others)]:
            if own.isdisjoint(_function_names(inputs[other])):
                value = {**inputs[p.task_id], "functions": inputs[other]["functions"]}
                messages, names = chats.prompt(value)
                label = f"{p.task_id}/{other}"  # the question, and whose functions it is offered
                out.append(Prompt(label, messages, render_calls([]), source="contrast", names=names))
                break
    return out


def _function_names(value: dict[str, Any]) -> set[str]:
    return {fn.get("name", "") for fn in value["functions"]}


def balance(prompts: list[Prompt], keep_share: float) -> list[Prompt]:
    """The prompts weighted so that the passing answers and contrasts weigh `keep_share` of the whole, the others
    the rest (unchanged when only one kind is there)."""
    keep = sum(1 for p in prompts if p.source in KEEP)
    learn = len(prompts) - keep
    if not keep or not learn:
        return prompts
    return [replace(p, weight=keep_share / keep if p.source in KEEP else (1 - keep_share) / learn) for p in prompts]


def spread(prompts: list[Prompt], count: int, seed: int) -> list[Prompt]:
    """`count` prompts, each repeated in proportion to its weight (largest remainders take the rest), shuffled
    reproducibly: a deterministic draw, where `draw` may leave a prompt out."""
    total = sum(p.weight for p in prompts)
    shares = [count * p.weight / total for p in prompts]
    copies = [int(s) for s in shares]
    rng = random.Random(seed)
    order = sorted(range(len(prompts)), key=lambda i: (copies[i] - shares[i], rng.random()))
    for i in order[: count - sum(copies)]:
        copies[i] += 1
    out = [p for p, n in zip(prompts, copies, strict=True) for _ in range(n)]
    rng.shuffle(out)
    return out


def grpo_prompts(ctx: CandidateContext) -> tuple[list[Prompt], str]:
    """Every dev task's prompt with its draw weight, and how the weights were chosen."""
    chats = Chats(_prompt_agent(ctx))
    rates = {e["task_id"]: e["passes"] / e["trials"] for e in ctx.dev_examples if e.get("trials")}
    informative = {t: p * (1 - p) for t, p in rates.items() if 0 < p < 1}
    prompts = []
    for e in ctx.dev_examples:
        if e["task_id"] not in rates:
            continue
        if informative:
            weight = informative.get(e["task_id"], 0.0)
        else:
            weight = PASSING_WEIGHT if rates[e["task_id"]] == 1 else FAILING_WEIGHT
        if weight > 0:
            messages, names = chats.prompt(e["input"])
            prompts.append(Prompt(e["task_id"], messages, "", weight, "dev", names))
    if not prompts:
        raise UserError("nothing to train on: the dev split has no judged trial")
    how = (
        f"p(1-p) of the stored pass rate: {len(informative)} of {len(rates)} dev tasks are neither always passed "
        "nor always failed"
        if informative
        else f"no dev task between 0 and 1 in the stored run (one observation a task): failing tasks weighted "
        f"{FAILING_WEIGHT:g}, passing {PASSING_WEIGHT:g}"
    )
    return prompts, how


def draw(prompts: list[Prompt], count: int, seed: int) -> list[Prompt]:
    """`count` prompts drawn by weight (with replacement), reproducibly."""
    return random.Random(seed).choices(prompts, weights=[p.weight for p in prompts], k=count)


def drawn_counts(prompts: list[Prompt]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for p in prompts:
        counts[p.task_id] = counts.get(p.task_id, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
