"""The database behind the store: two engines (deferred reads, IMMEDIATE writes on SQLite) and their sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from release_pipeline.errors import UserError
from release_pipeline.store.db import make_engine, upgrade


class StoreBase:
    """A migrated database; the parts of the store (versions, runs, trials, reports, LLM calls) build on it."""

    def __init__(self, url: str | URL) -> None:
        self.url = url
        self._read = make_engine(url)
        sqlite = self._read.dialect.name == "sqlite"
        self._write = make_engine(url, immediate=True) if sqlite else self._read
        try:
            upgrade(self._write)
        except OperationalError as exc:
            where = self._read.url.database if sqlite else self._read.url.render_as_string(hide_password=True)
            raise UserError(f"cannot open the database {where}: {_first_line(exc)}{_hint(exc)}") from None
        except DatabaseError as exc:
            where = self._read.url.database if sqlite else self._read.url.render_as_string(hide_password=True)
            raise UserError(
                f"the database {where} is damaged or not a release-pipeline database ({_first_line(exc)}): "
                "move it aside to start a new one, or restore a backup"
            ) from None

    def close(self) -> None:
        self._read.dispose()
        if self._write is not self._read:
            self._write.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with Session(self._read, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction, committed on success, rolled back on any exception."""
        with Session(self._write, expire_on_commit=False) as session, session.begin():
            yield session


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return " (is the folder writable?)"
    if "locked" in text:
        return " (another process holds it: retry)"
    return ""
