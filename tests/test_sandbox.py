"""Every escape we could think of, tried against the sandbox."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from conftest import require_isolation

from release_pipeline.sandbox.isolation import Limits, Sandbox, allowed_env, python_paths

LIMITS = Limits(cpu_s=2, wall_s=5, memory_mb=256, file_size_mb=8, processes=32)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(LIMITS)


def test_ordinary_code_runs(sandbox):
    result = sandbox.run_python("import sys; print(sum(range(10))); print('err', file=sys.stderr)")
    assert result.ok and result.stdout.strip() == "45" and result.stderr.strip() == "err"


def test_writes_never_reach_the_host(sandbox, tmp_path):
    require_isolation()
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    result = sandbox.run_python(f"open({str(target)!r}, 'w').write('x')")
    assert not result.ok and not target.exists()
    for path in ("/usr/escape", "/etc/escape", __import__("sys").prefix + "/escape"):
        assert not sandbox.run_python(f"open({path!r}, 'w').write('x')").ok
    inside = sandbox.run_python("open('here.txt', 'w').write('x'); print(open('here.txt').read())")
    assert inside.ok and inside.stdout.strip() == "x"
    scratch = sandbox.run_python("import tempfile; print(open(tempfile.mkstemp()[1], 'w').write('ok'))")
    assert scratch.ok  # temporary files land in its own /tmp
    marker = f"/tmp/release-escape-{uuid.uuid4().hex}"
    assert sandbox.run_python(f"open({marker!r}, 'w').write('x')").ok  # a private /tmp: allowed ...
    assert not __import__("os").path.exists(marker)  # ... and gone with the sandbox


PLANTED = {
    "OPENAI_API_KEY": "sk-zq81",
    "GITHUB_TOKEN": "ghp-zq82",
    "DB_SECRET": "zq83",
    "PGPASSWORD": "zq84",
    "DATABASE_URL": "postgresql://u:zq85@db/x",
    "RELEASE_DB_URL": "sqlite:////zq86.db",
    "AWS_ACCESS_KEY_ID": "AKIAZQ87",
    "GITHUB_PAT": "zq88",
    "SOME_NEW_CREDENTIAL": "zq89",
}


def test_the_environment_is_an_allow_list(sandbox, monkeypatch):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    values = sorted(PLANTED.values())
    result = sandbox.run_python(f"import os; print(sorted(k for k in os.environ if os.environ[k] in {values!r}))")
    assert result.ok and result.stdout.strip() == "[]"
    assert not set(PLANTED) & set(allowed_env("/tmp/work"))
    assert allowed_env("/tmp/work", ("PGPASSWORD",))["PGPASSWORD"] == "zq84"  # only where the owner names it


def test_host_files_are_out_of_sight(sandbox, tmp_path):
    require_isolation()
    state = tmp_path / "ws" / ".release"
    state.mkdir(parents=True)
    (state / "release.db").write_text("the version line")
    ssh = __import__("pathlib").Path.home() / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("a planted key")
    real_home = __import__("pwd").getpwuid(__import__("os").getuid()).pw_dir
    python = [p for p in python_paths() if p.startswith(real_home + "/")]
    home_files = [
        str(p) for p in __import__("pathlib").Path(real_home).iterdir() if not any(q.startswith(str(p)) for q in python)
    ]
    paths = ["/etc/shadow", "/etc/gshadow", str(state / "release.db"), str(ssh), "/var/run", "/run", *home_files[:20]]
    code = f"import os\nfor path in {paths!r}:\n    print(path, os.path.exists(path))\n"
    result = sandbox.run_python(code)
    assert result.ok, result.stderr
    seen = dict(line.rsplit(" ", 1) for line in result.stdout.strip().splitlines())
    assert set(seen.values()) == {"False"}, seen


def test_host_unix_sockets_are_unreachable(sandbox, tmp_path):
    require_isolation()
    import socket

    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    try:
        code = (
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"try:\n    s.connect({str(path)!r}); print('connected')\nexcept OSError as e:\n    print('refused', e)\n"
        )
        result = sandbox.run_python(code)
        assert result.ok and result.stdout.startswith("refused"), result.stdout
    finally:
        server.close()


def test_writing_without_end_hits_the_disk_quota(sandbox):
    require_isolation()
    code = (
        "import os\nchunk = b'0' * (4 * 1024 * 1024)\n"
        "for i in range(400):\n    open(f'f{i}', 'wb').write(chunk)\n"  # 1.6 GB in files under the size limit
    )
    start = time.perf_counter()
    result = sandbox.run_python(code, limits=Limits(disk_mb=64, wall_s=20, cpu_s=20))
    assert result.status == "violation" and "disk quota" in result.reason, result
    assert time.perf_counter() - start < 20


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


def test_cgroups_left_by_killed_commands_are_removed_by_the_next_sandbox(monkeypatch):
    from release_pipeline.sandbox import cgroup as module

    probe = module.PidsCgroup(8)
    probe.close()
    if probe.path is None:
        pytest.skip("no pids cgroup this process may create")
    dead = 2**22 + 1  # above the kernel's largest pid: no process has it
    made = {}
    for name, pid, age_s in [("stale", dead, 120), ("young", dead, 0), ("alive", os.getpid(), 120)]:
        path = probe.path.parent / f"release-sandbox-{pid}-test{name}{uuid.uuid4().hex[:6]}"
        path.mkdir()
        os.utime(path, (time.time() - age_s, time.time() - age_s))
        made[name] = path
    try:
        monkeypatch.setattr(module, "_swept", set())
        module.PidsCgroup(8).close()
        assert not made["stale"].exists()  # SIGKILLed: nobody else removes it
        assert made["young"].exists() and made["alive"].exists()
    finally:
        for path in made.values():
            if path.exists():
                path.rmdir()
