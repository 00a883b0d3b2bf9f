"""The `ray` executor on a real two-node Ray cluster on this machine: trials spread over both nodes, a node killed
mid-run costs nothing (its trials are `error`, then retried on the live node), a killed driver resumes, every trial
is stored exactly once, and the gate decides as it does with the local executor."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RELEASE, Cli, build_workspace, change_agent, require_isolation, run_release
from ray_cluster import RayCluster, require_ray

SLOW = "import time\n\ndef solve(x):\n    time.sleep(0.25)\n    return {body}\n"
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev" if i < 24 else "gate"} for i in range(36)]


NODE_SECRETS = {"RAY_TEST_NODE_TOKEN": "zq-node", "AWS_SECRET_ACCESS_KEY": "zq-aws"}


@pytest.fixture(scope="module")
def cluster():
    require_ray()
    ray = RayCluster()
    ray.env.update(NODE_SECRETS)  # what every node's processes hold: never for an agent to see
    try:
        ray.start_head(cpus=1)
        ray.add_node(cpus=1)
        ray.wait_for(nodes=2)
        yield ray
    finally:
        ray.stop()


def trials_of(root, run_id: int) -> list[dict]:
    return Cli(root).json("show", "--run", str(run_id))["trials"]


def assert_stored_once(trials: list[dict], tasks: int, repeats: int) -> dict[tuple[str, int], dict]:
    """No (task, repeat, attempt) twice, and every (task, repeat) has a verdict that is not `error`."""
    keys = collections.Counter((t["task_id"], t["repeat"], t["attempt"]) for t in trials)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    final: dict[tuple[str, int], dict] = {}
    for t in sorted(trials, key=lambda t: t["attempt"]):
        final[(t["task_id"], t["repeat"])] = t
    assert len(final) == tasks * repeats
    assert all(t["status"] != "error" for t in final.values()), [t for t in final.values() if t["status"] == "error"]
    return final


def wait_for_trials(root, at_least: int, timeout: float = 120) -> None:
    """Until the store holds `at_least` trials of the first run (read straight from it, as another runner would)."""
    from release_pipeline.workspace import Workspace

    store = Workspace(root).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(store.trials(1, with_trace=False)) >= at_least:
                return
        except Exception:  # the run is not created yet
            pass
        time.sleep(0.2)
    pytest.fail(f"fewer than {at_least} trials stored in {timeout:g}s")


@pytest.mark.slow
def test_a_run_spreads_over_the_nodes_and_survives_losing_one(cluster, tmp_path):
    root = build_workspace(
        tmp_path / "ws", agent_files={"agent.py": SLOW.format(body="x * 2")}, tasks=TASKS, run={"concurrency": 8}
    )
    victim = cluster.add_node(cpus=1)  # a third node, to be lost mid-run
    cluster.wait_for(nodes=3)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        cluster.command([RELEASE, "run", "--executor", "ray", "--address", cluster.address, "--json"]),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_trials(root, 8)
    cluster.kill(victim)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    assert "trial hosts on 3 node(s)" in err  # the work was spread over every node
    trials = trials_of(root, 1)
    final = assert_stored_once(trials, tasks=24, repeats=3)
    assert all(t["status"] == "pass" for t in final.values())
    lost = [t for t in trials if t["reason"] == "worker_lost"]
    assert lost and all(t["status"] == "error" for t in lost)  # the lost node's trials, each retried
    assert all(final[(t["task_id"], t["repeat"])]["attempt"] > t["attempt"] for t in lost)


@pytest.mark.slow
def test_a_killed_driver_resumes_and_stores_every_trial_once(cluster, tmp_path):
    root = build_workspace(
        tmp_path / "ws", agent_files={"agent.py": SLOW.format(body="x * 2")}, tasks=TASKS, run={"concurrency": 4}
    )
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    args = ["run", "--executor", "ray", "--address", cluster.address]
    driver = subprocess.Popen(
        cluster.command([RELEASE, *args]), cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_trials(root, 10)
    driver.send_signal(signal.SIGKILL)  # the driver itself: nsenter runs it in its own place
    driver.wait(timeout=30)
    resumed = run_release(root, "--quiet", *args, "--json", env=env, timeout=300, launcher=cluster.command([]))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert '"resumed": true' in resumed.stdout
    assert "trial hosts" not in resumed.stderr  # --quiet: results and errors only, the executor's notes too
    assert_stored_once(trials_of(root, 1), tasks=24, repeats=3)


@pytest.mark.slow
def test_the_gate_decides_on_ray_as_it_does_locally(cluster, tmp_path):
    decisions = {}
    for executor in ("local", "ray"):
        root = build_workspace(
            tmp_path / executor,
            agent_files={"agent.py": SLOW.format(body="x * 2 if x % 3 else 0")},
            tasks=TASKS,
            run={"concurrency": 8},
        )
        branch = change_agent(root, {"agent.py": SLOW.format(body="x * 2 if x % 5 else -1")}, "trade")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        more = ["--executor", "ray", "--address", cluster.address] if executor == "ray" else []
        done = run_release(
            root, "gate", "--candidate", branch, "--json", *more, env=env, timeout=300, launcher=cluster.command([])
        )
        assert done.returncode in (0, 1, 3), done.stderr[-3000:]
        report = Cli(root).json("show", "v2")["gate_report"]
        decisions[executor] = (report["decision"], report["fixes"], report["regressions"], report["trials"])
        if executor == "ray":  # a pool per side, started once however many rounds the gate asked of it
            assert done.stderr.count("trial hosts on 2 node(s)") == 2, done.stderr[-3000:]
    assert decisions["ray"] == decisions["local"]
    assert decisions["local"][2]  # the candidate breaks tasks: the comparison is not of two empty reports
    assert min(decisions["local"][3].values()) > 36  # more than the first round's 12 tasks x 3 on a side


@pytest.mark.slow
def test_the_test_cluster_is_reachable_on_loopback_only(cluster):
    """Every process of the cluster is in its own network, which has loopback only: its port answers there, and
    nothing answers on it from this machine's network (Ray's own processes listen on every interface)."""
    assert cluster.network is not None
    networks = collections.Counter()
    for pid in cluster.processes():
        try:
            networks[os.readlink(f"/proc/{pid}/ns/net")] += 1
        except FileNotFoundError:  # ended since it was listed
            pass
    assert list(networks) == [cluster.network.namespace] and networks[cluster.network.namespace] >= 4
    probe = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)"
    assert subprocess.run(cluster.command([sys.executable, "-c", probe, str(cluster.port)])).returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cluster.port), timeout=5)
    inside = subprocess.run(cluster.command(["cat", "/proc/net/dev"]), capture_output=True, text=True).stdout
    assert [line.split(":")[0].strip() for line in inside.splitlines()[2:]] == ["lo"]


@pytest.mark.slow
def test_a_candidate_on_a_ray_worker_reaches_nothing_of_the_node_or_its_judge(cluster, tmp_path):
    """The sandbox applies on the worker: an agent there sees no secret of the node's, neither the driver's store
    nor its suite, nor the judge's files unpacked on the worker, nor Ray's sockets, nor the cluster's port; its
    attempt to rewrite the judge's policy changes nothing; and the gate judges it as it is (it breaks every task)."""
    from test_untrusted_candidates import probe_code

    require_isolation()
    started = time.time() - 1  # the unpacked judges this test's hosts use are those marked in use since
    root = tmp_path / "ws"
    probes = (
        probe_code(root, cluster.temp / "no.sock")
        + f"""
def more():
    found = probes()
    found["secrets"] = sorted(k for k in os.environ if k in {sorted(NODE_SECRETS)!r})
    judges = [p for p in pathlib.Path(os.environ.get("TMPDIR", "/tmp")).glob("release-pipeline-trials/*/source")]
    judges += pathlib.Path("/tmp").glob("release-pipeline-trials/*/source")
    found["judge"] = bool(judges)
    for judge in judges:
        try:
            (judge / "gate-policy.yaml").write_text("regression_budget: 99\\nmin_fixes: 0\\n")
        except OSError:
            pass
    try:
        found["ray_sockets"] = bool(os.listdir({str(cluster.temp)!r}))
    except OSError:
        found["ray_sockets"] = False
    try:
        socket.create_connection(("127.0.0.1", {cluster.port}), timeout=2).close()
        found["ray_port"] = True
    except OSError:
        found["ray_port"] = False
    return found
"""
    )
    hostile = probes + "def solve(x):\n    return json.dumps(more(), sort_keys=True)\n"
    root = build_workspace(root, agent_files={"agent.py": SLOW.format(body="x * 2")}, tasks=TASKS, run={"repeats": 1})
    branch = change_agent(root, {"agent.py": hostile}, "probe the worker")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    more = ["--executor", "ray", "--address", cluster.address]
    done = run_release(root, "gate", "--candidate", branch, "--json", *more, env=env, timeout=300,
                       launcher=cluster.command([]))  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    report = Cli(root).json("show", "v2")["gate_report"]
    assert report["decision"] == "rejected" and report["fixes"] == []
    assert len(report["regressions"]) == 12  # every gate task: the probes' report is not an answer
    outputs = {json.dumps(t["output"]) for t in trials_of(root, 2)}
    assert len(outputs) == 1, outputs
    assert json.loads(json.loads(outputs.pop())) == {
        "secrets": [], "shadow": False, "ssh": False, "database": False, "suite": False, "socket": False,
        "disk": False, "judge": False, "ray_sockets": False, "ray_port": False,
    }  # fmt: skip
    used_here = [h for h in Path("/tmp").glob("release-pipeline-trials/*") if (h / ".used").stat().st_mtime >= started]
    policies = [h / "source" / "gate-policy.yaml" for h in used_here]
    assert policies and all("regression_budget: 99" not in p.read_text() for p in policies)


