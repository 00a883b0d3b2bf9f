"""Reading what a patch file declares about itself."""

from __future__ import annotations

PATCH_SUFFIXES = (".patch", ".diff")


def patch_intent(text: str) -> str:
    """The intent a patch declares: its `Subject:` line, or its first line of free text before the diff."""
    for line in text.splitlines():
        if line.startswith(("diff --git", "--- ", "Index: ")):
            break
        stripped = line.strip().lstrip("#").strip()
        if stripped.startswith("Subject:"):
            return stripped.removeprefix("Subject:").replace("[PATCH]", "").strip()
        if stripped and not stripped.startswith(("From ", "Date:", "From:")):
            return stripped
    return ""
