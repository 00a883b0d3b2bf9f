"""What plugins contribute: named components of each kind (adapters, suite loaders, verifiers, critics,
strategies, executors), looked up by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from release_pipeline.errors import NotFoundError

COMPONENT_KINDS = {
    "adapter": "release_register_agent_adapters",
    "suite_loader": "release_register_suite_loaders",
    "verifier": "release_register_verifiers",
    "critic": "release_register_critics",
    "strategy": "release_register_candidate_strategies",
    "executor": "release_register_executors",
}


@dataclass
class Component:
    name: str
    obj: Any
    plugin: str
    options: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Named components of every kind, as the loaded plugins registered them."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[str, Component]] = {kind: {} for kind in COMPONENT_KINDS}

    def get(self, kind: str, name: str) -> Any:
        try:
            return self.kinds[kind][name].obj
        except KeyError:
            known = ", ".join(sorted(self.kinds[kind])) or "none"
            raise NotFoundError(f"unknown {kind.replace('_', ' ')} {name!r} (known: {known})") from None

    def component(self, kind: str, name: str) -> Component:
        self.get(kind, name)
        return self.kinds[kind][name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.kinds[kind])
