"""The `pids` cgroup that caps how many processes sandboxed code may have at once, and the sweep of stale ones."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

PIDS_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


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
                _sweep_once(root)
                break

    def hit(self) -> bool:
        """Whether the code ran into the process ceiling at some point."""
        return self.hits() > 0

    def hits(self) -> int:
        """How many times the code ran into the process ceiling so far."""
        if self.path is None:
            return 0
        events = _read(self.path / "pids.events").split()
        return int(events[events.index("max") + 1]) if "max" in events else 0

    def processes(self) -> int:
        """How many processes are in the cgroup now (threads not counted); 0 where there is no cgroup."""
        if self.path is None:
            return 0
        return len(_read(self.path / "cgroup.procs").split())

    def join(self) -> None:
        """Called in the child before exec: move it (and so everything it starts) into the cgroup."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            pids = [int(p) for p in _read(self.path / "cgroup.procs").split()]
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


_swept: set[Path] = set()


def _sweep_once(root: Path) -> None:
    """Remove, once per process, the empty cgroups under `root` that processes no longer alive made: a command
    killed outright (SIGKILL, a lost machine) had no chance to remove its own. A cgroup is left a minute (another
    PID namespace's process may be about to move into it)."""
    if root in _swept:
        return
    _swept.add(root)
    for path in root.glob("release-sandbox-*-*"):
        pid = path.name.split("-")[2]
        try:
            old = time.time() - path.stat().st_mtime > 60
        except OSError:
            continue
        if old and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _rmdir(path)  # refused while a process is still in it


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
