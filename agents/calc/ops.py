"""Recognising the question and doing the arithmetic."""

import re

NUMBER = r"(-?\d+(?:\.\d+)?)"

PATTERNS = [
    ("add", re.compile(rf"add {NUMBER} and {NUMBER}", re.I)),
    ("sub", re.compile(rf"subtract {NUMBER} from {NUMBER}", re.I)),
    ("mul", re.compile(rf"multiply {NUMBER} by {NUMBER}", re.I)),
    ("div", re.compile(rf"divide {NUMBER} by {NUMBER}", re.I)),
]


def parse(question: str) -> tuple[str, float, float]:
    for op, pattern in PATTERNS:
        match = pattern.search(question)
        if match:
            return op, float(match.group(1)), float(match.group(2))
    raise ValueError(f"unsupported question: {question!r}")


def apply(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "sub":
        return b - a  # "subtract a from b"
    if op == "mul":
        return a * b
    if op == "div":
        return a // b
    raise ValueError(f"unknown operation {op!r}")
