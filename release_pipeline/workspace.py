"""A workspace: a git repository with `release.yaml`, agents, suites, a gate policy and `.release/` state."""

from __future__ import annotations

import getpass
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from release_pipeline.config.locations import ACTOR_ENV, CONFIG_FILE, DB_ENV, REMOTE_ENV, STATE_DIR, find_root
from release_pipeline.config.manifest import load_manifest
from release_pipeline.config.policy import GatePolicy, load_policy
from release_pipeline.config.release_yaml import AgentConfig, WorkspaceConfig, load_config
from release_pipeline.errors import NotFoundError, UserError
from release_pipeline.llm.providers import use_blob_store
from release_pipeline.models import Artifact, Suite, VersionInfo
from release_pipeline.sandbox.isolation import isolation, permit_unisolated

if TYPE_CHECKING:
    import git
    from sqlalchemy.engine import URL

    from release_pipeline.llm.gateway import LLMGateway
    from release_pipeline.plugins.manager import Plugins
    from release_pipeline.store import Store
    from release_pipeline.store.blobs import BlobStore
    from release_pipeline.trials.engine import Engine
    from release_pipeline.trials.verifiers import Verifiers


class Workspace:
    """Lazy access to a workspace's config, store, git repository, plugins and suites.

    `root` holds the git repository and the `.release/` state. `source` is where the config, suites,
    gate policy, plugins and verifiers are read: the working tree, or for the gate a commit's files
    (`at_commit`), which no candidate can change.
    """

    def __init__(self, root: Path, source: Path | None = None, db_url: str | None = None):
        self.root = root.resolve()
        self.source = (source or root).resolve()
        self._db_url = db_url  # a store chosen by the caller (a remote trial host uses its driver's)
        self.config: WorkspaceConfig = load_config(self.source)
        self._suites: dict[str, Suite] = {}
        self._judges: dict[str, Workspace] = {}
        use_blob_store(self.root / STATE_DIR / "blobs")  # the local provider serves this workspace's adapters
        permit_unisolated(self.config.isolation == "none")  # the owner's choice, from a file no candidate changes

    @property
    def unisolated(self) -> str:
        """A warning when untrusted code runs here without isolation (the owner chose it), else ""."""
        if self.config.isolation != "none" or isolation() != "none":
            return ""
        return "untrusted code runs UNISOLATED here (`isolation: none` in release.yaml, no bubblewrap)"

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
        return cls(find_root(start))

    @property
    def state_dir(self) -> Path:
        path = self.root / STATE_DIR
        path.mkdir(exist_ok=True)
        return path

    @property
    def db_url(self) -> str | URL:
        """The store's URL: `RELEASE_DB_URL`, the config's `database:`, or the SQLite file in `.release/`.

        The default is built as a URL object, so a path with `?` or `#` in it names that very file.
        """
        from sqlalchemy.engine import URL

        chosen = self._db_url or os.environ.get(DB_ENV) or self.config.database
        return chosen or URL.create("sqlite", database=str(self.state_dir / "release.db"))

    @property
    def remote(self) -> str:
        """The git remote head moves are pushed to: `RELEASE_GIT_REMOTE`, else the config's `remote:` (or none)."""
        return os.environ.get(REMOTE_ENV) or self.config.remote

    @cached_property
    def store(self) -> Store:
        from release_pipeline.store import Store

        return Store(self.db_url)

    @cached_property
    def llm(self) -> LLMGateway:
        """Every LLM call of this workspace goes through here: cached and recorded in its store."""
        from release_pipeline.llm.gateway import LLMGateway

        return LLMGateway(self.store)

    @cached_property
    def blobs(self) -> BlobStore:
        """Content-addressed folders: fine-tuned adapters and the checkpoints they were trained from."""
        from release_pipeline.store.blobs import BlobStore

        return BlobStore(self.state_dir / "blobs")

    @cached_property
    def repo(self) -> git.Repo:
        from release_pipeline.repo.gitops import open_repo

        return open_repo(self.root)

    @cached_property
    def plugins(self) -> Plugins:
        from release_pipeline.plugins.manager import load_plugins

        return load_plugins(self.source, self.config.plugins)

    @property
    def actor(self) -> str:
        if os.environ.get(ACTOR_ENV):
            return os.environ[ACTOR_ENV]
        try:
            reader = self.repo.config_reader()
            if reader.has_option("user", "name"):
                return str(reader.get_value("user", "name"))
        except UserError:
            pass
        return getpass.getuser()

    def agent(self, name: str | None = None) -> AgentConfig:
        """The named agent, or the only one when the workspace has exactly one."""
        agents = self.config.agents
        if name is None:
            if len(agents) == 1:
                return next(iter(agents.values()))
            raise UserError(f"this workspace has several agents ({', '.join(sorted(agents))}): pass --agent")
        if name not in agents:
            raise NotFoundError(f"unknown agent {name!r} (known: {', '.join(sorted(agents))})")
        return agents[name]

    def suite(self, agent: AgentConfig) -> Suite:
        from release_pipeline.suites import resolve_suite

        if agent.suite not in self._suites:
            self._suites[agent.suite] = resolve_suite(agent.suite, self.source, self.plugins.registry)
        return self._suites[agent.suite]

    def policy(self) -> GatePolicy:
        return load_policy(self.source / self.config.policy)

    def at_commit(self, sha: str) -> Workspace:
        """This workspace as commit `sha` has it: what judges a candidate, read from files no candidate changes.

        The commit's files are exported once into `.release/judges/<sha>/`; the store, the LLM gateway
        and the git repository are this workspace's own.
        """
        from release_pipeline.repo.gitops import export_commit

        if sha in self._judges:
            return self._judges[sha]
        dest = self.state_dir / "judges" / sha
        if not dest.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            export_commit(self.repo, sha, dest)
        try:
            judge = Workspace(self.root, source=dest)
        except UserError as exc:
            raise UserError(f"the canonical commit {sha[:10]} cannot judge: {exc}") from None
        judge.__dict__.update(store=self.store, llm=self.llm, repo=self.repo)
        self._judges[sha] = judge
        return judge

    def judge_files(self, agent: AgentConfig) -> set[str]:
        """Repository paths of everything this workspace loads to judge `agent`: config, gate policy, suite
        file, plugins, and every module its verifiers imported from the workspace.

        Call it on a workspace whose verifiers were built (its suite's verifiers are built here).
        """
        files = {CONFIG_FILE, self.config.policy, agent.suite}
        self.verifiers.check(self.suite(agent).tasks)
        prefix = str(self.source) + "/"
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and path.startswith(prefix):
                files.add(path[len(prefix) :])
        plugins = self.source / "plugins"
        if plugins.is_dir():
            files |= {str(p.relative_to(self.source)) for p in plugins.rglob("*") if p.is_file()}
        return {p for p in (self.repo_path(f) for f in files) if p is not None}

    def repo_path(self, path: str) -> str | None:
        """`path` (as a config spells it) as the repository spells it, or None when it is not inside it."""
        full = (self.source / path).resolve()
        try:
            return full.relative_to(self.source).as_posix()
        except ValueError:
            return None

    @cached_property
    def verifiers(self) -> Verifiers:
        """Every task's verifier, built once per setting, with modules looked up in `source`."""
        from release_pipeline.trials.verifiers import Verifiers

        return Verifiers(self.plugins.registry, self.source)

    @cached_property
    def engine(self) -> Engine:
        """The trial engine, with this workspace's store, plugins, verifiers and run settings."""
        from release_pipeline.trials.engine import Engine
        from release_pipeline.trials.settings import RunSettings

        return Engine(
            self.store, self.plugins.registry, self.verifiers, RunSettings.of(self.config, self.llm, self.db_url)
        )

    def head(self, agent: AgentConfig) -> VersionInfo:
        """The canonical version, or a one-line error telling how to create it."""
        head = self.store.head(agent.name)
        if head is None:
            raise UserError(f"agent {agent.name!r} has no canonical version yet: commit it and run `release init`")
        return head

    def resolve_version(self, agent: AgentConfig, ref: str | None) -> VersionInfo:
        """`v3`, `3`, or `canonical` (the default) to a recorded version."""
        if ref is None or ref in ("canonical", "head"):
            return self.head(agent)
        text = ref[1:] if ref[:1] in "vV" else ref
        if not text.isdigit():
            raise NotFoundError(f"{ref!r} is not a version (use v<N>, <N> or canonical)")
        return self.store.version(agent.name, int(text))

    def materialize(self, agent: AgentConfig, version: VersionInfo) -> Artifact:
        """The version's agent folder exported from git (once) into `.release/artifacts/`."""
        from release_pipeline.repo.gitops import export_folder

        dest = self.state_dir / "artifacts" / f"{agent.name}-{version.content_hash}"
        if not dest.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            export_folder(self.repo, version.git_sha, agent.path, dest, content=version.content_hash)
        manifest = load_manifest(dest)
        return Artifact(
            agent.name, version.number, dest, manifest, version.git_sha, version.content_hash, trusted=agent.trusted
        )
