"""A content-addressed store of folders: fine-tuned adapters and the checkpoints they were trained from.

A blob is a folder of files, named by the digest of what it holds (`sha256:` and the SHA-256 of each file's
relative path and content digest, in order), so a version's manifest can name its weights by hash and nothing can
change under that name unnoticed: every read checks the digest, and a blob that is missing or does not match
fails in one line that says which.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from release_pipeline.errors import UserError

PREFIX = "sha256:"


class BlobError(UserError):
    """A blob is missing or its content no longer matches its name."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of one file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(folder: Path) -> str:
    """The digest of a folder: every regular file's relative path and content, in sorted order."""
    outer = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        outer.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return PREFIX + outer.hexdigest()


class BlobStore:
    """Folders under `root/<hex digest>/`, written once, checked on every read."""

    def __init__(self, root: Path):
        self.root = root

    def put(self, folder: Path) -> str:
        """Copy `folder` in (unless an identical blob is there) and return its digest."""
        digest = tree_digest(folder)
        dest = self._path(digest)
        if dest.is_dir() and tree_digest(dest) == digest:
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        if dest.exists():  # a damaged copy under the right name: replace it
            shutil.rmtree(dest)
        os.replace(staging, dest)
        return digest

    def get(self, digest: str, what: str = "blob") -> Path:
        """The folder of `digest`, after checking that it still holds what its name says."""
        dest = self._path(digest)
        if not dest.is_dir():
            raise BlobError(f"{what} {digest} is missing from {self.root}: this store never held it or it was deleted")
        found = tree_digest(dest)
        if found != digest:
            raise BlobError(f"{what} {digest} in {self.root} is corrupt: its content hashes to {found}")
        return dest

    def has(self, digest: str) -> bool:
        return self._path(digest).is_dir()

    def _path(self, digest: str) -> Path:
        if not digest.startswith(PREFIX) or len(digest) != len(PREFIX) + 64:
            raise BlobError(f"{digest!r} is not a blob name (sha256:<64 hex digits>)")
        return self.root / digest[len(PREFIX) :]
