"""How trials are run: concurrency, timeout, seed, executor, the LLM gateway and the models, from the workspace."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import URL

    from release_pipeline.config.release_yaml import WorkspaceConfig

EXECUTOR_ENV = "RELEASE_EXECUTOR"  # `release run --executor`: overrides `run.executor` of release.yaml
ADDRESS_ENV = "RELEASE_EXECUTOR_ADDRESS"  # `--address`: the executor's `address` option (a Ray cluster's)


@dataclass(frozen=True)
class RunSettings:
    """Everything a batch of trials is run with, besides the version's own artifact."""

    concurrency: int
    timeout_s: float
    seed: int
    executor: str = "local"
    progress: Callable[[int], Any] | None = None
    llm: Any = None
    models: dict[str, str] = field(default_factory=dict)
    executor_options: dict[str, Any] = field(default_factory=dict)
    db_url: str = ""  # the store's URL, for trial hosts on other machines
    allowed_models: tuple[str, ...] = ()  # models agents may call besides models.agent and their manifest's

    @classmethod
    def of(cls, config: WorkspaceConfig, llm: Any, db_url: str | URL) -> RunSettings:
        """The settings `release.yaml` gives, with the command's executor choice (`--executor`, `--address`)."""
        run = config.run
        executor, options = run.executor, dict(run.executor_options)
        if os.environ.get(EXECUTOR_ENV, executor) != executor:  # another executor than release.yaml's
            executor, options = os.environ[EXECUTOR_ENV], {}
        if os.environ.get(ADDRESS_ENV):
            options["address"] = os.environ[ADDRESS_ENV]
        url = db_url if isinstance(db_url, str) else db_url.render_as_string(hide_password=False)
        return cls(
            run.concurrency,
            run.timeout_s,
            run.seed,
            executor,
            None,
            llm,
            config.models,
            options,
            url,
            config.allowed_models,
        )
