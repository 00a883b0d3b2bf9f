"""The `lora-sft` and `grpo` candidate strategies: one fine-tuned adapter, proposed as one `weights.yaml`.

Both train from the fp32 checkpoint of the canonical version's local model (never on top of an earlier adapter:
each iteration retrains on the latest canonical's own evidence, so rejection sampling improves its data as the
agent improves), store the adapter in the workspace's blob store, and propose `weights.yaml` naming base and
adapter by digest, with the configuration and the training log. A retry against the same base draws another seed,
so it never proposes an adapter already judged.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from release_pipeline.config.locations import STATE_DIR
from release_pipeline.config.weights import WEIGHTS_FILE, Weights, read_weights
from release_pipeline.errors import UserError
from release_pipeline.finetune import require
from release_pipeline.models import CandidateContext, CandidateProposal
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.store.blobs import BlobStore

if TYPE_CHECKING:
    from release_pipeline.finetune.train import LoraSettings


def lora_sft(ctx: CandidateContext) -> CandidateProposal:
    """Rejection-sampling fine-tuning: LoRA SFT on the passing dev answers and the spec's demonstrations."""
    from release_pipeline.finetune.examples import balance, contrast_prompts, drawn_counts, sft_prompts, spread
    from release_pipeline.finetune.train import LoraSettings, sft_trainer

    check_editable(ctx, "lora-sft")
    require()
    settings = _settings(ctx, LoraSettings.of(ctx.options))
    if not 0 < settings.keep_share < 1:
        raise UserError(f"lora-sft: keep_share must be between 0 and 1, not {settings.keep_share}")
    prompts = sft_prompts(ctx, demos=settings.demos)
    contrasts = contrast_prompts(ctx, prompts, settings.seed) if settings.contrasts else []
    prompts += contrasts
    shown = spread(balance(prompts, settings.keep_share), settings.steps * settings.batch_size, settings.seed)
    count = {source: sum(1 for p in prompts if p.source == source) for source in ("own_pass", "reference", "spec_demo")}
    parts = [
        f"{count['own_pass']} passing dev answers",
        f"{count['reference']} dev reference answers",
        f"{count['spec_demo']} spec demonstrations",
    ] + ([f"{len(contrasts)} contrasts (call targets' questions offered unrelated functions)"] if contrasts else [])
    intent = (
        f"LoRA SFT of {_base_model(ctx)} on {', '.join(parts)}; what it already does right weighs "
        f"{settings.keep_share:.0%} ({settings.steps} steps, r={settings.lora_r})"
    )
    extra = {"shown": drawn_counts(shown)}
    return _propose(ctx, "lora-sft", settings, intent, lambda ckpt, out: sft_trainer(ckpt, shown, settings, out), extra)


def grpo(ctx: CandidateContext) -> CandidateProposal:
    """GRPO with the suite's own verifier as reward, on dev prompts weighted by their current pass rate."""
    from release_pipeline.finetune.examples import draw, drawn_counts, grpo_prompts
    from release_pipeline.finetune.train import LoraSettings, grpo_trainer

    check_editable(ctx, "grpo")
    require()
    if "primary" not in ctx.verifiers:
        raise UserError("grpo needs the suite's verifiers: run it through `release candidate` or `release promote`")
    settings = _settings(ctx, LoraSettings.of(ctx.options, learning_rate=5e-5, steps=20))
    if settings.batch_size % settings.num_generations:
        raise UserError(
            f"grpo: batch_size ({settings.batch_size}) must be a multiple of num_generations "
            f"({settings.num_generations})"
        )
    prompts, how = grpo_prompts(ctx)
    per_step = settings.batch_size // settings.num_generations
    drawn = draw(prompts, settings.steps * per_step, settings.seed)
    names = {p.task_id: p.names for p in prompts}
    rewards = [_reward(name, verify, names) for name, verify in ctx.verifiers.items()]
    weights = [1.0 if name == "primary" else settings.secondary_reward for name in ctx.verifiers]
    prompts_used = len({p.task_id for p in drawn})
    intent = (
        f"GRPO of {_base_model(ctx)} with the suite's verifiers ({', '.join(ctx.verifiers)}) as rewards on "
        f"{prompts_used} dev prompts ({settings.steps} steps, {settings.num_generations} rollouts a prompt)"
    )
    extra = {"prompt_weights": how, "drawn": drawn_counts(drawn)}

    def trainer(checkpoint: Path, out: Path) -> Any:
        return grpo_trainer(checkpoint, drawn, rewards, weights, settings, out)

    return _propose(ctx, "grpo", settings, intent, trainer, extra)


