"""`weights.yaml`: the fine-tuned weights a version of a prompt agent answers with.

A fine-tuning candidate changes no prompt: it writes this file into the agent folder, naming the base checkpoint
and the LoRA adapter it trained by their blob digests (see `blobs.py`), with the method, its configuration and its
training log. A version without the file answers with the manifest's model as it is, so rolling back to a version
from before a fine-tune serves the base model again.

    base_model: local/smollm2
    base: sha256:...         # the fp32 checkpoint the adapter was trained on
    adapter: sha256:...      # the LoRA adapter (PEFT's files)
    method: lora-sft         # or grpo
    config: {...}            # every hyperparameter
    log: [{step, loss, ...}] # per logging step (GRPO: reward, frac_reward_zero_std)
    summary: {steps, seconds, steps_per_s, tokens_per_s, device}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import load_yaml
from release_pipeline.errors import ConfigError

WEIGHTS_FILE = "weights.yaml"
ADAPTER_MARK = "@"  # local/smollm2@<adapter hex>: the local provider serves the base model with that adapter


@dataclass(frozen=True)
class Weights:
    base_model: str
    base: str
    adapter: str
    method: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_model": self.base_model,
            "base": self.base,
            "adapter": self.adapter,
            "method": self.method,
            "config": self.config,
            "log": self.log,
            "summary": self.summary,
        }


def read_weights(folder: Path) -> Weights | None:
    """The weights file of an agent folder, or None when it has none."""
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        return None
    data = load_yaml(path, "weights file")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("base_model", "base", "adapter")):
        raise ConfigError(f"{path}: needs base_model, base and adapter (written by a fine-tuning strategy)")
    return Weights(
        data["base_model"],
        data["base"],
        data["adapter"],
        str(data.get("method", "")),
        dict(data.get("config") or {}),
        list(data.get("log") or []),
        dict(data.get("summary") or {}),
    )


def served_model(weights: Weights) -> str:
    """The model string that asks the local provider for the base model with this adapter."""
    return f"{weights.base_model}{ADAPTER_MARK}{weights.adapter.removeprefix('sha256:')}"
