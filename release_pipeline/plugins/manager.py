"""Loading plugins and collecting what they register.

Sources, in order: the built-in plugins, the `release_pipeline` entry-point
group, and `*.py` files in a workspace's `plugins/` folder.
`RELEASE_PIPELINE_BLOCK=a,b` blocks plugins by name; `RELEASE_PIPELINE_TRACE=1`
traces every hook call to stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from release_pipeline.errors import ConfigError, NotFoundError
from release_pipeline.plugins import hookspecs
from release_pipeline.plugins.registry import COMPONENT_KINDS, Component, Registry

if TYPE_CHECKING:
    from release_pipeline.models import PluginInfo

BLOCK_ENV = "RELEASE_PIPELINE_BLOCK"
TRACE_ENV = "RELEASE_PIPELINE_TRACE"
ENTRY_POINT_GROUP = "release_pipeline"

BUILTIN_PLUGINS = (
    "release_pipeline.builtin.adapters",
    "release_pipeline.builtin.prompt_agent",
    "release_pipeline.builtin.suites",
    "release_pipeline.builtin.verifiers",
    "release_pipeline.builtin.critics",
    "release_pipeline.builtin.llm_critic",
    "release_pipeline.builtin.diagnosis",
    "release_pipeline.builtin.strategies",
    "release_pipeline.builtin.fewshot",
    "release_pipeline.builtin.llm_edit",
    "release_pipeline.finetune.strategies",
    "release_pipeline.builtin.executors",
    "release_pipeline.builtin.ray_executor",
    "release_pipeline.builtin.gate_checks",
    "release_pipeline.builtin.stages",
    "release_pipeline.benchmarks.humaneval",
    "release_pipeline.benchmarks.bfcl",
)


def _plugin_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    return str(pm.get_name(plugin) or getattr(plugin, "__name__", repr(plugin)))


def _collect(pm: pluggy.PluginManager) -> Registry:
    registry = Registry()
    for kind, hook_name in COMPONENT_KINDS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin = _plugin_name(pm, impl.plugin)

            def register(name: str, obj: Any, _kind=kind, _plugin=plugin, **options: Any) -> None:
                table = registry.kinds[_kind]
                if name in table:
                    raise ConfigError(f"plugins {table[name].plugin!r} and {_plugin!r} both register {_kind} {name!r}")
                table[name] = Component(name, obj, _plugin, options)

            impl.function(register=register)
    return registry


def _load_workspace_plugins(pm: pluggy.PluginManager, folder: Path, blocked: set[str], seen: set[str]) -> None:
    for path in sorted(folder.glob("*.py")):
        name = f"workspace.{path.stem}"
        seen.add(name)
        if name in blocked:
            continue
        spec = importlib.util.spec_from_file_location(f"release_pipeline_workspace_plugins.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"workspace plugin {path} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"workspace plugin {path} failed to load: {type(exc).__name__}: {exc}") from None
        pm.register(module, name=name)


def _load_entry_points(pm: pluggy.PluginManager, blocked: set[str], seen: set[str]) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        seen.add(ep.name)
        if ep.name in blocked or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} failed to load: {type(exc).__name__}: {exc}") from None
        pm.register(plugin, name=ep.name)


def blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


@dataclass
class Plugins:
    """The loaded plugin manager, its hooks and the registry of components."""

    pm: pluggy.PluginManager
    registry: Registry

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def describe(self) -> list[PluginInfo]:
        """What `release plugins` shows: each plugin, where it came from, its hooks and components."""
        from release_pipeline.models import PluginInfo

        rows = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda p: p[0]):
            if plugin is None:
                continue
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            components = [
                f"{kind}:{c.name}"
                for kind, table in self.registry.kinds.items()
                for c in table.values()
                if c.plugin == name
            ]
            source = (
                "builtin"
                if name.startswith("release_pipeline.builtin")
                else ("workspace" if name.startswith("workspace.") else "entry-point")
            )
            rows.append(PluginInfo(name, source, tuple(hooks), tuple(sorted(components))))
        return rows


def load_plugins(workspace: Path | None = None, required: tuple[str, ...] = (), builtin: bool = True) -> Plugins:
    """Load every plugin source, apply the block list, and collect the registry.

    `builtin=False` leaves out the built-in plugins (the CLI looks for plugin commands so, and none of them adds one:
    importing them is most of the start-up time of `release --help` in a workspace)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names()
    seen = set(BUILTIN_PLUGINS)
    for module_name in BUILTIN_PLUGINS if builtin else ():
        if module_name not in blocked:
            pm.register(importlib.import_module(module_name), name=module_name)
    _load_entry_points(pm, blocked, seen)
    if workspace is not None and (workspace / "plugins").is_dir():
        _load_workspace_plugins(pm, workspace / "plugins", blocked, seen)
    for name in blocked:
        pm.set_blocked(name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    unknown = sorted(blocked - seen)
    if unknown:
        raise NotFoundError(f"{BLOCK_ENV} names unknown plugin {unknown[0]!r}")
    for name in required:
        if pm.get_plugin(name) is None:
            raise NotFoundError(f"unknown plugin {name!r} required by the workspace config (is it installed?)")
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return Plugins(pm, _collect(pm))
