"""Engines and migrations: SQLite in WAL mode by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url

from release_pipeline.errors import ConfigError, UserError
from release_pipeline.store.migrations import HEAD

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str | URL, *, immediate: bool = False) -> Engine:
    """An engine for `url`. On SQLite, `immediate=True` makes every transaction take the write lock up front.

    SQLite's default deferred transactions upgrade to a write lock on first
    write, which is where two writers deadlock; our write paths (compare-and-swap
    on the head, trial batches) begin IMMEDIATE instead and wait their turn.
    """
    try:
        if make_url(url).get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
            _configure_sqlite(engine, immediate)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # malformed URL, missing driver
        raise ConfigError(f"cannot open database {url!r}: {exc}") from None


def _configure_sqlite(engine: Engine, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql(begin)


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def known_revisions() -> set[str]:
    """The schema revisions this release knows: its migration files are named `<revision>_<what>.py`."""
    return {p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py")}


def upgrade(write_engine: Engine) -> None:
    """Bring the database to the newest schema; a no-op (without importing Alembic) when it is there."""
    revision = current_revision(write_engine)
    if revision == HEAD:
        return
    if revision is not None and revision not in known_revisions():
        raise UserError(
            f"the database's schema is revision {revision}, newer than this release-pipeline knows ({HEAD}): "
            "upgrade release-pipeline to use it"
        )
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with write_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
