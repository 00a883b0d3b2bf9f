"""The workspace config file (`release.yaml`) and the YAML loading every other file shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from release_pipeline.config.locations import CONFIG_FILE
from release_pipeline.errors import ConfigError


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or a one-line ConfigError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file, turning every failure into a one-line ConfigError."""
    import yaml  # here, not at module level: `release --help` never needs it

    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None


def check(data: Any, schema: dict[str, Any], source: str) -> None:
    """Validate `data` against a JSON schema; the first error becomes a one-line ConfigError."""
    import jsonschema

    try:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "top level"
        raise ConfigError(f"{source}: {where}: {err.message}")


def load_checked(path: Path, what: str, schema: dict[str, Any], shape: str = "a mapping at the top level") -> Any:
    """A YAML file that must hold a mapping valid against `schema`; anything else is a one-line ConfigError."""
    data = load_yaml(path, what)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {shape}")
    check(data, schema, str(path))
    return data


_POSITIVE_INT = {"type": "integer", "minimum": 1}
_STRATEGY = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
# one strategy, or a portfolio: strategies `release promote --iterations` moves through, in order
_STRATEGIES = {"oneOf": [_STRATEGY, {"type": "array", "minItems": 1, "items": _STRATEGY}]}
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["agents"],
    "additionalProperties": False,
    "properties": {
        "agents": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["path", "suite"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string"},
                    "suite": {"type": "string"},
                    "strategy": _STRATEGIES,
                    "critic": {"type": "string"},
                    "trusted": {"type": "boolean"},
                },
            },
        },
        "run": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "repeats": _POSITIVE_INT,
                "concurrency": _POSITIVE_INT,
                "timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "seed": {"type": "integer"},
                "executor": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                    ]
                },
            },
        },
        "critic": {"type": "string"},
        "models": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{role: {"type": "string", "pattern": "^[^/]+/.+"} for role in ("agent", "critic", "synthesizer")},
                "allowed": {"type": "array", "items": {"type": "string", "pattern": "^[^/]+/.+"}},
            },
        },
        "strategy": _STRATEGIES,
        "policy": {"type": "string"},
        "isolation": {"enum": ["bubblewrap", "none"]},
        "database": {"type": "string"},
        "remote": {"type": "string", "minLength": 1},
        "plugins": {"type": "array", "items": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class AgentConfig:
    name: str
    path: str
    suite: str
    strategy: dict[str, Any] | None = None  # overrides the workspace's strategy for this agent (a portfolio's first)
    portfolio: tuple[dict[str, Any], ...] = ()  # every strategy listed, in order (one: no portfolio)
    critic: str | None = None  # overrides the workspace's critic for this agent
    trusted: bool = False  # run its code in-process, unsandboxed: the workspace owner's call, never a candidate's


@dataclass(frozen=True)
class RunConfig:
    repeats: int = 3
    concurrency: int = 8
    timeout_s: float = 60.0
    seed: int = 0
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)  # e.g. the `ray` executor's `address`


def run_config(data: dict[str, Any]) -> RunConfig:
    """`run:` of release.yaml; `executor:` is a name, or a mapping of `name` and the executor's options."""
    executor = data.get("executor", "local")
    if isinstance(executor, dict):
        options = {k: v for k, v in executor.items() if k != "name"}
        return RunConfig(**{**data, "executor": executor["name"], "executor_options": options})
    return RunConfig(**data)


DEFAULT_MODEL = "local/smollm2"


@dataclass(frozen=True)
class WorkspaceConfig:
    agents: dict[str, AgentConfig]
    run: RunConfig = field(default_factory=RunConfig)
    critic: str = "heuristic"
    strategy: dict[str, Any] = field(default_factory=lambda: {"name": "patch-queue"})
    portfolio: tuple[dict[str, Any], ...] = ()
    policy: str = "gate-policy.yaml"
    isolation: str = "bubblewrap"  # `none`: the owner runs untrusted code unisolated where bubblewrap cannot work
    database: str = ""
    remote: str = ""  # a git remote every head move is pushed to, all or nothing (many runners, one line)
    plugins: tuple[str, ...] = ()
    models: dict[str, str] = field(
        default_factory=lambda: {role: DEFAULT_MODEL for role in ("agent", "critic", "synthesizer")}
    )
    allowed_models: tuple[str, ...] = ()  # more models agents may call (`models.allowed`); see llm/agent_calls.py


def _portfolio(value: Any) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...]]:
    """`strategy:` as the first strategy and the whole portfolio (a mapping is a portfolio of one)."""
    if value is None:
        return None, ()
    listed = tuple(dict(s) for s in (value if isinstance(value, list) else [value]))
    return listed[0], listed


def load_config(root: Path) -> WorkspaceConfig:
    """Read and validate `release.yaml` in a workspace root."""
    path = root / CONFIG_FILE
    data = load_checked(path, "workspace config", CONFIG_SCHEMA)
    agents = {}
    for name, spec in data["agents"].items():
        first, portfolio = _portfolio(spec.get("strategy"))
        agents[name] = AgentConfig(name=name, **{**spec, "strategy": first, "portfolio": portfolio})
    strategy, portfolio = _portfolio(data.get("strategy", {"name": "patch-queue"}))
    return WorkspaceConfig(
        agents=agents,
        run=run_config(data.get("run", {})),
        critic=data.get("critic", "heuristic"),
        strategy=strategy or {"name": "patch-queue"},
        portfolio=portfolio,
        policy=data.get("policy", "gate-policy.yaml"),
        isolation=data.get("isolation", "bubblewrap"),
        database=data.get("database", ""),
        remote=data.get("remote", ""),
        plugins=tuple(data.get("plugins", ())),
        models={
            **WorkspaceConfig(agents={}).models,
            **{role: name for role, name in data.get("models", {}).items() if role != "allowed"},
        },
        allowed_models=tuple(data.get("models", {}).get("allowed", ())),
    )
