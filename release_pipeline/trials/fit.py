"""Making what an agent returns fit a record: JSON values only, bounded sizes, numbers in range.

Every agent result passes through `recordable` before it is verified and written, on both sides of the
sandbox (the worker that runs the agent, and the harness that receives its answer). Whatever the agent
returned, the record can then be written on SQLite and PostgreSQL alike, and a value that does not fit
costs its own trial a clear reason, never another trial its record:

* an answer holding something JSON cannot (a set, bytes, a generator, an object) makes its trial fail
  with reason `unrecordable_output`, its `repr` kept as the output;
* the same inside a trace becomes that value's `repr`, with a note;
* NUL characters and lone surrogates are dropped from strings; NaN and infinities become strings;
  integers beyond 64 bits become strings; `tokens` and `cost` out of range become 0; each with a note;
* outputs over `OUTPUT_LIMIT` bytes and traces over `TRACE_LIMIT` are truncated, the full size recorded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

OUTPUT_LIMIT = 256 * 1024  # bytes of JSON an output may take
TRACE_LIMIT = 1024 * 1024  # bytes of JSON a trace may take
TEXT_LIMIT = 16 * 1024  # characters of verifier feedback
MAX_DEPTH = 64
INT_LIMIT = 2**63 - 1  # SQLite's INTEGER, PostgreSQL's BIGINT
TOKENS_LIMIT = 2**31 - 1  # PostgreSQL's INTEGER
COST_LIMIT = 1e9


class Unrecordable(ValueError):
    """A value JSON cannot hold, with where it sits (`output[2].items`)."""

    def __init__(self, where: str, kind: str):
        super().__init__(f"{kind} at {where}")
        self.where, self.kind = where, kind


def clean_text(text: str) -> tuple[str, bool]:
    """`text` without NUL characters and lone surrogates, and whether anything was dropped."""
    cleaned = text.replace("\x00", "")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return cleaned, cleaned != text


def _kind(value: Any) -> str:
    kind = type(value).__name__
    return f"a {kind}" if kind[:1].lower() not in "aeiou" else f"an {kind}"


def to_json(value: Any, notes: list[str], *, where: str = "output", strict: bool = True, depth: int = 0) -> Any:
    """`value` as plain JSON data (tuples become lists, dict keys strings).

    Values JSON cannot hold raise `Unrecordable` when `strict`, else become their `repr` with a note.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float, str)):
        return _scalar(value, notes, where)
    if depth >= MAX_DEPTH:
        if strict:
            raise Unrecordable(where, f"nesting deeper than {MAX_DEPTH} levels")
        notes.append(f"{where}: nesting deeper than {MAX_DEPTH} levels, cut")
        return "<nested too deeply>"
    if isinstance(value, (list, tuple)):
        return [to_json(v, notes, where=f"{where}[{i}]", strict=strict, depth=depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _object(value, notes, where, strict, depth)
    if strict:
        raise Unrecordable(where, _kind(value))
    notes.append(f"{where}: {_kind(value)}, kept as its repr")
    return _short_repr(value)


def _scalar(value: int | float | str, notes: list[str], where: str) -> Any:
    """A number or a string as JSON holds it: big integers and NaN as text, strings without NUL or surrogates."""
    if isinstance(value, int):
        if abs(value) <= INT_LIMIT:
            return int(value)
        notes.append(f"{where}: an integer of {value.bit_length()} bits, kept as text")
        return str(value) if value.bit_length() < 4096 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes.append(f"{where}: {value!r} is not a JSON number, kept as text")
        return repr(value)
    cleaned, changed = clean_text(value)
    if changed:
        notes.append(f"{where}: NUL characters or lone surrogates dropped")
    return cleaned


def _object(value: dict, notes: list[str], where: str, strict: bool, depth: int) -> dict[str, Any]:
    out = {}
    for k, v in value.items():
        key = _key(k, where, strict)
        out[key] = to_json(v, notes, where=f"{where}.{key}", strict=strict, depth=depth + 1)
    return out


def _key(key: Any, where: str, strict: bool) -> str:
    """A dict key as a JSON object's key: what json.dumps itself would write for a string, number or None."""
    if isinstance(key, str):
        return clean_text(key)[0]
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    if strict:
        raise Unrecordable(f"{where} key {_short_repr(key)}", _kind(key))
    return _short_repr(key)


def _short_repr(value: Any, limit: int = 2000) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a hostile __repr__ is no reason to lose the trial
        text = f"<{type(value).__name__} whose repr raised {type(exc).__name__}>"
    text = clean_text(text)[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


@dataclass
class Recorded:
    """An agent result made fit for the record. `unrecordable` says why the answer itself could not be kept."""

    output: Any
    trace: list[Any]
    tokens: int
    cost: float
    notes: list[str] = field(default_factory=list)
    output_size: int | None = None
    unrecordable: str = ""


def recordable(output: Any, trace: Any, tokens: Any = 0, cost: Any = 0.0) -> Recorded:
    """Everything an agent returned, as values every store can hold, within the size limits."""
    notes: list[str] = []
    unrecordable = ""
    try:
        clean_output = to_json(output, notes)
    except Unrecordable as exc:
        unrecordable = (
            f"the answer holds {exc.kind} at {exc.where}, which a record cannot hold "
            "(answers must be JSON values: strings, numbers, booleans, null, lists, objects)"
        )
        clean_output = _short_repr(output)
    output_size = None
    size = json_size(clean_output)
    if size > OUTPUT_LIMIT:
        output_size = size
        text = clean_output if isinstance(clean_output, str) else json.dumps(clean_output, ensure_ascii=False)
        clean_output = _cut(text, OUTPUT_LIMIT)
        notes.append(f"output truncated: {size} bytes, the first {OUTPUT_LIMIT} kept")
    if not isinstance(trace, list):
        notes.append(f"trace: {_kind(trace)} instead of a list of steps, kept as one step")
        trace = [trace]
    clean_trace = to_json(trace, notes, where="trace", strict=False)
    size = json_size(clean_trace)
    if size > TRACE_LIMIT:
        kept, total = [], 2
        for step in clean_trace:
            total += json_size(step) + 2
            if total > TRACE_LIMIT:
                break
            kept.append(step)
        notes.append(f"trace truncated: {len(clean_trace)} steps, {size} bytes; the first {len(kept)} kept")
        clean_trace = kept
    return Recorded(
        clean_output,
        clean_trace,
        _bounded_int(tokens, "tokens", TOKENS_LIMIT, notes),
        _bounded_float(cost, "cost", COST_LIMIT, notes),
        notes,
        output_size,
        unrecordable,
    )


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding fits in `limit` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _bounded_int(value: Any, name: str, limit: int, notes: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit:
        if value not in (None, 0):
            notes.append(f"{name}: {_short_repr(value, 80)} is not a count between 0 and {limit}, recorded as 0")
        return 0
    return int(value)


def _bounded_float(value: Any, name: str, limit: float, notes: list[str]) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 <= value <= limit:
        if value not in (None, 0):
            notes.append(f"{name}: {_short_repr(value, 80)} is not an amount between 0 and {limit:g}, recorded as 0")
        return 0.0
    return float(value)


def bounded_text(text: Any, limit: int = TEXT_LIMIT) -> str:
    """Verifier feedback and reasons as text a record can hold, at most `limit` characters."""
    cleaned = clean_text(text if isinstance(text, str) else str(text))[0]
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
