"""Turning a number into the answer text."""


def render(value: float) -> str:
    if value == int(value):
        value = int(value)
    return f"{value:,}"
