"""The store: migrations shipped in the package, SQLite in WAL mode, any SQLAlchemy URL."""

from __future__ import annotations

import sqlite3

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from release_pipeline.store import Store
from release_pipeline.store.db import MIGRATIONS, current_revision, make_engine
from release_pipeline.store.migrations import HEAD
from release_pipeline.store.schema import Base


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_migrations_have_one_head_and_it_is_the_one_the_code_expects():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD]


def test_opening_a_store_migrates_it_and_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    engine = make_engine(url)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db = sqlite3.connect(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    engine = make_engine(url, immediate=True)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(engine) is None
    Store(url).close()  # and up again on the next open
    assert current_revision(engine) == HEAD


def test_database_url_from_the_environment(tmp_path, monkeypatch):
    from conftest import Cli, make_workspace

    root = make_workspace(tmp_path / "ws")
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("RELEASE_DB_URL", f"sqlite:///{other}")
    Cli(root)("init")
    assert other.exists() and not (root / ".release" / "release.db").exists()
