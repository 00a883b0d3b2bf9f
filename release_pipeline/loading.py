"""Loading `module:function` targets, preferring files inside a given folder."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from release_pipeline.errors import ConfigError


def _module_file(folder: Path, module: str) -> Path | None:
    base = folder.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def folder_package(folder: Path) -> str:
    """Register `folder` as a package with a name unique to it, and return that name.

    Two versions of one agent (canonical and candidate) live in different
    folders but share module names; giving each folder its own package keeps
    them apart in `sys.modules`. Modules in the folder import each other
    relatively (`from . import helpers`).
    """
    resolved = folder.resolve()
    name = "_release_pkg_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:16]
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(resolved)]
        package.__file__ = None
        package.__package__ = name
        sys.modules[name] = package
    return name


def load_module(module: str, folder: Path) -> ModuleType:
    """Import `module` from `folder` (as part of the folder's own package) if it is there, else from sys.path."""
    if _module_file(folder, module) is None:
        return importlib.import_module(module)
    return importlib.import_module(f"{folder_package(folder)}.{module}")


def load_callable(target: str, folder: Path, *, what: str) -> Any:
    """Resolve `module:function` (looked up in `folder` first) to a callable, or raise a one-line ConfigError."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what} {target!r} must look like module:function")
    try:
        mod = load_module(module, folder)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{what} {target!r}: no module named {exc.name!r}") from None
    except Exception as exc:
        raise ConfigError(f"{what} {target!r} failed to import: {type(exc).__name__}: {exc}") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(f"{what} {target!r}: {module!r} has no callable {attr!r}")
    return fn
