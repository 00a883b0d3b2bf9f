"""A solution's own process: load `solution.py`, then answer calls of its entry point over a pipe.

Whatever the solution prints goes to stderr; the protocol keeps the stdin and stdout this process
started with.
"""

import json
import os
import sys

import codec


def main():
    entry = sys.argv[1]
    reader = os.fdopen(os.dup(0), "r", encoding="utf-8")
    writer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    namespace = {"__name__": "__solution__"}
    try:
        with open("solution.py", encoding="utf-8") as fh:
            exec(compile(fh.read(), "solution.py", "exec"), namespace)
        function = namespace[entry]
    except BaseException as exc:
        writer.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}) + "\n")
        writer.flush()
        return
    writer.write(json.dumps({"ready": True}) + "\n")
    writer.flush()
    for line in reader:
        try:
            reply = {"value": codec.encode(function(*codec.loads(line)))}
        except BaseException as exc:
            reply = {"raised": f"{type(exc).__name__}: {exc}"[:500]}
        writer.write(json.dumps(reply) + "\n")
        writer.flush()


if __name__ == "__main__":
    main()
