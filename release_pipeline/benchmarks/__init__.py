"""Suite plugins for public benchmarks whose data travel inside PyPI packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from release_pipeline.errors import UserError


def package_dir(module: str, install: str) -> Path:
    """Where an installed data package lives, without importing it (its own imports may be heavy)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"this suite needs the {install.split()[-1]} package: pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


REFERENCE = "reference"  # a dev task's metadata key: a reference answer a candidate strategy may learn from


def split_for(index: int) -> str:
    """The fixed split of the index-th problem of a benchmark: 2 of 5 dev, 2 of 5 gate, 1 of 5 holdout."""
    return ("dev", "gate", "dev", "gate", "holdout")[index % 5]


def dev_reference(split: str, answer: object) -> dict[str, object]:
    """Task metadata carrying a reference answer, for dev tasks only: the splits that judge (gate) and report
    (holdout) never hand one to the candidate stage."""
    return {REFERENCE: answer} if split == "dev" else {}
