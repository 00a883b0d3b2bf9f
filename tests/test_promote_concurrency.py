"""Eight promotions racing for one head: exactly one wins, and the database and git agree."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import RELEASE, REPO, check_race_outcome, git, race_for_head

PATCH = REPO / "specs" / "candidates" / "01-percent-and-plain-digits.patch"


@pytest.mark.slow
def test_eight_concurrent_promotions_leave_one_winner(cli, workspace):
    numbers = []
    for i in range(8):  # eight candidates of different content (the same content twice would be refused)
        git(workspace, "checkout", "-q", "-b", f"attempt-{i}", "canonical/calc")
        git(workspace, "apply", str(PATCH))
        with open(workspace / "agents" / "calc" / "formatting.py", "a") as f:
            f.write(f"# attempt {i}\n")
        git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", f"attempt {i}")
        git(workspace, "checkout", "-q", "-")
        made = cli.json("candidate", "--from", f"attempt-{i}", "--intent", f"attempt {i}")
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
    winners = [json.loads(out)["to_version"] for code, out, _ in results if code == 0]
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
    url = f"sqlite:///{tmp_path / 'race.db'}"
    won, side_effects = race_for_head(url)
    assert side_effects == won  # git moved for the winner only
    check_race_outcome(url, won)
