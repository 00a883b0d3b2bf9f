"""Running untrusted code: generated programs, verifiers' test scripts, subprocess agents.

Every run gets a fresh temporary working folder, an environment scrubbed of
secrets (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`), and resource limits
(CPU time, address space, file size, process count) plus a wall-clock timeout.

What is enforced where:

* Linux with bubblewrap (`bwrap`, which `.ci/run` installs): the root file
  system is mounted read-only (`/tmp` included) and only the working folder,
  also its HOME and TMPDIR, is writable; there is no network (a new, empty network namespace);
  the code runs in its own PID namespace with every capability dropped, so
  nothing it starts outlives it.
* The process count is held by a `pids` cgroup of its own where the cgroup
  file system is writable (root on Linux), else by RLIMIT_NPROC (which the
  kernel does not apply to root).
* Elsewhere (no bwrap): the same limits, environment and working folder, and
  a process group killed at the end; writes outside the folder and network
  access are then not prevented, and `Sandbox.isolated` is False.

A limit the code runs into is a `violation` (the trial fails, the reason in
its feedback); a failure to start the sandbox is an `error` of the harness.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SECRET = re.compile(r".*_(KEY|TOKEN|SECRET|PASSWORD)$", re.I)
OUTPUT_LIMIT = 64 * 1024
PIDS_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 1024
    file_size_mb: int = 16
    processes: int = 64
    network: bool = False


@dataclass
class SandboxResult:
    """How the code ended. `status`: ok (exit 0), failed (non-zero exit), violation (hit a limit)."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    reason: str = ""
    wall_s: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class SandboxError(RuntimeError):
    """The sandbox itself could not run (a harness failure, not the code's)."""


def scrubbed_env(workdir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not SECRET.match(k)}
    keep.update(HOME=str(workdir), TMPDIR=str(workdir), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    return keep


@lru_cache(maxsize=1)
def _bwrap() -> str | None:
    """bubblewrap, if it is installed and can make namespaces here (unprivileged users may not)."""
    path = shutil.which("bwrap") if sys.platform.startswith("linux") else None
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"], capture_output=True, timeout=10
    )
    return path if probe.returncode == 0 else None


