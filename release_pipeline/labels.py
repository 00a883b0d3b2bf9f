"""Clustering symptom labels, so that near-duplicates ("wrong format", "format_error") count as one pattern."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

# Words that say "something is off" without saying what: they do not tell two symptoms apart.
GENERIC = {
    "error",
    "errors",
    "wrong",
    "bad",
    "incorrect",
    "invalid",
    "issue",
    "problem",
    "failure",
    "failed",
    "fail",
    "the",
    "a",
    "an",
    "of",
    "in",
    "is",
    "not",
    "mismatch",
    "output",
    "answer",
    "response",
}


def normalize(label: str) -> str:
    """lower_snake_case, punctuation dropped."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "unlabelled"


def signature(label: str) -> frozenset[str]:
    """The words that carry the label's meaning, singular, generic words dropped."""
    words = {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in normalize(label).split("_")}
    return frozenset(words - GENERIC) or frozenset({normalize(label)})


def cluster_labels(labels: Iterable[str]) -> dict[str, str]:
    """Map every label to its cluster's name: the cluster's most common normalized spelling (then shortest)."""
    labels = list(labels)
    groups: dict[frozenset[str], Counter] = defaultdict(Counter)
    for label in labels:
        groups[signature(label)][normalize(label)] += 1
    names = {sig: min(c, key=lambda n: (-c[n], len(n), n)) for sig, c in groups.items()}
    return {label: names[signature(label)] for label in labels}
