"""The LLM critic: an LLM labels each failure from what an outsider can see, and nothing more.

It is implementation-blind by construction: its only input is `CriticInput`
(task, visible trace, output, verdict, verifier feedback, rubric), and trace
steps that carry prompts are dropped before they reach it. Answers are
validated against a schema and retried when malformed; a failure that still
gets no valid answer is labelled by the heuristic critic instead.
"""

from __future__ import annotations

import json
from typing import Any

from release_pipeline import event_loop
from release_pipeline.builtin.critics import heuristic
from release_pipeline.llm.answers import json_object
from release_pipeline.models import CriticInput, CriticServices, Symptom
from release_pipeline.plugins.hookspecs import hookimpl

ATTEMPTS = 3
TRACE_LIMIT = 1500

SYSTEM = (
    "You review one failed attempt of an AI agent. You see the task, what the agent visibly did and answered, "
    "and the verifier's verdict. Describe the symptom: what went wrong, not how to fix it. Reply with only a "
    'JSON object: {"label": "<short snake_case symptom, e.g. verbose_answer, wrong_answer, format_error>", '
    '"description": "<one sentence>", '
    '"evidence": ["<trace[i] or verifier>"], "severity": "low" | "medium" | "high"}'
)

SCHEMA = {
    "type": "object",
    "required": ["label", "description", "severity"],
    "properties": {
        "label": {"type": "string", "minLength": 1, "maxLength": 60},
        "description": {"type": "string", "minLength": 1, "maxLength": 200},
        "evidence": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 4},
        "severity": {"enum": ["low", "medium", "high"]},
    },
}

# A small model labels more consistently from a fixed vocabulary; a large one may still say "other" and explain.
LABELS = [
    "verbose_answer",
    "wrong_answer",
    "format_error",
    "refusal",
    "empty_answer",
    "incomplete_answer",
    "tool_misuse",
    "crash",
    "timeout",
    "other",
]

PROMPT_KEYS = {"messages", "prompt", "system", "system_prompt", "demos", "instructions"}


def visible_trace(trace: list[Any]) -> list[Any]:
    """Trace steps without anything that carries the agent's prompts (a second guard besides the adapters)."""
    return [
        {k: v for k, v in step.items() if k not in PROMPT_KEYS} if isinstance(step, dict) else step for step in trace
    ]


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def critic_prompt(item: CriticInput) -> str:
    trace = "\n".join(f"trace[{i}]: {_show(step)}" for i, step in enumerate(visible_trace(item.trace)))
    if len(trace) > TRACE_LIMIT:
        trace = trace[:TRACE_LIMIT] + " ..."
    parts = [
        f"Task input: {_show(item.input)}",
        f"Expected: {_show(item.expected)}" if item.expected is not None else "",
        f"Agent output: {_show(item.output)}",
        f"Trace:\n{trace or '(empty)'}",
        f"Verdict: {item.status} ({item.reason})",
        f"Verifier feedback: {item.feedback or '(none)'}",
        f"Rubric: {item.rubric}" if item.rubric else "",
    ]
    return "\n".join(p for p in parts if p)


# What the harness knows for certain: these failures are labelled by the heuristic critic, with no model call.
FACTUAL = {"timeout", "agent_exception", "sandbox_violation", "empty"}
CONCURRENCY = 8  # critic calls in flight: the local provider serves them one by one, remote ones in parallel


# The labels the model may give: those consistent with a verdict the harness did not already explain (a wrong
# answer is not a timeout, a crash or an empty answer).
ASKED_LABELS = [label for label in LABELS if label not in ("timeout", "crash", "empty_answer")]


def request_params(model: str, labels: list[str] | None = None) -> dict[str, Any]:
    """Greedy, short, and JSON-shaped: the local provider holds the model to the schema (and labels) by grammar."""
    params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 80}
    if model.startswith("local/"):
        properties = {
            "label": {"enum": labels or LABELS},
            "description": {"type": "string", "minLength": 1, "maxLength": 120},
            "severity": {"enum": ["low", "medium", "high"]},
        }  # no evidence list: a smaller grammar and fewer tokens; the verdict is the evidence
        schema = {"type": "object", "required": ["label", "description", "severity"], "properties": properties}
        params["response_format"] = {"type": "json_object", "schema": schema}
    return params


def parse_symptom(text: str, labels: list[str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """The first JSON object in `text` if it matches the schema and names an allowed label, else None and why."""
    import jsonschema

    data, problem = json_object(text)
    if problem:
        return None, problem
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    if error:
        return None, f"schema: {error.message}"
    if labels and data["label"] not in labels:
        return None, f"label {data['label']!r} is not one of {', '.join(labels)}"
    return data, ""


async def _label(item: CriticInput, services: CriticServices) -> dict[str, Any] | None:
    """The model's symptom for one failure, asked up to ATTEMPTS times; None when it never answers right."""
    labels = ASKED_LABELS
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": critic_prompt(item)}]
    for _ in range(ATTEMPTS):
        reply = await services.llm.complete(
            role="critic", model=services.model, messages=messages, params=request_params(services.model, labels)
        )
        found, problem = parse_symptom(reply.content, labels)
        if found:
            return found
        messages = messages + [
            {"role": "assistant", "content": reply.content},
            {"role": "user", "content": f"That was not valid ({problem}). Reply with only the JSON object."},
        ]
    return None


def _from_heuristic(item: CriticInput, services: CriticServices, why: str) -> list[Symptom]:
    return [
        Symptom(s.trial_id, s.task_id, s.label, s.description, s.evidence, s.severity, f"heuristic ({why})")
        for s in heuristic([item], services)
    ]


def llm(items: list[CriticInput], services: CriticServices) -> list[Symptom]:
    """One call per failure the harness cannot label for certain, concurrently; the heuristic critic elsewhere.

    Timeouts, crashes and empty answers are facts the harness recorded: the heuristic critic labels them. So
    is an answer right in substance and wrong in form (it equals the expected one once case and punctuation
    are ignored, or holds it among more words). A model answer that is malformed or inconsistent with the
    verdict after ATTEMPTS tries falls back to the heuristic label too.
    """
    import asyncio
    from contextlib import nullcontext

    failed = [i for i in items if i.status == "fail"]
    asked = [i for i in failed if i.reason not in FACTUAL and not _format_only(i)]

    async def label_all(advance: Any) -> list[dict[str, Any] | None]:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(item: CriticInput) -> dict[str, Any] | None:
            async with gate:
                found = await _label(item, services)
                advance(1)
                return found

        return await asyncio.gather(*(one(i) for i in asked))

    bar = services.progress("critic", len(asked)) if services.progress and asked else nullcontext(lambda n: None)
    with bar as advance:
        labelled = event_loop.run(label_all(advance)) if asked else []
    answers = dict(zip([i.trial_id for i in asked], labelled, strict=True))
    symptoms = []
    for item in failed:
        found = answers.get(item.trial_id)
        if item.trial_id not in answers:
            symptoms += _from_heuristic(item, services, "a fact of the harness")
        elif found is None:
            symptoms += _from_heuristic(item, services, "llm fallback")
        else:
            symptoms.append(
                Symptom(
                    item.trial_id,
                    item.task_id,
                    found["label"],
                    found["description"],
                    tuple(found.get("evidence", ())) or ("verifier",),
                    found["severity"],
                    f"llm:{services.model}",
                )
            )
    return symptoms


def _format_only(item: CriticInput) -> bool:
    """Right in substance, wrong in form (or wrapped in more words): the heuristic critic says so for certain."""
    return any(s.label in ("format_mismatch", "verbose_answer") for s in heuristic([item]))


@hookimpl
def release_register_critics(register):
    register("llm", llm)
