"""The same store and loop on PostgreSQL, as a team sharing one version line would run it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import Cli, check_race_outcome, make_workspace, race_for_head

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
    won, side_effects = race_for_head(url)
    assert side_effects == won
    check_race_outcome(url, won)


def test_demo_loop_on_postgres(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASE_DB_URL", postgres.new_database("loop"))
    root = make_workspace(tmp_path / "ws")
    cli = Cli(root)
    cli("init")
    steps = cli.json("promote", "--iterations", "2")
    assert [s["decision"] for s in steps] == ["accepted", "rejected"]
    assert [v["status"] for v in cli.json("log")] == ["retired", "canonical", "rejected"]
    assert not (root / ".release" / "release.db").exists()
