"""What the SQL stores share besides their flows: engines from a URL with bounded
waits or from a Flask-SQLAlchemy ``db``, the mapping of database errors to store
errors, and the state both stores keep (:class:`Common`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_errors
from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ConfigurationError
from ..errors import StoreError
from ..errors import StoreUnavailable
from ._sql_tables import DIALECTS
from ._sql_tables import Layout
from .base import reach_of


def mapped(exc: BaseException) -> StoreError:
    """The store error for a database error (raised ``from`` it by the caller)."""
    if isinstance(exc, sa_errors.TimeoutError):
        return StoreUnavailable(f"every pooled database connection stayed busy: {exc}", exc)
    unreachable = isinstance(exc, (sa_errors.OperationalError, sa_errors.InterfaceError))
    if unreachable or isinstance(exc, OSError) or getattr(exc, "connection_invalidated", False):
        return StoreUnavailable(f"SQL session store unavailable: {_first_line(exc)}", exc)
    return StoreError(f"SQL session store failed: {_first_line(exc)}", exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0]


def retryable(exc: BaseException, sent: int) -> bool:
    # A pooled connection that died (a database restart) fails on first use:
    # nothing was done yet, so the flow runs again on a fresh one.
    return sent <= 1 and bool(getattr(exc, "connection_invalidated", False))


#: Drivers that only work on an ``AsyncEngine``.
ASYNC_DRIVERS = ("asyncpg", "aiosqlite")


def url(bind: str | URL, *, asyncio: bool) -> URL:
    try:
        url = make_url(bind)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"SESSION_SQLALCHEMY = {bind!r} is not a database URL: use e.g."
            " 'postgresql://user:password@host/dbname' or 'sqlite:////path/to/sessions.db'."
        ) from exc
    if url.get_backend_name() not in DIALECTS:
        raise ConfigurationError(
            f"The SQLAlchemy store supports PostgreSQL and SQLite, not {url.get_backend_name()}."
        )
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # one driver, blocking and async
    if not asyncio and url.get_driver_name() in ASYNC_DRIVERS:
        raise ConfigurationError(
            f"{url.drivername}:// is an async driver; a blocking app (Flask) needs a blocking"
            " one: postgresql:// (psycopg) or sqlite://."
        )
    if asyncio and url.get_backend_name() == "sqlite" and url.get_driver_name() == "pysqlite":
        raise ConfigurationError(
            f"{url.drivername}:// is a blocking driver; the async store needs an async one"
            " (sqlite+aiosqlite://), or use SESSION_TYPE = 'sqlite', which serves async apps"
            " from a worker thread."
        )
    return url


def one_database_per_engine(engine: Any) -> bool:
    """Whether each engine made from ``engine``'s URL is a database of its own
    (in-memory SQLite): such an engine is kept, never made again."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return False
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def engine_options(url: URL, timeout: float, pool_size: int) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {}
    connect: dict[str, Any] = {}
    if url.get_driver_name() == "psycopg":
        connect["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's minimum is 2
    elif url.get_driver_name() == "asyncpg":
        connect["timeout"] = timeout
    return {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": timeout,
        "connect_args": connect,
    }


def foreign_keys(engine: Engine) -> None:
    """SQLite enforces foreign keys (the data rows' cascades) only when asked, per connection."""
    if engine.dialect.name != "sqlite" or event.contains(engine, "connect", _pragma):
        return
    event.listen(engine, "connect", _pragma)


def _pragma(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def flask_sqlalchemy_engine(db: Any, bind_key: str | None) -> Engine:
    try:
        engines = db.engines
    except RuntimeError as exc:  # outside an app context
        raise ConfigurationError(
            "SESSION_SQLALCHEMY is a Flask-SQLAlchemy db, whose engine belongs to an app:"
            " the store reaches it inside an app context (a request, a flask command)."
        ) from exc
    if bind_key not in engines:
        raise ConfigurationError(
            f"SESSION_SQLALCHEMY_BIND_KEY = {bind_key!r} is not one of the db's binds"
            f" ({', '.join(map(repr, engines))})."
        )
    engine: Engine = engines[bind_key]
    return engine


class Common:
    """What both stores keep: where the tables are, the clock, purge bookkeeping."""

    #: Expired sessions deleted per purge statement.
    purge_batch = 500

    def __init__(
        self,
        table: str,
        schema: str | None,
        clock: Callable[[], float],
        max_per_user: int | None,
        purge_interval: float,
    ) -> None:
        if not table or not isinstance(table, str):
            raise ConfigurationError(f"SESSION_SQLALCHEMY_TABLE must be a name, got {table!r}.")
        self.table = table
        self.schema = schema
        self.max_per_user = max_per_user
        self.purge_interval = purge_interval
        self._clock = clock
        self._next_purge = 0.0
        self._layout: Layout | None = None

    def _tables(self, dialect: str) -> Layout:
        if self._layout is None:
            if dialect not in DIALECTS:
                raise ConfigurationError(
                    f"The SQLAlchemy store supports PostgreSQL and SQLite, not {dialect}."
                )
            self._layout = Layout(self.table, self.schema, dialect)
        return self._layout

    def _reach(self, engine: Any) -> str:
        if engine.dialect.name == "sqlite":
            return "machine"
        return reach_of(engine.url.host)

    def _purge_due(self, now: float) -> bool:
        if now < self._next_purge:
            return False
        self._next_purge = now + self.purge_interval
        return True
