"""TRL's trainers with a LoRA config on the agent's own model: on CUDA when there is one, else the CPU.

Both take a plain checkpoint folder and prompts, write a PEFT adapter folder, and return what happened: every
logged step (loss; for GRPO the reward and TRL's `frac_reward_zero_std`, the share of prompt groups whose
rollouts all scored the same and so taught nothing) and a summary with steps and tokens per second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from release_pipeline.errors import ConfigError
from release_pipeline.finetune.examples import Prompt
from release_pipeline.progress import ProgressFactory, silent

LOGGED = ("loss", "reward", "reward_std", "frac_reward_zero_std", "learning_rate", "grad_norm", "num_tokens")


@dataclass(frozen=True)
class LoraSettings:
    """Every hyperparameter a strategy's config may set (`strategy:` in release.yaml, or `--option k=v`)."""

    steps: int = 30
    batch_size: int = 4
    learning_rate: float = 2e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    max_length: int = 1024  # tokens of prompt and answer (SFT)
    seed: int = 0
    demos: bool = True  # SFT: train on the spec's targets with their expected answers too
    keep_share: float = 0.5  # SFT: the share of passing answers and contrasts in what the model sees (examples.py)
    contrasts: bool = True  # SFT: each call target's question with unrelated functions, answered with no call
    # GRPO
    num_generations: int = 4
    max_completion_length: int = 16
    temperature: float = 1.0
    beta: float = 0.0  # KL penalty; 0 needs no reference model
    secondary_reward: float = 0.5  # weight of each secondary verifier's reward (the primary one weighs 1)

    @classmethod
    def of(cls, options: dict[str, Any], **defaults: Any) -> LoraSettings:
        """Settings from a strategy's options, refusing unknown keys and wrong types in one line."""
        known = {f.name: f for f in fields(cls)}
        values = dict(defaults)
        for key, value in options.items():
            if key in ("name", "patches"):
                continue
            if key not in known:
                raise ConfigError(f"unknown fine-tuning option {key!r} (known: {', '.join(sorted(known))})")
            kind = type(getattr(cls(), key))
            try:
                values[key] = tuple(value) if kind is tuple else kind(value)
            except (TypeError, ValueError):
                raise ConfigError(f"fine-tuning option {key}: {value!r} is not a {kind.__name__}") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


@dataclass
class TrainingLog:
    steps: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def quiet_progress() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    from transformers.utils import logging

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    logging.disable_progress_bar()
    logging.set_verbosity_error()


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """No warnings from torch, transformers, peft or trl while they work (transformers: see `quiet_progress`)."""
    import logging as stdlib_logging
    import warnings

    loggers = [stdlib_logging.getLogger(name) for name in ("peft", "trl", "accelerate", "torch")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(stdlib_logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def load_model(checkpoint: Path) -> tuple[Any, Any]:
    """Model and tokenizer of a plain checkpoint, bf16 on CUDA, fp32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_progress()
    dtype = torch.bfloat16 if device() == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def lora_config(s: LoraSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        target_modules=list(s.target_modules),
        task_type="CAUSAL_LM",
    )


def common_args(s: LoraSettings, out: Path) -> dict[str, Any]:
    cuda = device() == "cuda"
    return {
        "output_dir": str(out / "trainer"),
        "max_steps": s.steps,
        "per_device_train_batch_size": s.batch_size,
        "learning_rate": s.learning_rate,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": s.seed,
        "use_cpu": not cuda,
        "bf16": cuda,
        "disable_tqdm": True,  # one bar, ours (see `train`)
        "dataloader_num_workers": 0,
    }


def sft_dataset(prompts: list[Prompt]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": p.messages, "completion": [{"role": "assistant", "content": p.answer}]} for p in prompts]
    )


def grpo_dataset(prompts: list[Prompt]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"prompt": p.messages, "task_id": p.task_id} for p in prompts])


def sft_trainer(checkpoint: Path, prompts: list[Prompt], s: LoraSettings, out: Path) -> Any:
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model(checkpoint)
    args = SFTConfig(**common_args(s, out), max_length=s.max_length)
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(prompts),
        processing_class=tokenizer,
        peft_config=lora_config(s),
    )


def grpo_trainer(
    checkpoint: Path,
    prompts: list[Prompt],
    rewards: list[Callable[..., list[float]]],
    weights: list[float],
    s: LoraSettings,
    out: Path,
) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = load_model(checkpoint)
    args = GRPOConfig(
        **common_args(s, out),
        num_generations=s.num_generations,
        max_completion_length=s.max_completion_length,
        temperature=s.temperature,
        beta=s.beta,
        reward_weights=weights,
    )
    return GRPOTrainer(
        model=model,
        reward_funcs=cast(Any, rewards),
        args=args,
        train_dataset=grpo_dataset(prompts),
        processing_class=tokenizer,
        peft_config=lora_config(s),
    )


def _bar_callback(advance: Callable[[int], None]) -> Any:
    """A TrainerCallback that moves our progress bar one step per optimizer step (and prints nothing)."""
    from transformers import TrainerCallback

    class Bar(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            advance(1)

    return Bar()


def train(
    trainer: Any, adapter_dir: Path, progress: ProgressFactory | None = None, what: str = "training"
) -> TrainingLog:
    """Run the trainer, save its adapter to `adapter_dir`, and say what happened.

    The user sees one progress bar (steps done of `max_steps`): the trainer's own bars and printed logs are off
    (the log is kept in the returned `TrainingLog`), and so are the libraries' warnings."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):  # the log dict printed every step; tqdm's bar
        trainer.remove_callback(callback)
    start = time.perf_counter()
    with (progress or silent)(what, int(trainer.args.max_steps)) as advance, quiet_libraries():
        trainer.add_callback(_bar_callback(advance))
        trainer.train()
    seconds = time.perf_counter() - start
    trainer.model.save_pretrained(str(adapter_dir))
    steps = [
        {"step": int(h["step"]), **{k: float(h[k]) for k in LOGGED if k in h}}
        for h in trainer.state.log_history
        if "step" in h and any(k in h for k in LOGGED)
    ]
    done = int(trainer.state.global_step)
    tokens = max((s.get("num_tokens", 0.0) for s in steps), default=0.0)
    summary = {
        "steps": done,
        "seconds": round(seconds, 2),
        "steps_per_s": round(done / seconds, 4) if seconds else 0.0,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0,
        "device": device(),
    }
    return TrainingLog(steps, summary)
