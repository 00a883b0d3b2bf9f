"""Reading structured answers out of what a model wrote."""

from __future__ import annotations

import json
import re
from typing import Any

_OBJECT = re.compile(r"\{.*\}", re.S)


def json_object(text: str) -> tuple[Any, str]:
    """The JSON object in `text` (the outermost braces, prose around them ignored), or None and why not."""
    match = _OBJECT.search(text)
    if not match:
        return None, "no JSON object in the answer"
    try:
        return json.loads(match.group(0)), ""
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
