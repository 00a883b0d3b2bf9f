"""Running untrusted code: agents, generated programs, benchmark tests.

Every sandboxed process gets an environment built from an allow-list (never the harness's secrets),
resource limits (CPU time, address space, file size, process count) and a wall-clock timeout.

What is enforced where:

* Linux with bubblewrap (`bwrap`, which `.ci/run` installs): the process sees a file system of its own.
  Only the system's programs and libraries (`/usr`, a few files of `/etc`, never `/etc/shadow`), the
  Python installation, the release_pipeline package and the folder it is asked to run in are visible,
  all read-only; no host home, no `.release/`, no suite, no host unix socket. Its one writable place is a
  private `/tmp` (HOME and TMPDIR) of at most `disk_mb`. There is no network (an empty network
  namespace) unless `network` is set; it runs in its own PID namespace with every capability dropped,
  so nothing it starts outlives it.
* The process count is held by a `pids` cgroup of its own (`sandbox/cgroup.py`) where the cgroup file system is
  writable (root on Linux), else by RLIMIT_NPROC (which the kernel does not apply to root).
* Where bubblewrap cannot isolate (not installed, or the kernel refuses it user namespaces), no sandbox is
  made: `Sandbox()` raises `IsolationMissing`, a one-line error that names what to install. Only the workspace
  owner can choose to run untrusted code anyway, with `isolation: none` in `release.yaml` (which no candidate may
  change); then the same limits and environment apply, and a process group is killed at the end, but the file
  system, the network and a disk quota are not enforced, and `Sandbox.isolated` is False.

A limit the code runs into is a `violation` (the trial fails, the reason in its feedback); a failure to
start the sandbox is an `error` of the harness.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import release_pipeline
from release_pipeline.errors import UserError
from release_pipeline.sandbox.cgroup import PidsCgroup

OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes of stdout kept from a one-shot run
STDERR_LIMIT = 64 * 1024
WORKER_CPU_SHARES = 2  # a long-lived worker's CPU ceiling, in calls' worth (`Limits.cpu_s`): per worker, not per call
HOME = "/tmp/work"  # the sandboxed code's HOME, TMPDIR and working folder under bubblewrap

# The environment a sandboxed process gets: these names from ours, nothing else (plus the manifest's `env`).
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH")
ENV_ALLOWED_PREFIXES = ("LC_",)
ETC_VISIBLE = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group", "nsswitch.conf",
    "alternatives", "mime.types", "hosts", "resolv.conf", "gai.conf", "services", "protocols", "ssl",
    "ca-certificates", "ca-certificates.conf", "pki", "os-release", "debian_version",
)  # fmt: skip
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 1024
    file_size_mb: int = 16
    processes: int = 64
    disk_mb: int = 256
    network: bool = False
    env: tuple[str, ...] = ()  # more variables to pass through, by name (the workspace owner's choice)


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


def allowed_env(home: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of sandboxed code: an allow-list of ours, never a secret unless named in `extra`."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k.startswith(ENV_ALLOWED_PREFIXES) or k in extra}
    env.update(HOME=home, TMPDIR=home, PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")
    return env


class IsolationMissing(UserError):
    """Untrusted code would run, and nothing here can isolate it (the workspace did not opt out)."""


@lru_cache(maxsize=1)
def _probe() -> tuple[str | None, str]:
    """bubblewrap's path if it is installed and can make namespaces here, else None and why not."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap needs Linux, and this is {sys.platform}"
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap is not installed (Debian and Ubuntu: `sudo apt-get install bubblewrap`)"
    try:
        probe = subprocess.run(
            [path, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bubblewrap ({path}) did not run: {exc}"
    if probe.returncode != 0:
        said = " ".join(probe.stderr.decode("utf-8", "replace").split())[:200]
        return None, (
            f"bubblewrap ({path}) cannot create namespaces here ({said or f'exit status {probe.returncode}'}); on "
            "Ubuntu 24.04 allow it user namespaces: `sudo apparmor_parser -r "
            "/usr/share/apparmor/extra-profiles/bwrap-userns-restrict` (package apparmor-profiles), or `sudo sysctl "
            "-w kernel.apparmor_restrict_unprivileged_userns=0`"
        )
    return path, ""


def _bwrap() -> str | None:
    return _probe()[0]


_unisolated = {"permitted": False}  # the workspace owner's choice (`isolation: none`), set as a workspace loads


def permit_unisolated(permitted: bool) -> None:
    """Whether untrusted code may run without isolation where none is available (release.yaml `isolation: none`)."""
    _unisolated["permitted"] = permitted


def isolation() -> str:
    """How untrusted code is isolated here: `bubblewrap`, or `none` when the workspace chose to run it so."""
    return "bubblewrap" if _bwrap() else "none"


def require_isolation() -> None:
    """Refuse, in one line naming what to install, to run untrusted code where nothing isolates it, unless the
    workspace owner chose to (`isolation: none` in release.yaml)."""
    path, why = _probe()
    if path is None and not _unisolated["permitted"]:
        raise IsolationMissing(
            f"untrusted code runs only isolated, and {why}; or, to run it unisolated on purpose, set "
            "`isolation: none` in release.yaml"
        )


def interpreter() -> str:
    """This Python, as a path the sandbox can start: `..` taken out (its view has none of the folders a `..` may
    walk through), symbolic links kept (a virtual environment's python finds its packages by its own path)."""
    return os.path.normpath(os.path.abspath(sys.executable))


@lru_cache(maxsize=1)
def python_paths() -> tuple[str, ...]:
    """What this interpreter needs to run, outside the system folders: its prefixes and our own package."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, str(Path(release_pipeline.__file__).parent)}
    paths |= {p for p in sys.path if p and Path(p).is_dir() and "site-packages" in p}
    paths = {os.path.normpath(os.path.abspath(p)) for p in paths}  # `..` cannot be walked in the sandbox's view
    real = {str(Path(p).resolve()) for p in paths} | paths
    wanted = sorted(p for p in real if not p.startswith(("/usr/", "/proc", "/dev")) and p != "/")
    return tuple(p for p in wanted if not any(p.startswith(q + "/") for q in wanted))  # a folder covers its insides


def _limits_preexec(limits: Limits, cgroup: PidsCgroup, cpu_s: int) -> Callable[[], None]:
    # RLIMIT_NPROC is per user, and the kernel exempts root from it: where we can make a cgroup, it holds
    # the ceiling instead.
    per_user = cgroup.path is None

    def apply() -> None:
        os.setsid()
        cgroup.join()
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # SIGXCPU, then SIGKILL a second later
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
        if per_user:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


@dataclass
class Prepared:
    """A command ready to start in the sandbox, and what must be cleaned up after it ends."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None]
    cgroup: PidsCgroup
    scratch: Path  # the host folder behind its inputs (and, without bubblewrap, its HOME)
    home: str  # its HOME as the code sees it

    def cleanup(self) -> None:
        self.cgroup.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


class Sandbox:
    """Runs commands under `Limits`; one instance can serve many runs (each gets its own folder)."""

    def __init__(self, limits: Limits | None = None):
        require_isolation()
        self.limits = limits or Limits()
        self.bwrap = _bwrap()

    @property
    def isolated(self) -> bool:
        """Whether file-system, network and process isolation are enforced (not only limits)."""
        return self.bwrap is not None

    def prepare(
        self,
        argv: list[str],
        *,
        files: dict[str, str] | None = None,
        limits: Limits | None = None,
        cwd: Path | None = None,
        long_lived: bool = False,
    ) -> Prepared:
        """Everything needed to start `argv` sandboxed: the wrapped command, its environment and limits.

        `files` are written into its HOME (read-only under bubblewrap); `cwd` is a folder it starts in,
        visible read-only. A `long_lived` process (a worker serving many calls, several at once) has a CPU
        ceiling of its own, `WORKER_CPU_SHARES` times a call's: the harness replaces it once it has used one.
        """
        limits = limits or self.limits
        scratch = Path(tempfile.mkdtemp(prefix="release-sandbox-"))
        for name, text in (files or {}).items():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).write_text(text, encoding="utf-8")
        home = HOME if self.bwrap else str(scratch)
        start_in = str(cwd) if cwd else home
        if self.bwrap:
            argv = [*self._view(scratch, files or {}, cwd, limits), "--chdir", start_in, "--", *argv]
        cgroup = PidsCgroup(limits.processes)
        return Prepared(
            argv,
            allowed_env(home, limits.env),
            str(cwd or scratch),
            _limits_preexec(limits, cgroup, WORKER_CPU_SHARES * limits.cpu_s if long_lived else limits.cpu_s),
            cgroup,
            scratch,
            home,
        )

    def _view(self, scratch: Path, files: dict[str, str], cwd: Path | None, limits: Limits) -> list[str]:
        """bubblewrap's arguments: the file system the code may see, and the namespaces it runs in."""
        assert self.bwrap is not None
        # fmt: off
        view = [
            self.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
            "--proc", "/proc", "--dev", "/dev",
        ]
        # fmt: on
        if not limits.network:
            view.append("--unshare-net")
        for folder in SYSTEM_DIRS:
            if os.path.islink(folder):
                view += ["--symlink", os.readlink(folder), folder]
            elif os.path.isdir(folder):
                view += ["--ro-bind", folder, folder]
        for name in ETC_VISIBLE:
            view += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        # the one writable place, with a quota; then what it needs to read, mounted over it where nested
        view += ["--perms", "1777", "--size", str(limits.disk_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        view += ["--dir", HOME]
        for path in python_paths():
            view += ["--ro-bind", path, path]
        for name in files:
            view += ["--ro-bind", str(scratch / name), f"{HOME}/{name}"]
        if cwd is not None:
            view += ["--ro-bind", str(cwd), str(cwd)]
        return [*view, "--remount-ro", "/"]  # the root bubblewrap built is read-only too; /tmp stays writable

    def run(
        self,
        argv: list[str],
        *,
        files: dict[str, str] | None = None,
        stdin: str = "",
        limits: Limits | None = None,
        cwd: Path | None = None,
        stdout_limit: int = OUTPUT_LIMIT,
    ) -> SandboxResult:
        """Run `argv` to its end in a fresh sandbox holding `files`; never raises for what the code does.

        With `cwd`, the command starts in that folder instead (read-only); its HOME is still the one
        place it can write. Of its stdout, the first `stdout_limit` bytes are kept.
        """
        limits = limits or self.limits
        prepared = self.prepare(argv, files=files, limits=limits, cwd=cwd)
        try:
            return self._run(prepared, stdin, limits, stdout_limit)
        finally:
            prepared.cleanup()

    def run_python(self, code: str, *, stdin: str = "", limits: Limits | None = None) -> SandboxResult:
        """Run a Python program (as `main.py` in its HOME) with this interpreter."""
        return self.run([interpreter(), "-I", "main.py"], files={"main.py": code}, stdin=stdin, limits=limits)

    def _run(self, prepared: Prepared, stdin: str, limits: Limits, stdout_limit: int) -> SandboxResult:
        start = time.perf_counter()
        cgroup = prepared.cgroup
        # Output goes to files, not pipes: RLIMIT_FSIZE then bounds how much the code can make us keep.
        with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            inp.write(stdin.encode("utf-8", "replace"))
            inp.seek(0)
            try:
                proc = subprocess.Popen(
                    prepared.argv,
                    cwd=prepared.cwd,
                    env=prepared.env,
                    stdin=inp,
                    stdout=out,
                    stderr=err,
                    preexec_fn=prepared.preexec,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise SandboxError(f"cannot start the sandbox: {exc}") from None
            try:
                timed_out, forked_too_much = _watch(proc, cgroup, start + limits.wall_s)
            finally:
                kill_group(proc.pid)  # anything it left behind in its session
            forked_too_much = forked_too_much or cgroup.hit()
            stdout = _head(out, stdout_limit)
            stderr = _tail(err, STDERR_LIMIT)
        wall = time.perf_counter() - start
        code = proc.returncode
        if self.bwrap and code is not None and code > 128:  # bwrap reports its child's death by signal N as 128+N
            code = -(code - 128)
        if self.bwrap and proc.returncode == 1 and stderr.startswith("bwrap:"):
            raise SandboxError(f"the sandbox failed to start: {stderr.strip()[:200]}")
        reason = f"process limit: more than {limits.processes} processes" if forked_too_much else ""
        reason = reason or violation(code, stderr, timed_out, limits)
        status = "violation" if reason else ("ok" if code == 0 else "failed")
        return SandboxResult(status, code, stdout, stderr, reason, wall)


def _watch(proc: subprocess.Popen, cgroup: PidsCgroup, deadline: float) -> tuple[bool, bool]:
    """Wait for a one-shot process to end, in slices, so a fork bomb is stopped when it meets the ceiling, not at the
    deadline; one past its deadline or its ceiling is killed with all it started. Whether it (timed out, forked too
    much)."""
    while True:
        try:
            proc.wait(timeout=0.25)
            return False, False
        except subprocess.TimeoutExpired:
            forked_too_much = cgroup.hit()
            timed_out = time.perf_counter() > deadline
            if forked_too_much or timed_out:
                kill_group(proc.pid)
                cgroup.kill_all()
                proc.wait()
                return timed_out, forked_too_much


def _head(fh, limit: int) -> str:
    fh.seek(0)
    return fh.read(limit).decode("utf-8", "replace")


def _tail(fh, limit: int) -> str:
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - limit))
    return fh.read().decode("utf-8", "replace")


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def violation(code: int | None, stderr: str, timed_out: bool, limits: Limits) -> str:
    """Which limit, if any, ended a sandboxed process, from its exit status and what it wrote on stderr."""
    if timed_out:
        return f"wall-clock limit: no end within {limits.wall_s:g}s"
    if code in (-signal.SIGXCPU, -signal.SIGKILL):  # the kernel's soft then hard RLIMIT_CPU signals
        return f"CPU time limit: more than {limits.cpu_s}s"
    if code == -signal.SIGXFSZ:
        return f"file size limit: a file over {limits.file_size_mb} MB"
    found = limit_message(stderr, limits)
    if not found and code is not None and code < 0:
        found = f"killed by signal {signal.Signals(-code).name}"
    return found


def limit_message(text: str, limits: Limits) -> str:
    """The limit an error message shows the code ran into, or ""."""
    if "File too large" in text:
        return f"file size limit: a file over {limits.file_size_mb} MB"
    if "No space left on device" in text:
        return f"disk quota: more than {limits.disk_mb} MB written"
    if "MemoryError" in text or "Cannot allocate memory" in text:
        return f"memory limit: more than {limits.memory_mb} MB"
    if "Resource temporarily unavailable" in text and ("fork" in text or "BlockingIOError" in text):
        return f"process limit: more than {limits.processes} processes"
    return ""
