"""`release init`: create a workspace, or record the committed agents of one as their first canonical version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from release_pipeline.cli.common import JsonOpt, print_json, say

if TYPE_CHECKING:
    from release_pipeline.models import Baseline
    from release_pipeline.workspace import Workspace

CONFIG_TEMPLATE = """\
# release-pipeline workspace. Each agent is a folder with an agent.yaml manifest
# and a suite of tasks with dev, gate and holdout splits.
agents:
  {name}:
    path: agents/{name}
    suite: specs/{name}.yaml
run:
  repeats: 3          # trials per task and version
  concurrency: 8
  timeout_s: 60       # per trial
  seed: 0
critic: heuristic
strategy:
  name: patch-queue   # used by `release promote --iterations N`
  patches: []
policy: gate-policy.yaml
"""


def init(
    path: Annotated[Path, typer.Argument(help="Workspace folder.")] = Path("."),
    agent: Annotated[str, typer.Option(help="Agent name for a new config.")] = "my-agent",
    json_output: JsonOpt = False,
) -> None:
    """Create release.yaml, the gate policy and .release/ where missing; record each committed agent as v1."""
    from release_pipeline.models import InitResult

    root = path.resolve()
    ws, created = _scaffold(root, agent)
    recorded = [baseline for name in sorted(ws.config.agents) if (baseline := _record(ws, name)) is not None]
    if json_output:
        print_json(InitResult(str(root), tuple(created), tuple(recorded)))


def _scaffold(root: Path, agent: str) -> tuple[Workspace, list[str]]:
    """The workspace at `root`, with what was missing of it created and committed: release.yaml (for `agent`), the
    .gitignore line for the state folder, the git repository, the gate policy. Returns what was created."""
    import git

    from release_pipeline.config.locations import STATE_DIR
    from release_pipeline.config.policy import default_policy_text
    from release_pipeline.config.release_yaml import CONFIG_FILE
    from release_pipeline.workspace import Workspace

    root.mkdir(parents=True, exist_ok=True)
    created = []
    if not (root / CONFIG_FILE).exists():
        (root / CONFIG_FILE).write_text(CONFIG_TEMPLATE.format(name=agent), encoding="utf-8")
        created.append(CONFIG_FILE)
    ignore = root / ".gitignore"
    if STATE_DIR + "/" not in (ignore.read_text(encoding="utf-8").split() if ignore.exists() else []):
        with ignore.open("a", encoding="utf-8") as fh:
            fh.write(f"{STATE_DIR}/\n")
        created.append(".gitignore")
    try:
        git.Repo(root)
    except git.InvalidGitRepositoryError:
        git.Repo.init(root)
        created.append("git repository")
    ws = Workspace(root)
    policy = root / ws.config.policy
    if not policy.exists():
        policy.write_text(default_policy_text(), encoding="utf-8")
        created.append(ws.config.policy)
    if created:
        say(f"created {', '.join(created)} in {root}")
        _commit_scaffold(ws, [p for p in (CONFIG_FILE, ".gitignore", ws.config.policy) if p in created])
    return ws, created


def _record(ws: Workspace, name: str) -> Baseline | None:
    """Agent `name`'s canonical version: the line git carries, adopted, or its committed state recorded as v1;
    None while its folder has no agent.yaml."""
    from release_pipeline.models import Baseline
    from release_pipeline.stages.promote import adopt_line, record_baseline

    cfg = ws.agent(name)
    if not (ws.root / cfg.path / "agent.yaml").exists():
        say(f"{name}: no {cfg.path}/agent.yaml yet: add the agent, commit, and run `release init` again")
        return None
    adopted = adopt_line(ws, cfg)
    if adopted is not None:
        say(f"{name}: adopted the version line git carries: v{adopted.number} is canonical")
        return Baseline(name, adopted.number, adopted.git_sha, False)
    version = record_baseline(ws, cfg)
    head = ws.store.head(name)
    assert head is not None  # record_baseline leaves a canonical version
    if version is not None:
        say(f"{name}: v{version.number} is canonical ({version.git_sha[:10]})")
    return Baseline(name, head.number, head.git_sha, version is not None)


def _commit_scaffold(ws, paths: list[str]) -> None:
    """Commit the files init wrote (and nothing else), so the workspace starts from a clean tree."""
    from release_pipeline.repo.gitops import identity

    if not paths:
        return
    repo = ws.repo
    repo.index.add(paths)
    with identity(repo):
        repo.git.commit("-m", "release-pipeline: initialise workspace", "--", *paths)
    say(f"committed {', '.join(paths)}")


def register(app: typer.Typer) -> None:
    app.command()(init)
