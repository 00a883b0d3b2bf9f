"""Loading `module:function` targets, preferring files inside a given folder.

A sandboxed agent's worker imports this before it is ready, so it stays light: no pathlib, typing or OpenSSL.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from release_pipeline.errors import ConfigError

try:
    from _sha1 import sha1  # the interpreter's own; `hashlib` loads OpenSSL, 10 ms of every worker's start
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import sha1

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    StrPath = str | os.PathLike[str]


def _module_file(folder: StrPath, module: str) -> str | None:
    base = os.path.join(folder, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def folder_package(folder: StrPath) -> str:
    """Register `folder` as a package with a name unique to it, and return that name.

    Two versions of one agent (canonical and candidate) live in different
    folders but share module names; giving each folder its own package keeps
    them apart in `sys.modules`. Modules in the folder import each other
    relatively (`from . import helpers`).
    """
    resolved = os.path.realpath(folder)
    name = "_release_pkg_" + sha1(resolved.encode()).hexdigest()[:16]
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(resolved)]
        package.__file__ = None
        package.__package__ = name
        sys.modules[name] = package
    return name


def load_module(module: str, folder: StrPath) -> ModuleType:
    """Import `module` from `folder` (as part of the folder's own package) if it is there, else from sys.path."""
    if _module_file(folder, module) is None:
        return importlib.import_module(module)
    return importlib.import_module(f"{folder_package(folder)}.{module}")


def load_callable(target: str, folder: StrPath, *, what: str) -> Any:
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
