"""The agent's local model as a plain fp32 checkpoint that transformers can train and save.

transformers loads the GGUF file the local provider serves, but a model loaded so carries a GGUF quantization
config and refuses to train or save; without it, it is an ordinary checkpoint. It is made once per GGUF file and
kept in the blob store, named by its content; `index/` maps the GGUF file's digest to it.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from release_pipeline.errors import UserError
from release_pipeline.llm.providers import LOCAL_PROVIDER, weights_path
from release_pipeline.store.blobs import BlobStore, file_sha256


def gguf_of(model: str) -> Path:
    """The GGUF file a local model is served from."""
    return weights_path(local_name(model))


def local_name(model: str) -> str:
    """`smollm2` of `local/smollm2`; fine-tuning needs a model whose weights are here."""
    provider, _, name = model.partition("/")
    if provider != LOCAL_PROVIDER or not name or "@" in name:
        raise UserError(f"fine-tuning needs a local base model (local/<name>), not {model!r}")
    return name


def base_checkpoint(blobs: BlobStore, model: str) -> tuple[str, Path]:
    """The digest and folder of the fp32 checkpoint of a local model, made and stored on first use."""
    gguf = gguf_of(model)
    index = blobs.root / "index" / f"{gguf.stem}-{file_sha256(gguf)[:32]}.txt"
    if index.is_file():
        digest = index.read_text(encoding="utf-8").strip()
        if blobs.has(digest):
            return digest, blobs.get(digest, "base checkpoint")
    with tempfile.TemporaryDirectory(prefix="checkpoint-") as tmp:
        save_plain_checkpoint(gguf, Path(tmp))
        digest = blobs.put(Path(tmp))
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(digest + "\n", encoding="utf-8")
    return digest, blobs.get(digest, "base checkpoint")


def save_plain_checkpoint(gguf: Path, dest: Path) -> None:
    """Dequantise `gguf` into fp32 and save model and tokenizer to `dest` without the GGUF quantization config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from release_pipeline.finetune.train import quiet_libraries, quiet_progress

    quiet_progress()
    # converting, loading and writing each draw a bar, the first with tqdm directly: none reaches the user
    with quiet_libraries(), contextlib.redirect_stderr(io.StringIO()):
        _save_plain(gguf, dest, AutoModelForCausalLM, AutoTokenizer)


def _save_plain(gguf: Path, dest: Path, model_class: Any, tokenizer_class: Any) -> None:
    tokenizer = tokenizer_class.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = model_class.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
