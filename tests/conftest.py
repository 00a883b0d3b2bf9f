"""Shared fixtures: an isolated environment, the bundled example as a workspace, a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

# before anything imports litellm: never fetch its price list (the tests run offline)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
RELEASE = str(Path(sys.executable).with_name("release"))


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path_factory):
    """No workspace, database, plugin block list or git identity leaks in from the machine."""
    for var in (
        "RELEASE_DB_URL",
        "RELEASE_WORKSPACE",
        "RELEASE_PIPELINE_BLOCK",
        "RELEASE_PIPELINE_TRACE",
        "RELEASE_EXECUTOR",
        "RELEASE_EXECUTOR_ADDRESS",
        "RAY_ADDRESS",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("RELEASE_ACTOR", "tester")
    monkeypatch.setenv("COLUMNS", "200")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def make_workspace(root: Path, *, example: bool = True) -> Path:
    """A committed git workspace; with `example`, a copy of the bundled calc example."""
    root.mkdir(parents=True, exist_ok=True)
    if example:
        import yaml

        for name in ("agents", "specs", "gate-policy.yaml"):
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
        config = yaml.safe_load((REPO / "release.yaml").read_text())
        config["agents"] = {"calc": config["agents"]["calc"]}  # the deterministic example, no model needed
        config["critic"] = "heuristic"
        (root / "release.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".gitignore").write_text(".release/\n")
    git(root, "init", "-q")
    commit_all(root, "workspace")
    return root


class Cli:
    """Invokes the `release` app in-process, as a user would from the workspace folder."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int | None = 0):
        import os

        from release_pipeline.cli.app import build_app

        old = os.getcwd()
        os.chdir(self.cwd)
        try:
            result = self.runner.invoke(build_app(), list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
        if code is not None:
            assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    def json(self, *args: str, code: int | None = 0):
        result = self(*args, "--json", code=code)
        return json.loads(result.stdout)


@pytest.fixture
def workspace(tmp_path) -> Path:
    """The bundled example, committed, with v1 recorded as canonical."""
    root = make_workspace(tmp_path / "ws")
    Cli(root)("init")
    return root


@pytest.fixture
def cli(workspace) -> Cli:
    return Cli(workspace)


def run_release(
    cwd: Path, *args: str, env: dict | None = None, timeout: float = 120, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    """The installed `release` script in a subprocess: for exit codes, stderr shape and process faults (started
    through `launcher`, a command prefix, when given)."""
    command = [*(launcher or []), RELEASE, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def build_workspace(
    root: Path,
    *,
    agent_files: dict[str, str],
    tasks: list[dict],
    manifest: dict | None = None,
    policy: dict | None = None,
    run: dict | None = None,
    verifier: dict | None = None,
    extra: dict[str, str] | None = None,
    init: bool = True,
    trusted: bool = False,
) -> Path:
    """A small workspace of our own making: agent `toy` from `agent_files`, a YAML suite of `tasks`.

    With `trusted`, the workspace config runs the agent in-process (no sandbox).
    """
    import yaml

    from release_pipeline.config.policy import GatePolicy

    agent_dir = root / "agents" / "toy"
    agent_dir.mkdir(parents=True)
    for name, text in agent_files.items():
        (agent_dir / name).write_text(text)
    (agent_dir / "agent.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "adapter": "callable",
                "entry": "agent:solve",
                "editable": ["*.py", "*.json"],
                **(manifest or {}),
            }
        )
    )
    (root / "specs").mkdir()
    (root / "specs" / "toy.yaml").write_text(
        yaml.safe_dump({"name": "toy", "verifier": verifier or {"type": "exact"}, "tasks": tasks})
    )
    (root / "release.yaml").write_text(
        yaml.safe_dump(
            {
                "agents": {
                    "toy": {"path": "agents/toy", "suite": "specs/toy.yaml", **({"trusted": True} if trusted else {})}
                },
                "run": {"repeats": 3, "concurrency": 4, "timeout_s": 10, "seed": 0, **(run or {})},
            }
        )
    )
    (root / "gate-policy.yaml").write_text(yaml.safe_dump({**GatePolicy().to_dict(), **(policy or {})}))
    for name, text in (extra or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    make_workspace(root, example=False)
    if init:
        Cli(root)("init")
    return root


def change_agent(root: Path, files: dict[str, str], message: str = "change") -> str:
    """Commit new agent files on a branch off the canonical version and return the branch name."""
    branch = f"change-{abs(hash(message)) % 10**8}"
    canonical = subprocess.run(["git", "rev-parse", "--verify", "-q", "canonical/toy"], cwd=root, capture_output=True)
    git(root, "checkout", "-q", "-b", branch, *(["canonical/toy"] if canonical.returncode == 0 else []))
    for name, text in files.items():
        (root / "agents" / "toy" / name).write_text(text)
    commit_all(root, message)
    git(root, "checkout", "-q", "-")
    return branch


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session; required in CI, skipped elsewhere when none is installed."""
    import os

    from pg_server import PostgresServer

    try:
        server = PostgresServer()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch):
    """Each test twice: on the workspace's own SQLite file, and on a fresh PostgreSQL database (RELEASE_DB_URL)."""
    import time

    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").new_database(f"t{os.getpid()}{time.monotonic_ns()}")
        monkeypatch.setenv("RELEASE_DB_URL", url)
    return request.param


def race_for_head(url: str, contenders: int = 8) -> tuple[list[int], list[int]]:
    """`contenders` threads, each with its own Store, compare-and-swap one head from v1 at the same moment.

    Returns the versions that won and those whose git side effect ran.
    """
    import threading

    from release_pipeline.errors import ConflictError
    from release_pipeline.store import Store

    setup = Store(url)
    setup.ensure_agent("a", "agents/a")
    for n in range(1, contenders + 2):
        setup.create_version("a", status="candidate", parent_number=None, git_sha=f"{n:040d}", content_hash="h")
    setup.move_head("a", expected=None, to=1, actor="t", reason="init", kind="init", side_effect=lambda: lambda: None)
    barrier, won, side_effects = threading.Barrier(contenders), [], []

    def contend(n: int) -> None:
        store = Store(url)
        barrier.wait()
        try:
            store.move_head(
                "a",
                expected=1,
                to=n,
                actor=f"t{n}",
                reason="race",
                kind="promote",
                side_effect=lambda: side_effects.append(n) or (lambda: None),
            )
            won.append(n)
        except ConflictError:
            pass

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(2, contenders + 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, side_effects


def check_race_outcome(url: str, won: list[int]) -> None:
    """Exactly one winner, and the store agrees with it everywhere."""
    from release_pipeline.store import Store

    store = Store(url)
    assert len(won) == 1
    assert store.head("a").number == won[0]
    assert [(m.from_version, m.to_version) for m in store.head_moves("a")] == [(None, 1), (1, won[0])]
    statuses = sorted(v.status for v in store.versions("a"))
    assert statuses == sorted(["canonical", "retired"] + ["candidate"] * (len(statuses) - 2))


@pytest.fixture
def fake_llm():
    """`fake/<anything>` answers from a script (see tests/fake_llm.py), through litellm like any provider."""
    from fake_llm import FakeModel, make_handler

    from release_pipeline.llm.providers import register_provider

    fake = FakeModel()
    register_provider("fake", make_handler(fake))
    return fake


QA_AGENT = {
    "system.txt": "You answer in one word. CANARY-7f3a\n",
    "prompt.txt": "Question: {input}\n",
    "demos.yaml": "[]\n",
}


def prompt_workspace(
    root: Path,
    tasks: list[dict],
    *,
    model: str = "fake/agent",
    files: dict | None = None,
    params: dict | None = None,
    **kwargs,
) -> Path:
    """A workspace with one prompt agent `toy` on `model`, and the critic and synthesizer on fake models."""
    import yaml

    root = build_workspace(
        root,
        agent_files={**QA_AGENT, **(files or {})},
        tasks=tasks,
        init=False,
        manifest={
            "adapter": "prompt",
            "model": model,
            "system": "system.txt",
            "prompt": "prompt.txt",
            "demos": "demos.yaml",
            "params": params or {"temperature": 0, "max_tokens": 8},
            "editable": ["system.txt", "prompt.txt", "demos.yaml"],
        },
        verifier={"type": "normalized"},
        **kwargs,
    )
    config = yaml.safe_load((root / "release.yaml").read_text())
    config["models"] = {"agent": model, "critic": "fake/critic", "synthesizer": "fake/synth"}
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    commit_all(root, "prompt agent")
    Cli(root)("init")
    return root


def require_isolation() -> None:
    """Fail a test that needs bubblewrap's isolation where the machine cannot give it: never a silent skip (the
    sandbox refuses to run untrusted code without it anyway). `make test` installs bubblewrap where it can."""
    from release_pipeline.sandbox.isolation import _probe

    path, why = _probe()
    if path is None:
        pytest.fail(f"this test needs bubblewrap's isolation: {why}")


def without_bwrap_path(tmp: Path) -> str:
    """A PATH with every program of this machine but bubblewrap (and this interpreter's scripts first)."""
    hidden = tmp / "bin-without-bwrap"
    hidden.mkdir(exist_ok=True)
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for program in Path(folder).iterdir() if Path(folder).is_dir() else ():
            link = hidden / program.name
            if program.name != "bwrap" and not link.exists():
                link.symlink_to(program)
    return os.pathsep.join([str(Path(sys.executable).parent), str(hidden)])
