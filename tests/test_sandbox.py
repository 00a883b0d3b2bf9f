"""Every escape we could think of, tried against the sandbox."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from conftest import require_isolation

from release_pipeline.sandbox import Limits, Sandbox, scrubbed_env

LIMITS = Limits(cpu_s=2, wall_s=5, memory_mb=256, file_size_mb=8, processes=32)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(LIMITS)


def test_ordinary_code_runs(sandbox):
    result = sandbox.run_python("import sys; print(sum(range(10))); print('err', file=sys.stderr)")
    assert result.ok and result.stdout.strip() == "45" and result.stderr.strip() == "err"


def test_writing_outside_the_folder_fails_and_leaves_nothing(sandbox, tmp_path):
    require_isolation()
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    result = sandbox.run_python(f"open({str(target)!r}, 'w').write('x')")
    assert not result.ok and not target.exists()
    inside = sandbox.run_python("open('here.txt', 'w').write('x'); print(open('here.txt').read())")
    assert inside.ok and inside.stdout.strip() == "x"
    scratch = sandbox.run_python("import tempfile; print(open(tempfile.mkstemp()[1], 'w').write('ok'))")
    assert scratch.ok  # temporary files land in its folder
    assert not sandbox.run_python("open('/tmp/release-escape', 'w').write('x')").ok


def test_planted_secrets_are_not_in_the_environment(sandbox, monkeypatch):
    planted = {"OPENAI_API_KEY": "sk-zq81", "GITHUB_TOKEN": "ghp-zq82", "DB_SECRET": "zq83"}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    values = sorted(planted.values())
    result = sandbox.run_python(f"import os; print(sorted(k for k in os.environ if os.environ[k] in {values!r}))")
    assert result.ok and result.stdout.strip() == "[]"
    assert "OPENAI_API_KEY" not in scrubbed_env(__import__("pathlib").Path("."))


def test_no_network(sandbox):
    require_isolation()
    code = (
        "import socket\nfor host in ('127.0.0.1', '10.255.255.1'):\n    s = socket.socket(); s.settimeout(2)\n"
        "    try:\n        s.connect((host, 80)); print('connected', host)\n"
        "    except OSError as e:\n        print('refused', host, e.errno)\n"
    )
    result = sandbox.run_python(code)
    assert result.ok and "connected" not in result.stdout and result.stdout.count("refused") == 2


def test_fork_bomb_is_stopped_quickly(sandbox):
    start = time.perf_counter()
    result = sandbox.run_python("import os\nwhile True:\n    os.fork()")
    assert result.status == "violation" and "process limit" in result.reason
    assert time.perf_counter() - start < LIMITS.wall_s + 2


def test_allocating_4_gb_hits_the_memory_limit(sandbox):
    result = sandbox.run_python("x = bytearray(4 * 1024 ** 3)")
    assert result.status == "violation" and "memory limit" in result.reason


def test_infinite_loop_hits_the_cpu_limit(sandbox):
    result = sandbox.run_python("while True:\n    pass")
    assert result.status == "violation" and ("CPU time limit" in result.reason or "wall-clock" in result.reason)
    assert result.wall_s < LIMITS.wall_s + 2


def test_sleeping_forever_hits_the_wall_clock(sandbox):
    result = sandbox.run_python("import time; time.sleep(60)", limits=Limits(wall_s=1))
    assert result.status == "violation" and "wall-clock" in result.reason


def test_huge_file_hits_the_file_size_limit(sandbox):
    result = sandbox.run_python("open('big', 'wb').write(b'0' * 64 * 1024 * 1024)")
    assert result.status == "violation" and "file size limit" in result.reason


def test_a_child_cannot_outlive_its_parent(sandbox):
    require_isolation()
    marker = str(1000 + uuid.uuid4().int % 8000)
    code = (
        f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint('spawned')"
    )
    result = sandbox.run_python(code)
    assert result.ok and result.stdout.strip() == "spawned"
    time.sleep(0.2)
    alive = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.strip()
    assert alive == ""
