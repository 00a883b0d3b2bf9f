"""Shared fixtures: an isolated environment, the bundled example as a workspace, a CLI runner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
RELEASE = str(Path(sys.executable).with_name("release"))


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path_factory):
    """No workspace, database, plugin block list or git identity leaks in from the machine."""
    for var in ("RELEASE_DB_URL", "RELEASE_WORKSPACE", "RELEASE_PIPELINE_BLOCK", "RELEASE_PIPELINE_TRACE",
                "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
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
        for name in ("agents", "specs", "release.yaml", "gate-policy.yaml"):
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
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
        from release_pipeline.cli.app import build_app

        import os

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


def run_release(cwd: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed `release` script in a subprocess: for exit codes, stderr shape and process faults."""
    return subprocess.run([RELEASE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
