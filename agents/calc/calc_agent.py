"""A small deterministic agent: parse the question, compute, format the answer, and trace each step."""

from . import formatting, ops


def solve(question: str, ctx) -> dict:
    trace = [{"type": "observe", "question": question}]
    op, a, b = ops.parse(question)
    trace.append({"type": "plan", "operation": op, "operands": [a, b]})
    value = ops.apply(op, a, b)
    trace.append({"type": "compute", "value": value})
    answer = formatting.render(value)
    trace.append({"type": "answer", "text": answer})
    return {"output": answer, "trace": trace}
