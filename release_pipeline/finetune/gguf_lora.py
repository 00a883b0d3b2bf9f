"""A PEFT LoRA adapter as a llama.cpp LoRA adapter (GGUF), so a fine-tuned version is served by llama.cpp on the
very same quantized base the canonical version uses: the adapter is then the only difference a gate sees.

llama.cpp applies `scale * B(A x)` beside each adapted weight, `scale = alpha / r`. Its tensors are named after
the base model's (`blk.3.attn_q.weight.lora_a`), A stored as PEFT's `[r, n_in]`, B as `[n_out, r]`. The GGUF
conversion of a llama model permutes the rows of the query and key projections (rotary embedding layout), and
transformers undoes that when it loads the GGUF file, so the adapter, trained in transformers' layout, has the
rows of its query and key B matrices permuted the same way here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from release_pipeline.errors import UserError

PROJECTIONS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
NAME = re.compile(r"layers\.(\d+)\.(self_attn\.\w+_proj|mlp\.\w+_proj)\.lora_([AB])\.weight$")


def permute_rows(weights, n_head: int):  # numpy in, numpy out
    """The row order llama.cpp's conversion gives query and key projections."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def convert(adapter: Path, checkpoint: Path, dest: Path) -> None:
    """Write the PEFT adapter in `adapter` (trained on the checkpoint in `checkpoint`) as a GGUF LoRA to `dest`."""
    import gguf
    from safetensors.numpy import load_file

    settings = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise UserError(f"llama.cpp adapters are made for llama models here, not {config.get('model_type')!r}")
    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]}
    writer = gguf.GGUFWriter(str(dest), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(settings["lora_alpha"]))
    for name, tensor in sorted(load_file(str(adapter / "adapter_model.safetensors")).items()):
        match = NAME.search(name)
        if match is None:
            raise UserError(f"adapter tensor {name!r} has no llama.cpp counterpart")
        layer, module, side = match.groups()
        target = PROJECTIONS[module]
        values = tensor.astype("float32")
        if side == "B" and target in heads:
            values = permute_rows(values, heads[target])
        writer.add_tensor(f"blk.{layer}.{target}.weight.lora_{side.lower()}", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
