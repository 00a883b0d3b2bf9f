"""Everything release-pipeline does to git, through GitPython.

Candidates are built without touching the user's working tree or index: a
patch is applied to a temporary index and committed with `commit-tree`.
Canonical moves are compare-and-swaps on `refs/heads/canonical/<agent>`
(`update-ref NEW OLD`), mirrored by annotated tags `<agent>/v<N>`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import git

from release_pipeline.errors import ConflictError, NotFoundError, UserError

FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "release-pipeline",
    "GIT_AUTHOR_EMAIL": "release-pipeline@localhost",
    "GIT_COMMITTER_NAME": "release-pipeline",
    "GIT_COMMITTER_EMAIL": "release-pipeline@localhost",
}


def canonical_ref(agent: str) -> str:
    """The branch that mirrors an agent's canonical head."""
    return f"refs/heads/canonical/{agent}"


def open_repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{root} is not a git repository (run `release init` there)") from None


@contextmanager
def identity(repo: git.Repo) -> Iterator[None]:
    """Use the user's git identity, or a fallback one where none is configured (CI, fresh machines)."""
    env: dict[str, str] = {}
    reader = repo.config_reader()
    if not (os.environ.get("GIT_AUTHOR_NAME") or reader.has_option("user", "name")):
        env = FALLBACK_IDENTITY
    elif not (os.environ.get("GIT_AUTHOR_EMAIL") or reader.has_option("user", "email")):
        env = {k: v for k, v in FALLBACK_IDENTITY.items() if k.endswith("EMAIL")}
    with repo.git.custom_environment(**env):
        yield


def ensure_clean(repo: git.Repo) -> None:
    """Refuse to act on a tree with uncommitted changes: what would we be recording?"""
    if repo.is_dirty(untracked_files=True):
        changed = [d.a_path for d in repo.index.diff(None)] + repo.untracked_files
        first = changed[0] if changed else "the index"
        raise ConflictError(
            f"the git tree is dirty ({first} and {max(0, len(changed) - 1)} more): commit or stash first"
        )


def head_sha(repo: git.Repo) -> str:
    try:
        return repo.head.commit.hexsha
    except ValueError:
        raise UserError("the workspace has no commit yet: commit the agent and suite first") from None


def resolve_commit(repo: git.Repo, ref: str) -> str:
    """The commit sha a branch, tag or sha names."""
    try:
        return repo.commit(ref).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise NotFoundError(f"no git ref or commit named {ref!r}") from None


def folder_tree_sha(repo: git.Repo, sha: str, folder: str) -> str:
    """The git tree id of `folder` at `sha`: a content hash of the artifact."""
    try:
        return (repo.commit(sha).tree / folder).hexsha
    except KeyError:
        raise NotFoundError(f"commit {sha[:10]} has no folder {folder!r}") from None


def export_folder(repo: git.Repo, sha: str, folder: str, dest: Path, content: str = "") -> None:
    """Write `folder` as it is at `sha` into `dest` (created fresh). Where this clone lacks the commit (another
    runner recorded it), the folder's own tree `content` does as well: same tree, same files."""
    tree: Any  # GitPython's traverse() is typed for trees of tuples too
    try:
        tree, prefix = repo.commit(sha).tree / folder, folder
    except (ValueError, git.BadName):
        try:
            tree, prefix = git.Tree(repo, bytes.fromhex(content), git.Tree.tree_id << 12, ""), ""
            list(tree)  # reads the object: a missing one raises here
        except (ValueError, git.BadName):
            raise NotFoundError(
                f"commit {sha[:10]} is not in this clone (another runner recorded it): fetch it, e.g. "
                f"git fetch origin 'refs/heads/canonical/*:refs/heads/canonical/*'"
            ) from None
    _write_tree(tree, prefix, dest)


def export_commit(repo: git.Repo, sha: str, dest: Path) -> None:
    """Write every file of commit `sha` into `dest` (created fresh, atomically), read from its blobs: no attribute
    file of the commit (`export-ignore`, filters) has any say in what is written."""
    try:
        tree = repo.commit(sha).tree
    except (ValueError, git.BadName):
        raise NotFoundError(f"cannot read the files of commit {sha[:10]}") from None
    _write_tree(tree, "", dest)


