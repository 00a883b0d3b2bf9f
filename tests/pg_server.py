"""A throwaway PostgreSQL server on loopback for the tests that need one.

Uses the machine's PostgreSQL binaries (.ci/run installs them where missing),
running as the `postgres` user when the tests run as root, since PostgreSQL
refuses to run as root. The cluster lives in a temporary folder and is
stopped when the test session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (initdb not found); .ci/run installs it")
        self.dir = Path(tempfile.mkdtemp(prefix="release-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(self.data), "-U", "release", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [
                *as_user,
                str(bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait()

    def _wait(self) -> None:
        import psycopg

        deadline = time.time() + 30
        while True:
            try:
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("PostgreSQL did not start") from None
                time.sleep(0.2)

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=release dbname=postgres"

    def new_database(self, name: str) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://release@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
