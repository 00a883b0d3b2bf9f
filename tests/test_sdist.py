"""The source distribution: current license metadata, every tracked file a user needs, and tests that run from it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest
from conftest import REPO

CI_ONLY = (".ci/", ".github/", ".gitignore")  # what only this repository's own CI uses


@pytest.mark.slow
def test_the_sdist_has_the_license_and_the_tracked_files_and_its_tests_run(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("run from a git checkout (this is the test that builds the sdist)")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(REPO)],
        check=True,
        capture_output=True,
    )
    (archive,) = (tmp_path / "dist").glob("release_pipeline-*.tar.gz")
    with tarfile.open(archive) as tar:
        root = tar.getnames()[0].split("/")[0]
        names = {name.removeprefix(root + "/") for name in tar.getnames()}
        tar.extractall(tmp_path, filter="data")
    pkg_info = (tmp_path / root / "PKG-INFO").read_text()
    assert "License-Expression: Apache-2.0" in pkg_info and "License-File: LICENSE" in pkg_info
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    missing = [name for name in tracked if not name.startswith(CI_ONLY) and name not in names]
    assert missing == [], missing
    assert not [name for name in names if "__pycache__" in name or "/.work/" in name]

    unpacked = tmp_path / root
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    where = subprocess.run(
        [sys.executable, "-c", "import release_pipeline; print(release_pipeline.__file__)"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(unpacked)), where  # the tests below exercise the sdist's own code
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_docs.py", "tests/test_records.py"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout
