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

from release_pipeline.builtin.critics import heuristic
from release_pipeline.hookspecs import hookimpl
from release_pipeline.llm.answers import json_object
from release_pipeline.models import CriticInput, CriticServices, Symptom

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


def request_params(model: str) -> dict[str, Any]:
    """Greedy, short, and JSON-shaped: the local provider can hold the model to the schema by grammar."""
    params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 120}
    if model.startswith("local/"):
        schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "label": {"enum": LABELS}}}
        params["response_format"] = {"type": "json_object", "schema": schema}
    return params


def parse_symptom(text: str) -> tuple[dict[str, Any] | None, str]:
    """The first JSON object in `text` if it matches the schema, else None and why."""
    import jsonschema

    data, problem = json_object(text)
    if problem:
        return None, problem
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    return (None, f"schema: {error.message}") if error else (data, "")


def llm(items: list[CriticInput], services: CriticServices) -> list[Symptom]:
    """One call per failed trial (more when the answer is malformed), heuristic fallback."""
    symptoms = []
    for item in items:
        if item.status != "fail":
            continue
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": critic_prompt(item)}]
        found = None
        for _ in range(ATTEMPTS):
            reply = services.llm.complete_sync(
                role="critic", model=services.model, messages=messages, params=request_params(services.model)
            )
            found, problem = parse_symptom(reply.content)
            if found:
                break
            messages = messages + [
                {"role": "assistant", "content": reply.content},
                {"role": "user", "content": f"That was not valid ({problem}). Reply with only the JSON object."},
            ]
        if found is None:
            fallback = heuristic([item], services)
            symptoms += [
                Symptom(
                    s.trial_id, s.task_id, s.label, s.description, s.evidence, s.severity, "heuristic (llm fallback)"
                )
                for s in fallback
            ]
            continue
        symptoms.append(
            Symptom(
                item.trial_id,
                item.task_id,
                found["label"],
                found["description"],
                tuple(found.get("evidence", ())),
                found["severity"],
                f"llm:{services.model}",
            )
        )
    return symptoms


@hookimpl
def release_register_critics(register):
    register("llm", llm)
