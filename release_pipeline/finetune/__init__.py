"""Fine-tuning candidates: LoRA SFT and GRPO of a prompt agent's local model (the `finetune` extra).

A fine-tuning strategy trains a LoRA adapter on the canonical version's own evidence, stores it (and the fp32
checkpoint it was trained from) in the workspace's blob store, and proposes one file, `weights.yaml`, naming
both by digest: the candidate is then gated, promoted and rolled back like a prompt edit.

* `checkpoint.py`: the local GGUF model as a plain fp32 checkpoint, once, content-addressed;
* `examples.py`: what to train on: passing dev answers and the spec's demonstrations (SFT), dev prompts
  weighted by their pass rate with the suite's verifier as reward (GRPO);
* `train.py`: TRL's trainers with a LoRA config, on CUDA when there is one, with their logs kept;
* `strategies.py`: the `lora-sft` and `grpo` candidate strategies.
"""

from __future__ import annotations

import importlib.util

from release_pipeline.errors import UserError

MODULES = ("torch", "transformers", "peft", "trl", "datasets", "gguf")
INSTALL = "pip install torch==2.13.0 && pip install 'release-pipeline[finetune]'"


def require() -> None:
    """Fail in one line when the finetune extra is not installed."""
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"fine-tuning needs {', '.join(missing)}: {INSTALL}")