class PidsCgroup:
    """A cgroup that caps how many processes the sandboxed code may have at once (a fork bomb's ceiling)."""

    def __init__(self, limit: int):
        self.path: Path | None = None
        for root in PIDS_CGROUP_ROOTS:
            v1 = root.name == "pids" and (root / "tasks").exists()
            v2 = (root / "cgroup.subtree_control").exists() and "pids" in _read(root / "cgroup.subtree_control")
            if v1 or v2:
                path = root / f"release-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}"  # sandboxes run in threads
                try:
                    path.mkdir()
                    (path / "pids.max").write_text(str(limit))
                except OSError:
                    _rmdir(path)
                    continue
                self.path = path
                break

    def hit(self) -> bool:
        """Whether the code ran into the process ceiling at some point."""
        if self.path is None:
            return False
        events = (self.path / "pids.events").read_text().split()
        return "max" in events and int(events[events.index("max") + 1]) > 0

    def join(self) -> None:
        """Called in the child before exec: move it (and so everything it starts) into the cgroup."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def close(self) -> None:
        if self.path is not None:
            self.kill_all()
            _rmdir(self.path)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _limits_preexec(limits: Limits, cgroup: PidsCgroup):
    # RLIMIT_NPROC is per user, and the kernel exempts root from it: where we can make a cgroup, it holds
    # the ceiling instead.
    per_user = cgroup.path is None

    def apply() -> None:
        os.setsid()
        cgroup.join()
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
        if per_user:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


class Sandbox:
    """Runs commands under `Limits`; one instance can serve many runs (each gets its own folder)."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.bwrap = _bwrap()

    @property
    def isolated(self) -> bool:
        """Whether file-system, network and process isolation are enforced (not only limits)."""
        return self.bwrap is not None

    def _wrap(self, argv: list[str], workdir: Path, cwd: Path | None, limits: Limits) -> list[str]:
        if not self.bwrap:
            return argv
        # fmt: off
        wrap = [
            # everything read-only, /tmp included (the interpreter or the agent may live there), but its folder
            self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--bind", str(workdir), str(workdir), "--chdir", str(cwd or workdir),
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL",
        ]
        # fmt: on
        if not limits.network:
            wrap.append("--unshare-net")
        return [*wrap, "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        files: dict[str, str] | None = None,
        stdin: str = "",
        limits: Limits | None = None,
        cwd: Path | None = None,
    ) -> SandboxResult:
        """Run `argv` in a fresh folder holding `files`; never raises for what the code does.

        With `cwd`, the command starts in that folder instead (read-only under bwrap); the fresh folder is
        still its HOME and TMPDIR, the one place it can write.
        """
        limits = limits or self.limits
        workdir = Path(tempfile.mkdtemp(prefix="release-sandbox-"))
        try:
            for name, text in (files or {}).items():
                (workdir / name).parent.mkdir(parents=True, exist_ok=True)
                (workdir / name).write_text(text, encoding="utf-8")
            return self._run(self._wrap(argv, workdir, cwd, limits), cwd or workdir, workdir, stdin, limits)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def run_python(self, code: str, *, stdin: str = "", limits: Limits | None = None) -> SandboxResult:
        """Run a Python program (as `main.py` in the working folder) with this interpreter."""
        return self.run([sys.executable, "-I", "main.py"], files={"main.py": code}, stdin=stdin, limits=limits)

    def _run(self, argv: list[str], cwd: Path, workdir: Path, stdin: str, limits: Limits) -> SandboxResult:
        start = time.perf_counter()
        cgroup = PidsCgroup(limits.processes)
        try:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=scrubbed_env(workdir),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    preexec_fn=_limits_preexec(limits, cgroup),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise SandboxError(f"cannot start the sandbox: {exc}") from None
            timed_out = forked_too_much = False
            data: bytes | None = stdin.encode()
            deadline = start + limits.wall_s
            try:
                while True:  # in slices, so a fork bomb is stopped when it meets the ceiling, not at the deadline
                    try:
                        out, err = proc.communicate(data, timeout=0.25)
                        break
                    except subprocess.TimeoutExpired:
                        data = None
                        forked_too_much = cgroup.hit()
                        timed_out = time.perf_counter() > deadline
                        if forked_too_much or timed_out:
                            _kill_group(proc.pid)
                            cgroup.kill_all()
                            out, err = proc.communicate()
                            break
            finally:
                _kill_group(proc.pid)  # anything it left behind in its session
            forked_too_much = forked_too_much or cgroup.hit()
        finally:
            cgroup.close()  # and anything that left the session
        wall = time.perf_counter() - start
        stdout = out[:OUTPUT_LIMIT].decode("utf-8", "replace")
        stderr = err[-OUTPUT_LIMIT:].decode("utf-8", "replace")
        code = proc.returncode
        if self.bwrap and code is not None and code > 128:  # bwrap reports its child's death by signal N as 128+N
            code = -(code - 128)
        reason = f"process limit: more than {limits.processes} processes" if forked_too_much else ""
        reason = reason or _violation(code, stderr, timed_out, limits)
        if self.bwrap and proc.returncode == 1 and stderr.startswith("bwrap:"):
            raise SandboxError(f"the sandbox failed to start: {stderr.strip()[:200]}")
        status = "violation" if reason else ("ok" if code == 0 else "failed")
        return SandboxResult(status, code, stdout, stderr, reason, wall)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _violation(code: int | None, stderr: str, timed_out: bool, limits: Limits) -> str:
    if timed_out:
        return f"wall-clock limit: no end within {limits.wall_s:g}s"
    if code in (-signal.SIGXCPU, -signal.SIGKILL):  # the kernel's soft then hard RLIMIT_CPU signals
        return f"CPU time limit: more than {limits.cpu_s}s"
    if code == -signal.SIGXFSZ or "File too large" in stderr:
        return f"file size limit: a file over {limits.file_size_mb} MB"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return f"memory limit: more than {limits.memory_mb} MB"
    if "Resource temporarily unavailable" in stderr and ("fork" in stderr or "BlockingIOError" in stderr):
        return f"process limit: more than {limits.processes} processes"
    if code is not None and code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return ""
