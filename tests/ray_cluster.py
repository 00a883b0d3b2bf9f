"""A throwaway Ray cluster on this machine: a head node and worker nodes, each `ray start --block` with every
process it starts (Ray's workers start sessions of their own, so a node is its process tree, not its group): a
test can SIGKILL one node, raylet, workers and all; every process is stopped at the end.

The cluster lives in a network namespace of its own with loopback only: Ray's services listen on every interface
(and pick the machine's address even when told 127.0.0.1), and with no authentication here anyone who reached them
could run code. Drivers join that namespace with `cluster.command(...)`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from pg_server import _free_port

RAY = str(Path(sys.executable).with_name("ray"))
QUICK_DEATH = {  # a lost node is noticed in about 3 s, not Ray's default 30 s
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


LOOPBACK_UP = """
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0)))[1]  # SIOCGIFFLAGS
fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP
"""


class LoopbackNetwork:
    """A network namespace with nothing but loopback, held open by a sleeping process; `enter` is the command
    prefix that runs a program inside it (as root, or in a user namespace of our own otherwise)."""

    def __init__(self) -> None:
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        self.holder = subprocess.Popen(["unshare", *user, "--net", "sleep", "infinity"], start_new_session=True)
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{self.holder.pid}/ns/net") == ours:  # until unshare has made it
            if self.holder.poll() is not None or time.monotonic() > deadline:
                pytest.fail("cannot make a network namespace for the test Ray cluster (unshare --net)")
            time.sleep(0.01)
        self.namespace = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        joins = ["--user", "--preserve-credentials"] if user else []
        self.enter = ["nsenter", f"--target={self.holder.pid}", "--net", *joins, "--"]
        subprocess.run([*self.enter, sys.executable, "-c", LOOPBACK_UP], check=True)

    def stop(self) -> None:
        self.holder.kill()
        self.holder.wait(timeout=30)


class RayCluster:
    def __init__(self, isolate: bool = True) -> None:
        """A cluster in a loopback network of its own, or, unless `isolate`, in this process's network (for a
        process that is in such a network already)."""
        # Ray's Unix sockets live under the temp dir, whose path must stay short
        self.temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **QUICK_DEATH}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: list[subprocess.Popen] = []
        self.network = LoopbackNetwork() if isolate else None

    def command(self, args: list[str]) -> list[str]:
        """`args` run inside the cluster's network (a driver must be, to reach it)."""
        return [*self.network.enter, *args] if self.network else args

    def _start(self, *args: str) -> subprocess.Popen:
        log = (self.temp / f"node{len(self.nodes)}.log").open("w")
        node = subprocess.Popen(
            self.command([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args]),
            env=self.env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.nodes.append(node)
        return node

    def start_head(self, cpus: int = 1) -> subprocess.Popen:
        return self._start(
            "--head",
            f"--port={self.port}",
            f"--num-cpus={cpus}",
            "--include-dashboard=false",
            f"--temp-dir={self.temp}",
        )

    def add_node(self, cpus: int = 1) -> subprocess.Popen:
        return self._start(f"--address={self.address}", f"--num-cpus={cpus}")

    def wait_for(self, nodes: int, timeout: float = 120) -> None:
        """Until `nodes` nodes are alive (asked of the head with `ray status`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                self.command([RAY, "status", f"--address={self.address}"]), env=self.env, capture_output=True, text=True
            )
            if done.returncode == 0 and done.stdout.count(" node_") >= nodes and "Pending:" in done.stdout:
                active = done.stdout.split("Active:")[1].split("Pending:")[0]
                if active.count("node_") >= nodes:
                    return
            time.sleep(1)
        logs = "\n".join(p.read_text()[-2000:] for p in self.temp.glob("node*.log"))
        pytest.fail(f"the Ray cluster did not reach {nodes} nodes in {timeout:g}s:\n{logs}")

    def kill(self, node: subprocess.Popen) -> None:
        """SIGKILL a node: `ray start`, its raylet, its workers and everything else they started."""
        for pid in [node.pid, *_descendants(node.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait(timeout=30)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.kill(node)
        for pid in _pids_mentioning(str(self.temp)):  # processes that left their node's group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.network:
            self.network.stop()
        shutil.rmtree(self.temp, ignore_errors=True)

    def processes(self) -> list[int]:
        """Every process of the cluster's nodes still running."""
        return [pid for node in self.nodes for pid in [node.pid, *_descendants(node.pid)]]


def _descendants(root: int) -> list[int]:
    """Every process below `root` in the process tree (read from /proc)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("RELEASE_REQUIRE_RAY"):
            pytest.fail("ray is not installed, and RELEASE_REQUIRE_RAY is set")
        pytest.skip("needs Ray (pip install 'release-pipeline[ray]')")
