"""What a remote worker needs to run a version's trials exactly as `release run` would here: a `TrialRecipe`.

A `TrialRecipe` is everything a worker needs, in one picklable value: the judging workspace's files (its config,
plugins and suites: the canonical commit's, never the candidate's), the artifact's files, the trial settings and
the store's URL. A `TrialHost` built from it on the worker unpacks both into a folder named by their digest (once
per machine), opens the workspace there and holds one `TrialRunner`: the same code, adapter, verifiers and sandbox
as a local run, started once and reused from trial to trial and from run to run of the same artifact (each call
names its run). Executors that ship trials elsewhere (the `ray` executor) build hosts where the trials run; the
driver stores what they return.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from release_pipeline.models import Artifact

SKIPPED = {".git", ".release", "__pycache__"}  # state and caches, never what judges or runs
UNUSED_S = 24 * 3600  # recipes unpacked on a machine and unused this long are removed by the next host there


def pack(folder: Path) -> bytes:
    """The files under `folder` as a gzipped tar, in a fixed order with fixed metadata: same files, same bytes.
    A folder that is a git work tree gives the files git would (tracked or not ignored): no build output, no
    benchmark scratch, nothing `.gitignore` keeps out."""
    buffer = io.BytesIO()
    zipped = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0)  # no time stamp in the header
    with zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for path in sorted(_files(folder)):
            rel = path.relative_to(folder)
            if SKIPPED & set(rel.parts) or not (path.is_file() or path.is_dir()) or path.is_symlink():
                continue
            info = tar.gettarinfo(str(path), arcname=rel.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _files(folder: Path) -> list[Path]:
    """Every file and folder under `folder`; only what git would keep when `folder` is a work tree's root."""
    import subprocess

    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != folder.resolve():
        return list(folder.rglob("*"))
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=folder, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return [folder / name for name in listed.decode().split("\0") if name]


def unpack_once(data: bytes, dest: Path) -> Path:
    """`data` (a `pack`) extracted at `dest`, unless an earlier call already put it there; safe between processes."""
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(scratch, filter="data")
    try:
        os.rename(scratch, dest)
    except OSError:  # another process finished first: theirs is the same files
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


def sweep(top: Path, unused_s: float = UNUSED_S) -> list[Path]:
    """Remove the recipes unpacked under `top` that no host has used for `unused_s` seconds; what was removed."""
    removed = []
    for home in top.iterdir() if top.is_dir() else []:
        if home.name.startswith(".removing-"):  # a sweep that stopped half way
            shutil.rmtree(home, ignore_errors=True)
            continue
        try:
            used = (home / ".used").stat().st_mtime
        except OSError:  # being made right now, or not ours
            continue
        if time.time() - used > unused_s:
            trash = home.with_name(f".removing-{home.name}-{os.getpid()}")
            try:
                os.rename(home, trash)  # at once: a host starting on it now unpacks afresh
            except OSError:  # another sweep took it first
                continue
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(home)
    return removed


@dataclass(frozen=True)
class TrialRecipe:
    """How to build, on another machine, the trial runner of one artifact (for any of its runs)."""

    source: bytes  # the judging workspace's files
    artifact_files: bytes
    artifact: Artifact
    timeout_s: float
    seed: int
    models: dict[str, str]
    db_url: str  # the store's URL, with its password: workers record LLM calls where the driver does

    @classmethod
    def of(cls, artifact: Artifact, source: Path, timeout_s: float, seed: int, models: dict[str, str],
           db_url: str) -> TrialRecipe:  # fmt: skip
        """The recipe of an artifact's trials: `source` is the judging workspace's folder, packed with the
        artifact's."""
        return cls(pack(source), pack(artifact.path), artifact, timeout_s, seed, dict(models), db_url)

    @property
    def digest(self) -> str:
        """The files' digest: hosts of recipes with the same files share one unpacked copy per machine."""
        return hashlib.sha256(self.source + b"\0" + self.artifact_files).hexdigest()[:32]

    @property
    def key(self) -> str:
        """The whole recipe's digest: hosts built from recipes with the same key run trials the same way."""
        return hashlib.sha256(pickle.dumps(self)).hexdigest()[:32]

    @property
    def resources(self) -> dict[str, Any]:
        """What one trial asks of a machine (`resources:` in the agent's manifest)."""
        return dict(self.artifact.manifest.resources)
