"""Fine-tuning candidates: the blob store, the weights file, prompt weighting, and (slow) real LoRA SFT and GRPO
runs on the bundled SmolLM2 model that end in a gated candidate."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Cli, commit_all, git

from release_pipeline.config.manifest import load_manifest
from release_pipeline.config.weights import read_weights, served_model
from release_pipeline.errors import ConfigError, UserError
from release_pipeline.finetune.examples import (
    FAILING_WEIGHT,
    PASSING_WEIGHT,
    Prompt,
    balance,
    draw,
    drawn_counts,
    grpo_prompts,
    spread,
)
from release_pipeline.finetune.train import LoraSettings
from release_pipeline.models import Artifact, CandidateContext
from release_pipeline.store.blobs import BlobError, BlobStore, tree_digest

HAVE_EXTRA = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft", "trl", "gguf", "datasets"))


def folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_blobs_are_named_by_content_and_checked_on_every_read(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    made = folder(tmp_path / "a", {"x.bin": "one", "sub/y.txt": "two"})
    digest = store.put(made)
    assert digest == tree_digest(made) and store.put(made) == digest  # idempotent
    assert (store.get(digest) / "sub" / "y.txt").read_text() == "two"
    assert store.put(folder(tmp_path / "b", {"x.bin": "one", "sub/y.txt": "three"})) != digest
    (store.get(digest) / "x.bin").write_text("tampered")
    with pytest.raises(BlobError, match="corrupt"):
        store.get(digest)
    with pytest.raises(BlobError, match="missing"):
        store.get("sha256:" + "0" * 64, "adapter")
    with pytest.raises(BlobError, match="not a blob name"):
        store.get("sha256:xyz")


def test_the_weights_file_names_the_model_the_provider_serves(tmp_path):
    agent = folder(
        tmp_path / "agent", {"weights.yaml": "base_model: local/smollm2\nbase: sha256:aa\nadapter: sha256:bb\n"}
    )
    weights = read_weights(agent)
    assert weights is not None and served_model(weights) == "local/smollm2@bb"
    assert read_weights(folder(tmp_path / "plain", {"x": ""})) is None  # no file: the base model
    (agent / "weights.yaml").write_text("base_model: local/smollm2\n")
    with pytest.raises(ConfigError, match="needs base_model, base and adapter"):
        read_weights(agent)


def test_settings_take_every_hyperparameter_and_refuse_unknown_ones():
    s = LoraSettings.of({"name": "lora-sft", "steps": "5", "target_modules": ["q_proj"], "learning_rate": 1e-3})
    assert (s.steps, s.target_modules, s.learning_rate) == (5, ("q_proj",), 1e-3)
    with pytest.raises(ConfigError, match="unknown fine-tuning option 'lora_rank'"):
        LoraSettings.of({"lora_rank": 4})
    with pytest.raises(ConfigError, match="is not a int"):
        LoraSettings.of({"steps": "many"})


def context(tmp_path, examples) -> CandidateContext:
    path = REPO / "agents" / "qa"
    artifact = Artifact("qa", 1, path, load_manifest(path), "sha", "hash")
    return CandidateContext("qa", artifact, None, tmp_path, {}, frozenset(), dev_examples=tuple(examples))


def example(task_id: str, passes: int, trials: int) -> dict:
    return {"task_id": task_id, "input": f"q {task_id}", "expected": "a", "tags": [], "passed": passes == trials,
            "passes": passes, "trials": trials, "output": "a"}  # fmt: skip


def test_grpo_spends_rollouts_on_prompts_between_always_and_never(tmp_path):
    prompts, how = grpo_prompts(
        context(tmp_path, [example("all", 4, 4), example("none", 0, 4), example("half", 2, 4), example("most", 3, 4)])
    )
    weights = {p.task_id: p.weight for p in prompts}
    assert weights == {"half": 0.25, "most": 0.1875}  # all-pass and all-fail groups would teach nothing
    assert "2 of 4 dev tasks" in how
    drawn = draw(prompts, 400, seed=1)
    assert 0.5 < sum(p.task_id == "half" for p in drawn) / 400 < 0.65  # 0.25 / 0.4375 = 0.57
    # greedy copies: one observation a task, nothing in between: failing tasks first, passing ones kept
    prompts, how = grpo_prompts(context(tmp_path, [example("pass", 1, 1), example("fail", 0, 1)]))
    assert {p.task_id: p.weight for p in prompts} == {"pass": PASSING_WEIGHT, "fail": FAILING_WEIGHT}
    assert "one observation a task" in how


def test_sft_shows_the_passing_answers_as_often_as_the_lessons_and_every_example_at_least_once():
    keep = [Prompt(f"keep{i}", [], "[]", source="own_pass") for i in range(16)]
    learn = [Prompt(f"ref{i}", [], "call", source="reference") for i in range(48)]
    shown = spread(balance(keep + learn, 0.5), 160, seed=3)
    counts = drawn_counts(shown)
    assert len(shown) == 160 and set(counts) == {p.task_id for p in keep + learn}
    assert sum(counts[p.task_id] for p in keep) == 80  # half of what the model sees, from 16 of 64 examples
    assert {counts[p.task_id] for p in learn} == {1, 2}  # the rest spread evenly, none left out
    assert spread(balance(keep + learn, 0.5), 160, seed=3) == shown  # reproducible
    assert balance(learn, 0.5) == learn  # one kind only: nothing to balance


def test_without_the_extra_a_strategy_says_what_to_install(monkeypatch):
    from release_pipeline import finetune

    monkeypatch.setattr(finetune.importlib.util, "find_spec", lambda name: None if name == "trl" else object())
    with pytest.raises(UserError, match=r"fine-tuning needs trl: pip install torch==2.13.0"):
        finetune.require()


# ----- real fine-tuning on the CPU, with the bundled SmolLM2-135M model ---------------------------------


def qa_workspace(root: Path) -> Path:
    """The bundled qa agent with a small suite: 8 dev tasks, 6 gate tasks."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "agents" / "qa", root / "agents" / "qa")
    suite = yaml.safe_load((REPO / "specs" / "qa.yaml").read_text())
    dev = [t for t in suite["tasks"] if t["split"] == "dev"][:8]
    gate = [t for t in suite["tasks"] if t["split"] == "gate"][:6]
    suite["tasks"] = dev + gate
    (root / "specs").mkdir()
    (root / "specs" / "qa.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    shutil.copy(REPO / "gate-policy.yaml", root / "gate-policy.yaml")
    config = {"agents": {"qa": {"path": "agents/qa", "suite": "specs/qa.yaml"}}, "critic": "heuristic",
              "run": {"repeats": 1, "concurrency": 4, "timeout_s": 120}, "policy": "gate-policy.yaml"}  # fmt: skip
    (root / "release.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".gitignore").write_text(".release/\n")
    git(root, "init", "-q")
    commit_all(root, "qa")
    Cli(root)("init")
    return root


def outputs(cli: Cli, run_id: int) -> dict[str, str]:
    return {t["task_id"]: t["output"] for t in cli.json("show", "--run", str(run_id))["trials"]}


needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason="needs the finetune extra (make test installs it)")


@pytest.fixture(scope="module")
def sft(tmp_path_factory) -> tuple[Path, dict]:
    """One LoRA SFT candidate of the qa agent, trained once for the tests below (training is minutes of CPU)."""
    root = qa_workspace(tmp_path_factory.mktemp("finetune") / "ws")
    made = Cli(root).json("candidate", "--strategy", "lora-sft", "-o", "steps=2", "-o", "learning_rate=0.002")
    return root, made


def linked_copy(root: Path, to: Path) -> Path:
    """A copy of a workspace whose files are hard links: cheap for the blobs, safe as long as files are replaced,
    never written in place."""
    shutil.copytree(root, to, symlinks=True, copy_function=os.link)
    return to


@pytest.mark.slow
@needs_extra
def test_lora_sft_and_grpo_each_make_one_gated_candidate(sft):
    root, made = sft
    cli = Cli(root)
    assert made["changed_files"] == ["agents/qa/weights.yaml"] and made["status"] == "candidate"
    weights = yaml.safe_load(git(root, "show", f"{made['branch']}:agents/qa/weights.yaml"))
    assert weights["method"] == "lora-sft" and weights["summary"]["steps"] == 2 and len(weights["log"]) == 2
    store = BlobStore(root / ".release" / "blobs")
    adapter = store.get(weights["adapter"])
    assert (adapter / "adapter.gguf").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert store.get(weights["base"]).joinpath("model.safetensors").is_file()  # the fp32 checkpoint
    gate = cli.json("gate", "--candidate", f"v{made['number']}", code=None)
    assert gate["decision"] in ("accepted", "rejected", "undecided") and gate["training"]["method"] == "lora-sft"
    base, tuned = outputs(cli, gate["base_run"]), outputs(cli, gate["candidate_run"])
    assert any(base[t] != tuned[t] for t in base), "the adapter changed no answer"

    grpo = cli.json("candidate", "--strategy", "grpo", "-o", "steps=2")
    weights = yaml.safe_load(git(root, "show", f"{grpo['branch']}:agents/qa/weights.yaml"))
    assert weights["method"] == "grpo" and "prompt_weights" in weights["config"]
    assert all("frac_reward_zero_std" in step for step in weights["log"])
    gate = cli.json("gate", "--candidate", f"v{grpo['number']}", code=None)
    assert len(gate["training"]["frac_reward_zero_std"]) == 2
    assert "frac_reward_zero_std per step" in cli("show", f"v{grpo['number']}").stdout

    # the canonical version never had weights: it is still served by the base model
    assert "weights.yaml" not in git(root, "ls-tree", "-r", "--name-only", "canonical/qa")


@pytest.mark.slow
@needs_extra
def test_a_corrupt_or_missing_adapter_is_one_clear_line(sft, tmp_path):
    from conftest import run_release

    root, made = sft
    root = linked_copy(root, tmp_path / "ws")
    weights = yaml.safe_load(git(root, "show", f"{made['branch']}:agents/qa/weights.yaml"))
    adapter = BlobStore(root / ".release" / "blobs").get(weights["adapter"])
    (adapter / "adapter.gguf").unlink()  # a link shared with the fixture's workspace: replace it, never write it
    (adapter / "adapter.gguf").write_bytes(b"not an adapter")
    result = run_release(root, "run", "--version", f"v{made['number']}", "--json")
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert result.returncode == 2 and "corrupt" in error["message"] and weights["adapter"] in error["message"]
    shutil.rmtree(adapter)
    result = run_release(root, "run", "--version", f"v{made['number']}")
    assert result.returncode == 2 and "is missing" in result.stderr and "Traceback" not in result.stderr
    BlobStore(sft[0] / ".release" / "blobs").get(weights["adapter"])  # the fixture's workspace is untouched


def test_a_version_answers_with_its_weights_file_and_without_it_with_the_base_model(tmp_path):
    from release_pipeline.builtin.prompt_agent import PromptAgent

    agent = tmp_path / "qa"
    shutil.copytree(REPO / "agents" / "qa", agent)
    before = PromptAgent(Artifact("qa", 1, agent, load_manifest(agent), "sha", "hash"))
    (agent / "weights.yaml").write_text(
        f"base_model: local/smollm2\nbase: sha256:{'a' * 64}\nadapter: sha256:{'b' * 64}\n"
    )
    tuned = PromptAgent(Artifact("qa", 2, agent, load_manifest(agent), "sha", "hash"))
    assert (before.model, tuned.model) == ("local/smollm2", f"local/smollm2@{'b' * 64}")
    (agent / "weights.yaml").write_text(
        f"base_model: local/other\nbase: sha256:{'a' * 64}\nadapter: sha256:{'b' * 64}\n"
    )
    with pytest.raises(ConfigError, match="was trained on local/other"):
        PromptAgent(Artifact("qa", 3, agent, load_manifest(agent), "sha", "hash"))
