"""Eight promotions racing for one head: exactly one wins, and the database and git agree."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import RELEASE, REPO, git

PATCH = REPO / "specs" / "candidates" / "01-percent-and-plain-digits.patch"


@pytest.mark.slow
def test_eight_concurrent_promotions_leave_one_winner(cli, workspace):
    numbers = []
    for i in range(8):
        made = cli.json("candidate", "--from", str(PATCH), "--intent", f"attempt {i}")
        assert cli.json("gate", "--candidate", f"v{made['number']}")["decision"] == "accepted"
        numbers.append(made["number"])
    procs = [
        subprocess.Popen(
            [RELEASE, "promote", "--candidate", f"v{n}", "--json"],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in numbers
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [json.loads(out)["to"] for code, out, _ in results if code == 0]
    assert len(winners) == 1, results
    winner = winners[0]
    for code, _, err in results:  # the others lost the compare-and-swap, or saw the head had moved
        assert code == 0 or (code == 2 and "moved" in err and len(err.strip().splitlines()) == 1), (code, err)

    log = {v["number"]: v for v in cli.json("log")}
    assert [n for n, v in log.items() if v["status"] == "canonical"] == [winner]
    assert log[1]["status"] == "retired"
    assert all(log[n]["status"] == "candidate" for n in numbers if n != winner)
    moves = cli.json("show", f"v{winner}")["head_moves"]
    assert [(m["kind"], m["from_version"], m["to_version"]) for m in moves] == [("promote", 1, winner)]
    assert len(cli.json("show", "v1")["head_moves"]) == 2  # init and the one promotion

    assert git(workspace, "rev-parse", "canonical/calc") == log[winner]["git_sha"]
    assert sorted(git(workspace, "tag", "--list").split()) == sorted(["calc/v1", f"calc/v{winner}"])


def test_compare_and_swap_inside_the_store_lets_one_of_eight_threads_win(tmp_path):
    """The same race one level down, with no CLI start-up to stagger the contenders."""
    import threading

    from release_pipeline.errors import ConflictError
    from release_pipeline.store import Store

    url = f"sqlite:///{tmp_path / 'race.db'}"
    setup = Store(url)
    setup.ensure_agent("a", "agents/a")
    for n in range(1, 10):
        setup.create_version("a", status="candidate", parent_number=None, git_sha=f"{n:040d}", content_hash="h")
    setup.move_head("a", expected=None, to=1, actor="t", reason="init", kind="init", side_effect=lambda: lambda: None)
    barrier, outcomes = threading.Barrier(8), []
    side_effects = []

    def contend(n: int) -> None:
        store = Store(url)
        barrier.wait()
        try:
            store.move_head(
                "a",
                expected=1,
                to=n,
                actor=f"t{n}",
                reason="race",
                kind="promote",
                side_effect=lambda: side_effects.append(n) or (lambda: None),
            )
            outcomes.append(("won", n))
        except ConflictError:
            outcomes.append(("lost", n))

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for result, n in outcomes if result == "won"]
    assert len(winners) == 1 and side_effects == winners
    assert setup.head("a").number == winners[0]
    assert [(m.from_version, m.to_version) for m in setup.head_moves("a")] == [(None, 1), (1, winners[0])]
    assert sorted(v.status for v in setup.versions("a")) == sorted(["canonical", "retired"] + ["candidate"] * 7)
