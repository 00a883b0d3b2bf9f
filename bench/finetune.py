"""Our fine-tuning paths beside TRL's trainers called directly: same model, data and configuration, same run.

    .venv/bin/python bench/finetune.py                     # the CPU here: SmolLM2-135M's fp32 checkpoint
    python bench/finetune.py --random 0.5b --tokenizer DIR  # a GPU machine: a random ~0.5B llama built from a
                                                           # config (no weights travel), SmolLM2's tokenizer

For each method (SFT, GRPO) it runs, alternately and `--rounds` times each:

- `ours`: `release_pipeline.finetune.train` as the strategies call it (`sft_trainer` / `grpo_trainer`, then
  `train`, which also saves the adapter and collects the log);
- `trl`: `SFTTrainer` / `GRPOTrainer` built here by hand from the same settings, then `trainer.train()`;

and prints steps per second and tokens per second of the training loop (TRL's `num_tokens` over the loop's wall
time) and the wall time from model load to saved adapter, with our overhead against TRL's. On the GPU it also
prints the card. Data: the qa suite's dev questions with their expected answers (SFT) and as GRPO prompts with
an exact-match reward.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from release_pipeline.finetune import train as T  # noqa: E402
from release_pipeline.finetune.examples import Prompt  # noqa: E402


def prompts() -> list[Prompt]:
    suite = yaml.safe_load((HERE.parent / "specs" / "qa.yaml").read_text())
    system = (HERE.parent / "agents" / "qa" / "system.txt").read_text().strip()
    return [
        Prompt(t["id"], [{"role": "system", "content": system}, {"role": "user", "content": t["input"]}], t["expected"])
        for t in suite["tasks"]
        if t["split"] == "dev"
    ]


def reward(completions: list[Any], task_id: list[str], **_: Any) -> list[float]:
    answers = {p.task_id: p.answer.lower() for p in prompts()}
    return [float(answers[t] in str(c[0]["content"]).lower()) for c, t in zip(completions, task_id, strict=True)]


def checkpoint(args: argparse.Namespace, out: Path) -> Path:
    """SmolLM2's fp32 checkpoint from the blob store, or a random llama of about `--random` parameters."""
    if not args.random:
        from release_pipeline.finetune.checkpoint import base_checkpoint
        from release_pipeline.store.blobs import BlobStore

        return base_checkpoint(BlobStore(Path(args.blobs)), "local/smollm2")[1]
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    hidden, layers = {"0.5b": (1024, 24), "0.1b": (576, 30)}[args.random]
    config = LlamaConfig(
        vocab_size=49152, hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
        num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=True,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config)
    print(f"random llama: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters", flush=True)
    dest = out / "random"
    model.save_pretrained(str(dest))
    AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(str(dest))
    return dest


def direct(method: str, ckpt: Path, data: list[Prompt], s: T.LoraSettings, out: Path) -> Any:
    """TRL's trainer built by hand, exactly as its documentation shows, from the same settings."""
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    model, tokenizer = T.load_model(ckpt)
    lora = LoraConfig(
        r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
        target_modules=list(s.target_modules), task_type="CAUSAL_LM",
    )  # fmt: skip
    common = T.common_args(s, out)
    if method == "sft":
        from datasets import Dataset

        rows = [{"prompt": p.messages, "completion": [{"role": "assistant", "content": p.answer}]} for p in data]
        args = SFTConfig(**common, max_length=s.max_length)
        return SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=lora
        )
    from datasets import Dataset

    rows = [{"prompt": p.messages, "task_id": p.task_id} for p in data]
    args = GRPOConfig(
        **common, num_generations=s.num_generations, max_completion_length=s.max_completion_length,
        temperature=s.temperature, beta=s.beta,
    )  # fmt: skip
    return GRPOTrainer(
        model=model, reward_funcs=reward, args=args, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer, peft_config=lora,
    )  # fmt: skip


def once(path: str, method: str, ckpt: Path, s: T.LoraSettings) -> dict[str, float]:
    data = prompts() * (1 if method == "sft" else 4)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        start = time.perf_counter()
        if path == "ours":
            trainer = (
                T.sft_trainer(ckpt, data, s, out)
                if method == "sft"
                else T.grpo_trainer(ckpt, data, [reward], [1.0], s, out)
            )
            log = T.train(trainer, out / "adapter")
            loop, tokens = log.summary["seconds"], max(x.get("num_tokens", 0) for x in log.steps)
        else:
            trainer = direct(method, ckpt, data, s, out)
            begin = time.perf_counter()
            trainer.train()
            loop = time.perf_counter() - begin
            trainer.model.save_pretrained(str(out / "adapter"))
            tokens = max(h.get("num_tokens", 0) for h in trainer.state.log_history)
        wall = time.perf_counter() - start
    return {"steps_per_s": s.steps / loop, "tokens_per_s": tokens / loop, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sft-steps", type=int, default=20)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--random", choices=["0.5b", "0.1b"], default=None)
    ap.add_argument("--tokenizer", default="")
    ap.add_argument("--blobs", default=str(HERE / ".work" / "blobs"))
    ap.add_argument("--methods", default="sft,grpo")
    args = ap.parse_args()
    import torch

    T._quiet()
    print(f"device: {T.device()}" + (f" ({torch.cuda.get_device_name(0)})" if T.device() == "cuda" else ""))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(args, Path(tmp))
        for method in args.methods.split(","):
            steps = args.sft_steps if method == "sft" else args.grpo_steps
            s = T.LoraSettings(steps=steps, batch_size=4, num_generations=4, max_completion_length=16)
            once("ours", method, ckpt, s)  # warm-up: imports, caches, the first compiled kernels
            seen: dict[str, list[dict[str, float]]] = {"ours": [], "trl": []}
            for _ in range(args.rounds):
                for path in ("trl", "ours"):
                    seen[path].append(once(path, method, ckpt, s))
            print(f"\n{method} ({steps} steps, batch 4, median of {args.rounds}):")
            med = {p: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for p, rows in seen.items()}
            for path, m in med.items():
                rate = f"{m['steps_per_s']:.3f} steps/s  {m['tokens_per_s']:.0f} tokens/s"
                print(f"  {path:<5} {rate}  wall {m['wall_s']:.1f} s")
            loop = med["trl"]["steps_per_s"] / med["ours"]["steps_per_s"] - 1
            wall = med["ours"]["wall_s"] / med["trl"]["wall_s"] - 1
            print(f"  our overhead: {loop:+.1%} in the training loop, {wall:+.1%} from load to saved adapter")


if __name__ == "__main__":
    main()
