"""The same store and loop on PostgreSQL, as a team sharing one version line would run it."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import Cli, make_workspace

from release_pipeline.errors import ConflictError
from release_pipeline.store import Store
from release_pipeline.store.db import current_revision, make_engine
from release_pipeline.store.migrations import HEAD
from release_pipeline.store.schema import Base


def test_migrations_on_postgres_match_the_models(postgres):
    url = postgres.new_database("schema")
    Store(url).close()
    engine = make_engine(url)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_head_compare_and_swap_on_postgres(postgres):
    url = postgres.new_database("race")
    setup = Store(url)
    setup.ensure_agent("a", "agents/a")
    for n in range(1, 10):
        setup.create_version("a", status="candidate", parent_number=None, git_sha=f"{n:040d}", content_hash="h")
    setup.move_head("a", expected=None, to=1, actor="t", reason="init", kind="init", side_effect=lambda: lambda: None)
    barrier, won = threading.Barrier(8), []

    def contend(n: int) -> None:
        store = Store(url)
        barrier.wait()
        try:
            store.move_head(
                "a", expected=1, to=n, actor="t", reason="race", kind="promote", side_effect=lambda: lambda: None
            )
            won.append(n)
        except ConflictError:
            pass

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and setup.head("a").number == won[0]
    assert len(setup.head_moves("a")) == 2


def test_demo_loop_on_postgres(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASE_DB_URL", postgres.new_database("loop"))
    root = make_workspace(tmp_path / "ws")
    cli = Cli(root)
    cli("init")
    steps = cli.json("promote", "--iterations", "2")
    assert [s["decision"] for s in steps] == ["accepted", "rejected"]
    assert [v["status"] for v in cli.json("log")] == ["retired", "canonical", "rejected"]
    assert not (root / ".release" / "release.db").exists()
