"""Running untrusted code: the isolation backend, the sandboxed agent workers, and what an agent may return.

- `isolation.py`: `Sandbox` and `Limits`: bubblewrap's view, resource limits, one-shot runs and their violations.
- `cgroup.py`: the `pids` cgroup that caps a sandbox's processes.
- `pool.py`: `WorkerPool`, a version's sandboxed Python workers, and the `kept_pools` scope that keeps them.
- `worker.py`: one worker process, the harness's end: its calls, and how it ends.
- `pipes.py`: a worker's non-blocking pipes, on whichever event loop attaches them.
- `protocol.py`: the messages between harness and worker, and what a trial's final message means.
- `agent_worker.py`: the worker's own program, inside the sandbox.
- `contract.py`: what an agent may return, and what it receives for a trial.
"""