def _write_tree(tree: Any, prefix: str, dest: Path) -> None:
    """The blobs under `tree` (paths relative to `prefix`) as files in `dest`, which appears whole or not at all."""
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=dest.parent))
    try:
        for item in tree.traverse():
            if item.type != "blob":
                continue  # folders are made as their files need them; submodules are not the commit's files
            target = tmp / (Path(item.path).relative_to(prefix) if prefix else Path(item.path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.data_stream.read())  # a symbolic link's blob is its target, written as text
            if item.mode & stat.S_IXUSR:
                target.chmod(0o755)
        tmp.rename(dest)
    except OSError:
        if not dest.is_dir():  # someone else exported it first, or it really failed
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def changed_paths(repo: git.Repo, base: str, head: str) -> list[str]:
    """Paths that differ between two commits (both sides of a rename)."""
    out = repo.git.diff("--name-only", "--no-renames", base, head)
    return [line for line in out.splitlines() if line]


def file_at(repo: git.Repo, sha: str, path: str) -> str | None:
    """A file's text at a commit; None when the commit has no such file (or it is not text)."""
    try:
        return repo.git.show(f"{sha}:{path}", strip_newline_in_stdout=False)
    except (git.GitCommandError, UnicodeDecodeError):
        return None


def diff_text(repo: git.Repo, base: str, head: str) -> str:
    return repo.git.diff(base, head)


@contextmanager
def _scratch_index(repo: git.Repo, base: str) -> Iterator[Path]:
    """A temporary index holding `base`'s tree, so commits can be built without touching the user's own."""
    with tempfile.TemporaryDirectory() as tmp, repo.git.custom_environment(GIT_INDEX_FILE=str(Path(tmp) / "index")):
        repo.git.read_tree(base)
        yield Path(tmp)


def _commit_index(repo: git.Repo, base: str, message: str) -> str:
    tree = repo.git.write_tree()
    with identity(repo):
        return repo.git.commit_tree(tree, "-p", base, "-m", message)


def commit_patch(repo: git.Repo, base: str, patch: Path, message: str) -> str:
    """Apply `patch` on top of `base` in a temporary index and commit it; the working tree is untouched."""
    with _scratch_index(repo, base):
        try:
            repo.git.apply("--cached", str(patch.resolve()))
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            raise UserError(
                f"patch {patch} does not apply to the canonical version: {detail[-1] if detail else 'git apply failed'}"
            ) from None
        return _commit_index(repo, base, message)


def merge_base(repo: git.Repo, a: str, b: str) -> str:
    try:
        return repo.git.merge_base(a, b)
    except git.GitCommandError:
        raise UserError(f"{b[:10]} shares no history with {a[:10]}") from None


def rebase_onto(repo: git.Repo, base: str, sha: str, message: str) -> str | None:
    """`sha`'s own change (since its merge base with `base`) committed on top of `base` (a three-way apply in a
    temporary index; the working tree is untouched); None when it does not apply cleanly."""
    diff = repo.git.diff("--binary", "--full-index", merge_base(repo, base, sha), sha)
    if not diff.strip():
        return base
    with _scratch_index(repo, base) as tmp:
        patch = tmp / "own-change.patch"
        patch.write_text(diff + "\n", encoding="utf-8")
        try:
            repo.git.apply("--cached", "--3way", str(patch))
        except git.GitCommandError:
            return None
        return _commit_index(repo, base, message)


def commit_files(repo: git.Repo, base: str, files: dict[str, str], message: str) -> str:
    """Commit new contents for `files` (repository paths) on top of `base`; the working tree is untouched."""
    with _scratch_index(repo, base) as tmp:
        for path, content in sorted(files.items()):
            blob = tmp / "blob"
            blob.write_text(content, encoding="utf-8")
            sha = repo.git.hash_object("-w", str(blob))
            repo.git.update_index("--add", "--cacheinfo", f"100644,{sha},{path}")
        return _commit_index(repo, base, message)


def carry_folder(repo: git.Repo, base: str, sha: str, folder: str, message: str) -> str:
    """A commit on top of `base` whose only change is `folder` as `sha` has it: nothing else of `sha` comes along
    (the working tree is untouched)."""
    with _scratch_index(repo, base):
        repo.git.rm("-r", "--cached", "--quiet", "--ignore-unmatch", "--", folder)
        repo.git.read_tree(f"--prefix={folder}/", f"{sha}:{folder}")
        return _commit_index(repo, base, message)


def create_branch(repo: git.Repo, name: str, sha: str) -> None:
    try:
        repo.git.branch("--force", name, sha)
    except git.GitCommandError as exc:
        raise ConflictError(f"cannot create branch {name!r}: {(exc.stderr or '').strip()}") from None


def ref_sha(repo: git.Repo, ref: str) -> str | None:
    try:
        return repo.git.rev_parse("--verify", "--quiet", ref + "^{commit}") or None
    except git.GitCommandError:
        return None


def move_ref(repo: git.Repo, ref: str, new: str, old: str | None) -> None:
    """Compare-and-swap a ref: fails unless it currently points at `old` (or does not exist when old is None)."""
    expected = old or "0" * 40
    try:
        repo.git.update_ref(ref, new, expected)
    except git.GitCommandError as exc:
        raise ConflictError(f"git ref {ref} moved: {(exc.stderr or '').strip()}") from None


def tag_exists(repo: git.Repo, name: str) -> bool:
    return ref_sha(repo, f"refs/tags/{name}") is not None


def create_tag(repo: git.Repo, name: str, sha: str, message: str) -> None:
    try:
        with identity(repo):
            repo.git.tag("-a", name, sha, "-m", message)
    except git.GitCommandError as exc:
        raise ConflictError(f"cannot create tag {name!r}: {(exc.stderr or '').strip()}") from None


def delete_tag(repo: git.Repo, name: str) -> None:
    repo.git.tag("-d", name)


def commit_lone_file(repo: git.Repo, parent: str | None, name: str, text: str, message: str) -> str:
    """A commit (on `parent`, or a root commit) whose tree is one file: for data that travels with git."""
    with tempfile.TemporaryDirectory() as tmp, repo.git.custom_environment(GIT_INDEX_FILE=str(Path(tmp) / "index")):
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        blob = repo.git.hash_object("-w", str(path))
        repo.git.update_index("--add", "--cacheinfo", f"100644,{blob},{name}")
        tree = repo.git.write_tree()
        with identity(repo):
            return repo.git.commit_tree(tree, *(["-p", parent] if parent else []), "-m", message)


def fetch_line(repo: git.Repo, remote: str, agent: str) -> None:
    """The agent's canonical branch, version tags and line as `remote` has them (the shared truth of many
    runners), replacing this clone's; a remote without them yet changes nothing."""
    specs = [
        f"+refs/heads/canonical/{agent}:refs/heads/canonical/{agent}",
        f"+refs/release-pipeline/{agent}:refs/release-pipeline/{agent}",
        f"+refs/tags/{agent}/*:refs/tags/{agent}/*",
    ]
    try:
        repo.git.fetch("--quiet", "--no-tags", "--update-head-ok", remote, *specs)
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip()
        if "couldn't find remote ref" in stderr:  # a new line: nothing pushed yet
            return
        raise ConflictError(f"cannot fetch the version line from remote {remote!r}: {stderr}") from None


def fetch_line_view(repo: git.Repo, remote: str, agent: str) -> str:
    """The agent's canonical branch, version tags and line as `remote` has them, fetched under a namespace of
    this clone's own (`<prefix>/canonical`, `<prefix>/tags/*`, `<prefix>/line`: replaced each time, nothing of
    the clone's own refs touched); returns the prefix. A remote without them yet leaves it empty."""
    prefix = f"refs/release-pipeline-remote/{agent}"
    for ref in repo.git.for_each_ref("--format=%(refname)", f"{prefix}/").splitlines():
        repo.git.update_ref("-d", ref)
    specs = [
        f"+refs/heads/canonical/{agent}:{prefix}/canonical",
        f"+refs/release-pipeline/{agent}:{prefix}/line",
        f"+refs/tags/{agent}/*:{prefix}/tags/*",
    ]
    try:
        repo.git.fetch("--quiet", "--no-tags", remote, *specs)
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip()
        if "couldn't find remote ref" not in stderr:
            raise ConflictError(f"cannot fetch the version line from remote {remote!r}: {stderr}") from None
    return prefix


def push_atomic(repo: git.Repo, remote: str, moves: list[tuple[str, str | None, str | None]]) -> None:
    """Move refs on `remote` all at once or not at all: each (ref, new, old) is a compare-and-swap there too
    (`--force-with-lease` on the value it must have; None: must not exist / delete)."""
    args = ["--atomic", "--porcelain", "--quiet", remote]
    for ref, new, old in moves:
        args.insert(0, f"--force-with-lease={ref}:{old or ''}")
        args.append(f"{new}:{ref}" if new else f":{ref}")
    try:
        repo.git.push(*args)
    except git.GitCommandError as exc:
        detail = " ".join(((exc.stderr or "") + " " + (exc.stdout or "")).split())[:400]
        raise ConflictError(
            f"remote {remote!r} refused the move (another runner moved the line, or the remote is unreachable): "
            f"{detail}; nothing moved"
        ) from None
