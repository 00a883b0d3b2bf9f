"""The judge of one HumanEval problem, in the sandbox: the problem's own tests against a solution.

The tests run here; the solution runs in a process of its own (`solution_runner.py`), called through a
pipe. This process makes itself undumpable first, so the solution cannot read its memory or files or
write to its output, and it learns its nonce from its input only then. It prints `PASSED <nonce>` after
`check()` returns, and nothing else does: an `os._exit(0)` or a killed judge proves nothing.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys

import codec

PR_SET_DUMPABLE = 4

# The solution can write into this folder: nothing imported from now on may come from it.
sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]


def main():
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.exit("judge: cannot make itself undumpable")
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    with open("problem.json", encoding="utf-8") as fh:
        problem = json.load(fh)
    tests = {"__name__": "__judge__"}
    exec(compile(problem["prompt"], "prompt.py", "exec"), tests)  # the problem's own helpers
    exec(compile(problem["test"], "test.py", "exec"), tests)
    solution = subprocess.Popen(
        [sys.executable, "-E", "-s", "solution_runner.py", problem["entry_point"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = solution.stdout.readline()
    if not ready:
        sys.exit("the solution's process ended before it was ready")
    if json.loads(ready).get("error"):
        sys.exit(f"the solution does not load: {json.loads(ready)['error']}")

    def candidate(*args):
        solution.stdin.write(codec.dumps(list(args)))
        solution.stdin.flush()
        line = solution.stdout.readline()
        if not line:
            code = solution.wait()
            if -code in (signal.SIGXCPU, signal.SIGXFSZ):  # a limit: end the same way, so the sandbox names it
                os.kill(os.getpid(), -code)
            raise RuntimeError("the solution's process ended before answering")
        reply = json.loads(line)
        if "raised" in reply:
            raise RuntimeError(f"the solution raised {reply['raised']}")
        return codec.decode(reply["value"])

    tests[problem["entry_point"]] = candidate  # a test that names the function by name means the solution
    tests["check"](candidate)
    solution.kill()
    print(f"PASSED {nonce}", flush=True)


if __name__ == "__main__":
    main()
