"""The `llm-edit` candidate strategy: the synthesizer LLM rewrites editable files following the spec.

Unlike the critic, the synthesizer sees the implementation (it has to change
it), but only the files the manifest declares editable. Its answer must be a
JSON object `{"intent": ..., "files": {path: new content}}`; an answer that is
not, that names a file it may not change, that changes nothing, breaks a YAML
file or drops `{input}` from the prompt template is sent back with the reason,
up to `attempts` times. Whatever it proposes is then gated like any candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from release_pipeline.config.manifest import is_editable
from release_pipeline.llm.answers import json_object
from release_pipeline.models import CandidateContext, CandidateProposal
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.reports.markdown import spec_markdown

SYSTEM = (
    "You improve an AI agent by editing its files. You get an engineering spec of its failures and the current "
    "content of the files you may edit. Make the intended change. Reply with only a JSON object: "
    '{"intent": "<one sentence>", "files": {"<path>": "<complete new content>"}}'
)


def editable_files(ctx: CandidateContext) -> dict[str, str]:
    """The artifact's editable text files and their content."""
    root = ctx.base.path
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if is_editable(ctx.base.manifest, rel):
            try:
                out[rel] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return out


def validate(answer: str, current: dict[str, str], prompt_file: str | None) -> tuple[dict[str, Any] | None, str]:
    """The proposal in `answer`, or None and the reason it cannot be used."""
    import yaml

    data, problem = json_object(answer)
    if problem:
        return None, problem
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not files:
        return None, "`files` must be a non-empty object of path -> content"
    for path, content in files.items():
        if path not in current:
            return None, f"{path!r} is not one of the editable files ({', '.join(current)})"
        if not isinstance(content, str) or not content.strip():
            return None, f"{path!r} must get non-empty text"
        if Path(path).suffix in (".yaml", ".yml"):
            try:
                yaml.safe_load(content)
            except yaml.YAMLError:
                return None, f"{path!r} is not valid YAML"
        if path == prompt_file and "{input}" not in content:
            return None, f"{path!r} must keep the {{input}} placeholder"
    if all(current[p] == c for p, c in files.items()):
        return None, "the files are unchanged"
    return data, ""


def llm_edit(ctx: CandidateContext) -> CandidateProposal | None:
    if ctx.spec is None or not ctx.spec.patterns:
        return None
    current = editable_files(ctx)
    listing = "\n\n".join(f"--- {path}\n{text}" for path, text in current.items())
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{spec_markdown(ctx.spec)}\n\nEditable files:\n\n{listing}"},
    ]
    attempts = int(ctx.options.get("attempts", 3))
    for _ in range(attempts):
        reply = ctx.llm.complete_sync(
            role="synthesizer",
            model=ctx.model,
            messages=messages,
            params={"temperature": 0.0, "max_tokens": int(ctx.options.get("max_tokens", 800))},
        )
        data, problem = validate(reply.content, current, ctx.base.manifest.files.get("prompt"))
        if data is not None:
            intent = str(data.get("intent") or "synthesizer edit following the spec")
            return CandidateProposal(intent=intent, files=data["files"], source=f"llm-edit:spec-{ctx.spec.id}")
        messages = messages + [
            {"role": "assistant", "content": reply.content},
            {"role": "user", "content": f"That cannot be used: {problem}. Reply with only the JSON object."},
        ]
    return None


@hookimpl
def release_register_candidate_strategies(register):
    register("llm-edit", llm_edit)