def test_room_and_actor_options_follow_the_trials_resources():
    from release_pipeline.builtin.ray_executor import actor_options, trials_that_fit

    cluster = {"CPU": 4.0, "GPU": 1.0, "memory": 8 * 2**30, "big_disk": 3.0}
    assert trials_that_fit(cluster, {"cpus": 1}) == 4
    assert trials_that_fit(cluster, {"cpus": 1, "gpus": 0.5}) == 2
    assert trials_that_fit(cluster, {"memory_mb": 3072, "custom": {"big_disk": 1}}) == 2
    assert trials_that_fit(cluster, {"gpus": 2}) == 0
    assert actor_options({"cpus": 0.5, "gpus": 1, "memory_mb": 100, "custom": {"big_disk": 1}}, 2) == {
        "num_cpus": 1.0,
        "num_gpus": 2,
        "memory": 200 * 2**20,
        "resources": {"big_disk": 2},
    }
    assert actor_options({}, 8) == {"num_cpus": 0}  # asks for nothing: placed by hand, one per node


def test_the_executor_and_its_options_come_from_release_yaml_or_the_command_line(tmp_path, monkeypatch):
    import yaml

    from release_pipeline.workspace import Workspace

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": SLOW.format(body="x")}, tasks=TASKS[:2])
    config = yaml.safe_load((root / "release.yaml").read_text())
    config["run"]["executor"] = {"name": "ray", "address": "10.0.0.5:6379", "actors": 3}
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    settings = Workspace(root).engine.settings
    assert (settings.executor, settings.executor_options) == ("ray", {"address": "10.0.0.5:6379", "actors": 3})
    monkeypatch.setenv("RELEASE_EXECUTOR", "local")  # `release run --executor local`: release.yaml's options go
    settings = Workspace(root).engine.settings
    assert (settings.executor, settings.executor_options) == ("local", {})


def test_an_option_the_executor_does_not_take_is_one_line(tmp_path):
    from test_bad_input import assert_one_line_error

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": SLOW.format(body="x")}, tasks=TASKS[:2])
    assert_one_line_error(run_release(root, "run", "--address", "10.0.0.5:6379"), "executor 'local'", "address")
    assert_one_line_error(run_release(root, "run", "--executor", "nosuch"), "nosuch")
