"""The serialization every record shares: `Record` (a stable JSON shape, `to_dict()` out, `from_dict()` back)."""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Union

R = TypeVar("R", bound="Record")


class Record:
    """A record with a stable JSON shape: `to_dict()` out, `from_dict()` back.

    A field's JSON key is its name, or `metadata={"key": ...}` where the name cannot be (`class`). Fields named
    in `FLATTEN` (records themselves) put their keys beside the record's own; properties in `COMPUTED` are written
    too and ignored when read back.
    """

    __slots__ = ()
    FLATTEN: ClassVar[tuple[str, ...]] = ()
    COMPUTED: ClassVar[dict[str, str]] = {}  # JSON key -> property

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = plain(getattr(self, f.name))
            if f.name in self.FLATTEN:
                out.update(value)
            else:
                out[f.metadata.get("key", f.name)] = value
        for key, name in self.COMPUTED.items():
            out[key] = plain(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record a `to_dict()` wrote (keys it does not know are ignored; missing ones take their defaults)."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in cls.FLATTEN:
                values[f.name] = _typed(hints[f.name], data)
                continue
            key = f.metadata.get("key", f.name)
            if key in data:
                values[f.name] = _typed(hints[f.name], data[key])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{cls.__name__}: {key!r} is missing")
        return cls(**values)


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: records as dicts, tuples as lists, datetimes as ISO strings."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _typed(hint: Any, value: Any) -> Any:
    """`value` read back as `hint` asks: nested records, tuples of them, datetimes."""
    if value is None:
        return None
    if typing.get_origin(hint) in (Union, types.UnionType):
        return next((_typed(a, value) for a in typing.get_args(hint) if a is not type(None)), value)
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(value)
    if hint is datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    return _typed_container(hint, value)


def _typed_container(hint: Any, value: Any) -> Any:
    """A tuple, list or dict read back with its items typed as `hint` asks; anything else as it is."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return tuple(_typed(args[0], v) for v in value)
    if origin is list:
        return [_typed(args[0], v) for v in value]
    if origin is dict and len(args) == 2:
        return {k: _typed(args[1], v) for k, v in value.items()}
    return value
