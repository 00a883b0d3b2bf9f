"""Where a workspace is, and the names of its files and environment variables (cheap to import)."""

from __future__ import annotations

import os
from pathlib import Path

from release_pipeline.errors import UserError

CONFIG_FILE = "release.yaml"
STATE_DIR = ".release"
DB_ENV = "RELEASE_DB_URL"
REMOTE_ENV = "RELEASE_GIT_REMOTE"  # a git remote every head move is pushed to (overrides `remote:`)
WORKSPACE_ENV = "RELEASE_WORKSPACE"
ACTOR_ENV = "RELEASE_ACTOR"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (or $RELEASE_WORKSPACE) that holds `release.yaml`."""
    if start is None and os.environ.get(WORKSPACE_ENV):
        start = Path(os.environ[WORKSPACE_ENV])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise UserError(f"no {CONFIG_FILE} in {here} or above: run `release init` first")
