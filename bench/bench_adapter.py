"""What serving a fine-tuned version costs: the base model beside base + LoRA adapter, on both local engines.

    .venv/bin/python bench/bench_adapter.py [--rounds 3]

Trains a small LoRA adapter (8 SFT steps on the qa dev answers, r=8 on q/v projections) with the lora-sft
strategy's own code, then answers the qa suite's 48 questions (greedy, up to 32 new tokens, the agent's own
system prompt) with, alternately:

- `llama.cpp base`: the Q4_1 GGUF file the canonical version is served from;
- `llama.cpp + LoRA`: the same file with the adapter converted to a GGUF LoRA (what a fine-tuned version gets);
- `transformers + LoRA`: the fp32 checkpoint with the adapter merged in (the fallback without llama.cpp);

and prints completion tokens per second (median of the rounds) and how many answers the two adapted engines agree
on word for word.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from finetune import prompts  # noqa: E402

from release_pipeline.finetune import train as T  # noqa: E402
from release_pipeline.finetune.checkpoint import base_checkpoint  # noqa: E402
from release_pipeline.finetune.gguf_lora import convert  # noqa: E402
from release_pipeline.llm.providers import _LlamaCpp, _Transformers, weights_path  # noqa: E402
from release_pipeline.store.blobs import BlobStore  # noqa: E402


def questions() -> list[list[dict[str, str]]]:
    suite = yaml.safe_load((HERE.parent / "specs" / "qa.yaml").read_text())
    system = (HERE.parent / "agents" / "qa" / "system.txt").read_text().strip()
    return [[{"role": "system", "content": system}, {"role": "user", "content": t["input"]}] for t in suite["tasks"]]


def serve(engine, chats) -> tuple[float, list[str]]:
    answers, tokens = [], 0
    start = time.perf_counter()
    for chat in chats:
        text, _, _, completion = engine.chat(chat, {"max_tokens": 32, "temperature": 0})
        answers.append(text.strip())
        tokens += completion
    return tokens / (time.perf_counter() - start), answers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    T._quiet()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _, ckpt = base_checkpoint(BlobStore(HERE / ".work" / "blobs"), "local/smollm2")
        settings = T.LoraSettings(steps=8, batch_size=4)
        T.train(T.sft_trainer(ckpt, prompts(), settings, out), out / "adapter")
        convert(out / "adapter", ckpt, out / "adapter.gguf")
        engines = {
            "llama.cpp base": _LlamaCpp(weights_path("smollm2")),
            "llama.cpp + LoRA": _LlamaCpp(weights_path("smollm2"), lora=out / "adapter.gguf"),
            "transformers + LoRA": _Transformers(ckpt, out / "adapter"),
        }
        chats = questions()
        speeds: dict[str, list[float]] = {name: [] for name in engines}
        answers: dict[str, list[str]] = {}
        for engine in engines.values():  # warm-up
            serve(engine, chats[:2])
        for _ in range(args.rounds):
            for name, engine in engines.items():
                rate, answers[name] = serve(engine, chats)
                speeds[name].append(rate)
        for name in engines:
            print(f"{name:<20} {statistics.median(speeds[name]):6.1f} completion tokens/s")
        base = statistics.median(speeds["llama.cpp base"])
        print(f"adapter cost on llama.cpp: {statistics.median(speeds['llama.cpp + LoRA']) / base:.2f}x the base speed")
        same = sum(a == b for a, b in zip(answers["llama.cpp + LoRA"], answers["transformers + LoRA"], strict=True))
        print(f"llama.cpp + LoRA and transformers + LoRA answer alike on {same}/{len(chats)} questions")
        for engine in engines.values():
            engine.close()


if __name__ == "__main__":
    main()