def _reward(name: str, verify: Any, names: dict[str, dict[str, str] | None]) -> Any:
    """A TRL reward function: 1 for each completion the verifier passes, else 0 (named for TRL's logs). A
    completion is judged as the prompt agent would answer with it: its calls where the chat offers tools."""
    from release_pipeline.finetune.examples import agent_output

    def reward(completions: list[Any], task_id: list[str], **_: Any) -> list[float]:
        return [
            float(verify(t, agent_output(_text(c), names.get(t))).passed)
            for c, t in zip(completions, task_id, strict=True)
        ]

    reward.__name__ = name
    return reward


def _text(completion: Any) -> str:
    """A completion's text: conversational datasets give a list of messages."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def check_editable(ctx: CandidateContext, method: str) -> None:
    """Refuse, before any training, an agent whose manifest does not let a candidate write its weights file."""
    from release_pipeline.config.manifest import is_editable

    if not is_editable(ctx.base.manifest, WEIGHTS_FILE):
        raise UserError(
            f"{method}: agent {ctx.agent!r} cannot take fine-tuned weights: its manifest does not list "
            f"{WEIGHTS_FILE} as editable (add it to `editable` in agent.yaml)"
        )


def _settings(ctx: CandidateContext, settings: LoraSettings) -> LoraSettings:
    """Another seed for every candidate already judged against this base: never the same adapter twice."""
    from dataclasses import replace

    return replace(settings, seed=settings.seed + len(ctx.judged))


def _base_model(ctx: CandidateContext) -> str:
    earlier = read_weights(ctx.base.path)
    return earlier.base_model if earlier else ctx.base.manifest.model


def _propose(
    ctx: CandidateContext,
    method: str,
    settings: LoraSettings,
    intent: str,
    make: Callable[[Path, Path], Any],
    extra: dict[str, Any] | None = None,
) -> CandidateProposal:
    """Train from the base checkpoint, store checkpoint and adapter, and propose the weights file naming them."""
    from release_pipeline.finetune.checkpoint import base_checkpoint, gguf_of
    from release_pipeline.finetune.gguf_lora import convert
    from release_pipeline.finetune.train import quiet_libraries, train
    from release_pipeline.llm.providers import ADAPTER_GGUF, BASE_FILE, BASE_GGUF_FILE
    from release_pipeline.store.blobs import file_sha256

    blobs = BlobStore(ctx.workspace / STATE_DIR / "blobs")
    model = _base_model(ctx)
    base, checkpoint = base_checkpoint(blobs, model)
    with (
        tempfile.TemporaryDirectory(prefix=f"{method}-") as tmp,
        contextlib.redirect_stdout(sys.stderr),
        quiet_libraries(),
    ):
        out = Path(tmp)
        log = train(make(checkpoint, out), out / "adapter", ctx.progress, f"{method}: training")
        (out / "adapter" / BASE_FILE).write_text(base + "\n", encoding="utf-8")
        (out / "adapter" / BASE_GGUF_FILE).write_text(file_sha256(gguf_of(model)) + "\n", encoding="utf-8")
        convert(out / "adapter", checkpoint, out / "adapter" / ADAPTER_GGUF)
        (out / "adapter" / "README.md").unlink(missing_ok=True)  # PEFT's model card: paths and dates, not weights
        adapter = blobs.put(out / "adapter")
    weights = Weights(model, base, adapter, method, {**settings.to_dict(), **(extra or {})}, log.steps, log.summary)
    text = f"# Written by the {method} strategy: fine-tuned weights of this version.\n" + yaml.safe_dump(
        weights.to_dict(), sort_keys=False
    )
    return CandidateProposal(intent, files={WEIGHTS_FILE: text}, source=f"{method}:{adapter[7:23]}")


@hookimpl
def release_register_candidate_strategies(register):
    register("lora-sft", lora_sft)
    register("grpo", grpo)
