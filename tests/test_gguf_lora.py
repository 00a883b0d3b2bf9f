"""A PEFT adapter converted for llama.cpp changes the served model as it changes the trained one.

The gate judges the adapter as llama.cpp serves it on the quantized base; training happens in transformers on that
base dequantized. If the conversion put a row or a tensor in the wrong place, the served candidate would be some
other model, and nothing else would say so. Here an adapter with random weights on every projection a strategy may
adapt moves the next-token logits on both engines, and the two moves must agree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from release_pipeline.finetune import gguf_lora
from release_pipeline.finetune.gguf_lora import PROJECTIONS, convert

HAVE = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft", "gguf", "llama_cpp"))
PROMPT = "<|im_start|>user\nWhich function gives the area of a circle of radius 10?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def adapted(tmp_path_factory) -> dict:
    """Token ids of a prompt, the checkpoint, and the transformers logits without and with a random adapter on
    all seven projections (saved in PEFT's format)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from release_pipeline.finetune.checkpoint import base_checkpoint
    from release_pipeline.store.blobs import BlobStore

    root = tmp_path_factory.mktemp("gguf-lora")
    _, checkpoint = base_checkpoint(BlobStore(root / "blobs"), "local/smollm2")
    ids = AutoTokenizer.from_pretrained(str(checkpoint))(PROMPT)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    targets = [name.split(".")[-1] for name in PROJECTIONS]
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p) * 0.06)  # a move well above the engines' own difference
        tokens = torch.tensor([ids])
        with peft.disable_adapter():
            base = peft(tokens).logits[0].numpy()
        tuned = peft(tokens).logits[0].numpy()
    peft.save_pretrained(str(root / "adapter"))
    return {"root": root, "ids": ids, "checkpoint": checkpoint, "base": base, "tuned": tuned}


def llama_logits(ids: list[int], lora: Path | None):
    import numpy as np
    from llama_cpp import Llama

    from release_pipeline.llm.providers import weights_path

    extra = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(weights_path("smollm2")), n_ctx=256, logits_all=True, verbose=False, **extra)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


def agreement(a, b) -> float:
    """Correlation of two logit changes, over every position and token."""
    import numpy as np

    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE, reason="needs the finetune extra and llama-cpp-python (make test installs them)")
def test_the_served_adapter_moves_the_logits_as_the_trained_one_does(adapted, monkeypatch):
    ids, root = adapted["ids"], adapted["root"]
    moved = adapted["tuned"] - adapted["base"]
    served = llama_logits(ids, None)
    convert(root / "adapter", adapted["checkpoint"], root / "adapter.gguf")
    served_moved = llama_logits(ids, root / "adapter.gguf") - served
    # the engines differ by about 0.15 a logit without any adapter (Q4_1 against fp32): the move must be larger
    assert abs(moved).mean() > 1.0
    assert agreement(moved, served_moved) > 0.97  # 0.994 measured

    # the check can fail: without the query/key row permutation the two moves part
    monkeypatch.setattr(gguf_lora, "permute_rows", lambda weights, n_head: weights)
    convert(root / "adapter", adapted["checkpoint"], root / "unpermuted.gguf")
    wrong = llama_logits(ids, root / "unpermuted.gguf") - served
    assert agreement(moved, wrong) < 0.93  # 0.84 measured
