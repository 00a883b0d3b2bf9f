"""Making a throwaway git workspace for a benchmark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def commit_workspace(root: Path, message: str) -> None:
    """Write the gate policy and .gitignore, then commit everything in `root` as a fresh repository."""
    from release_pipeline.config.policy import default_policy_text

    (root / "gate-policy.yaml").write_text(default_policy_text())
    (root / ".gitignore").write_text(".release/\n")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", message]):
        subprocess.run(cmd, cwd=root, check=True, env={**os.environ, **IDENTITY})
