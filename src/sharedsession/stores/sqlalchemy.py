"""SQLAlchemyStore and AsyncSQLAlchemyStore: sessions in PostgreSQL or SQLite, on SQLAlchemy 2.

Each store operation is a flow in :mod:`._sql_layout` (the tables, the
statements and the logic, written once); these classes only drive the flows,
one on a blocking ``Engine`` and one on an ``AsyncEngine``. A read is one
statement in autocommit; a save is one short transaction that changes just
the keys that changed, conditional on the session still existing.

The store takes a database URL, an ``Engine`` (``AsyncEngine`` for the async
store) or a Flask-SQLAlchemy ``db``, whose engine is looked up in the app
context of the first request. Its tables live in a private ``MetaData``, so
they never clash with the app's models or with another app's store, and are
created on first use.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from sqlalchemy import create_engine
from sqlalchemy import exc as sa_errors
from sqlalchemy.engine import URL
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ..errors import ConfigurationError
from ..errors import StoreError
from . import _sql_engines as engines
from . import _sql_layout as layout
from . import _sql_tables as sql
from ._per_loop import PerLoop
from .base import ApplyResult
from .base import AsyncClosing
from .base import ChangeSet
from .base import Closing
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession

if TYPE_CHECKING:
    from .._config import Settings

T = TypeVar("T")

logger = logging.getLogger("sharedsession")

#: Flask-Session names its table ``sessions``; a name of our own lets both live
#: in one database while an app switches.
DEFAULT_TABLE = "sharedsession"
#: Seconds to connect, and to wait for a free pooled connection.
DEFAULT_TIMEOUT = 2.0
#: Connections of an engine made from a URL (no overflow: the bound is real).
DEFAULT_POOL_SIZE = 10


class SQLAlchemyStore(engines.Common, Closing):
    """Sessions in a SQL database through a blocking SQLAlchemy 2 engine.

    :param bind: A database URL (``postgresql://`` uses psycopg 3), an ``Engine``,
        or a Flask-SQLAlchemy ``db`` (its engine is looked up in the app context).
    :param table: Name of the sessions table; the key rows go in ``<table>_data``,
        the layout version in ``<table>_schema``.
    :param schema: The database schema of the tables (``None``: the default).
    :param bind_key: With a Flask-SQLAlchemy ``db``: which of its binds.
    :param clock: Returns the time in epoch seconds; expiry is decided with it.
    :param max_per_user: End a user's oldest sessions beyond this many, at login.
    :param purge_interval: Seconds between purges of expired sessions done by
        writes in this process.
    :param timeout: With a URL: seconds to connect, and to wait for a free connection.
    :param pool_size: With a URL: connections in the pool (at most this many
        operations at once; more wait up to ``timeout``).
    """

    def __init__(
        self,
        bind: Any,
        *,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        bind_key: str | None = None,
        clock: Callable[[], float] = time.time,
        max_per_user: int | None = None,
        purge_interval: float = 60.0,
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        super().__init__(table, schema, clock, max_per_user, purge_interval)
        self._owned = isinstance(bind, (str, URL))
        self._db: Any = None
        self._engine: Engine | None = None
        if self._owned:
            url = engines.url(bind, asyncio=False)
            engine = create_engine(url, **engines.engine_options(url, timeout, pool_size))
            # An app that never closes its store still closes its connections.
            weakref.finalize(self, engine.dispose)
            self._use(engine)
        elif isinstance(bind, AsyncEngine):
            raise ConfigurationError(
                "An AsyncEngine serves the async store (Quart, ASGI); Flask needs a blocking"
                " Engine, a database URL or a Flask-SQLAlchemy db."
            )
        elif isinstance(bind, Engine):
            self._use(bind)
        elif hasattr(type(bind), "engines"):  # a Flask-SQLAlchemy db
            self._db = bind
        else:
            raise ConfigurationError(
                "SESSION_SQLALCHEMY must be a database URL, an Engine or a Flask-SQLAlchemy"
                f" db, got {type(bind).__name__}."
            )
        self.bind_key = bind_key
        self._lock = threading.Lock()
        self._ready = False

    @property
    def reach(self) -> str | None:
        """Who shares these sessions: ``"network"``, or ``"machine"`` for SQLite or a
        server on a loopback address or a Unix socket;
        ``None`` while a Flask-SQLAlchemy ``db``'s engine cannot be looked up
        (outside an app context)."""
        engine = self._engine
        if engine is None:
            try:
                engine = engines.flask_sqlalchemy_engine(self._db, self.bind_key)
            except (ConfigurationError, RuntimeError, KeyError):
                return None
        return self._reach(engine)

    def _use(self, engine: Engine) -> None:
        engines.foreign_keys(engine)
        self._tables(engine.dialect.name)
        self._engine = engine

    def _engines(self) -> tuple[Engine, sql.Layout]:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._use(engines.flask_sqlalchemy_engine(self._db, self.bind_key))
        assert self._engine is not None and self._layout is not None
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._drive(self._engine, sql.set_up(self._layout), write=True)
                    self._ready = True
        return self._engine, self._layout

    def _run(self, make: Callable[[sql.Layout], sql.Flow[T]], *, write: bool) -> T:
        engine, t = self._engines()
        if not write:
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            return self._drive(engine, make(t), write=write)
        except _Retry:
            return self._drive(engine, make(t), write=write)

    def _drive(self, engine: Engine, flow: sql.Flow[T], *, write: bool) -> T:
        sent = 0
        try:
            with engine.connect() as conn:
                try:
                    op = next(flow)
                    while True:
                        sent += 1
                        op = flow.send(self._do(conn, op))
                except StopIteration as stop:
                    result: T = stop.value
                if write and result in (ApplyResult.GONE, ApplyResult.EXISTS):
                    conn.rollback()
                elif write:
                    conn.commit()
                return result
        except (sa_errors.SQLAlchemyError, OSError) as exc:
            if engines.retryable(exc, sent):
                raise _Retry from exc
            raise engines.mapped(exc) from exc

    @staticmethod
    def _do(conn: Connection, op: sql.Op) -> sql.Reply:
        if isinstance(op, sql.RunSync):
            return sql.Reply(value=op.function(conn))
        result = conn.execute(op.statement)
        rows = result.all() if result.returns_rows else ()
        return sql.Reply(rows, result.rowcount)

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        now = self._clock()
        return self._run(lambda t: layout.load(t, key, refresh, now), write=False)

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        now, limit = self._clock(), self.max_per_user
        result = self._run(lambda t: layout.apply(t, key, changes, now, limit), write=True)
        if self._purge_due(now):
            self._background_purge()
        return result

    def _background_purge(self) -> None:
        try:
            self.purge()
        except StoreError as exc:  # the save itself went through
            logger.warning("purging expired sessions failed: %s", exc)

    def delete(self, key: str) -> None:
        self._run(lambda t: layout.delete_key(t, key), write=False)

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        now = self._clock()
        return self._run(lambda t: layout.sessions_for_user(t, user_id, now), write=False)

    def sessions(self) -> Iterator[StoredSession]:
        now = self._clock()
        yield from self._run(lambda t: layout.select_sessions(t, now), write=False)

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        now = self._clock()
        return self._run(lambda t: layout.session(t, handle, now), write=False)

    def revoke(self, handle: str) -> bool:
        now = self._clock()
        return self._run(lambda t: layout.revoke(t, handle, now), write=False)

    def purge(self) -> int:
        """Delete expired sessions, a batch at a time; return how many went."""
        now, batch = self._clock(), self.purge_batch
        return self._run(lambda t: layout.purge(t, now, batch), write=False)

    def close(self) -> None:
        if self._owned and self._engine is not None:
            self._engine.dispose()


class _Retry(Exception):
    """The flow's connection had died before it did anything: run it again."""


class AsyncSQLAlchemyStore(engines.Common, AsyncClosing):
    """The async twin of :class:`SQLAlchemyStore`, on an ``AsyncEngine``.

    :param bind: A database URL (``postgresql://`` uses psycopg 3's async
        connections; ``postgresql+asyncpg://`` works too) or an ``AsyncEngine``.
    :param options: As for :class:`SQLAlchemyStore` (``table``, ``schema``,
        ``clock``, ``max_per_user``, ``purge_interval``, ``timeout``, ``pool_size``).
    """

    def __init__(
        self,
        bind: Any,
        *,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        clock: Callable[[], float] = time.time,
        max_per_user: int | None = None,
        purge_interval: float = 60.0,
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        super().__init__(table, schema, clock, max_per_user, purge_interval)
        self._owned = isinstance(bind, (str, URL))
        self._make: Callable[[], AsyncEngine] | None = None
        if self._owned:
            url = engines.url(bind, asyncio=True)
            options = engines.engine_options(url, timeout, pool_size)
            self._make = functools.partial(create_async_engine, url, **options)
            bind = self._make()
        if not isinstance(bind, AsyncEngine):
            raise ConfigurationError(
                "The async store (Quart, ASGI) needs a database URL or an AsyncEngine"
                f" (sqlalchemy.ext.asyncio.create_async_engine), got {type(bind).__name__}."
            )
        engines.foreign_keys(bind.sync_engine)
        self._tables(bind.dialect.name)
        self._engine = bind
        # An engine per event loop: its pooled connections (asyncpg's, or any
        # once a caller waited for one) work only on the loop that opened them;
        # but a new in-memory SQLite engine is a new, empty database.
        self._one_engine = engines.one_database_per_engine(bind)
        self._engines: PerLoop[AsyncEngine] = PerLoop(self._engine_for_loop, self._at_loop_end)
        self._ready = False

    def _engine_for_loop(self, first: bool) -> AsyncEngine:
        if first or self._one_engine:
            return self._engine
        if self._make is not None:
            made = self._make()
            engines.foreign_keys(made.sync_engine)
            return made
        if not isinstance(self._engine.pool, NullPool):  # (no pooled connection: any loop)
            self._engines.warn_once(
                "AsyncSQLAlchemyStore runs on a second event loop with the app's own"
                " AsyncEngine, whose pooled connections belong to the first loop; give"
                " the store a URL (it makes an engine per loop), or make the engine"
                " with poolclass=NullPool"
            )
        return self._engine

    async def _at_loop_end(self, engine: AsyncEngine) -> None:
        if self._owned and not self._one_engine:
            await engine.dispose()

    @property
    def reach(self) -> str:
        """Who shares these sessions: as :attr:`SQLAlchemyStore.reach`."""
        return self._reach(self._engine)

    async def _run(self, make: Callable[[sql.Layout], sql.Flow[T]], *, write: bool) -> T:
        engine = self._engines.get()
        if engine is None:
            engine = await self._engines.here()
        t = self._tables(engine.dialect.name)
        if not self._ready:
            try:
                await self._drive(engine, sql.set_up(t), write=True)
            except StoreError:
                # Concurrent first requests race to create the tables (no lock
                # spans event loops): the loser finds them made on a second look.
                await self._drive(engine, sql.set_up(t), write=True)
            self._ready = True
        if not write:
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            return await self._drive(engine, make(t), write=write)
        except _Retry:
            return await self._drive(engine, make(t), write=write)

    async def _drive(self, engine: AsyncEngine, flow: sql.Flow[T], *, write: bool) -> T:
        sent = 0
        try:
            async with engine.connect() as conn:
                try:
                    op = next(flow)
                    while True:
                        sent += 1
                        op = flow.send(await self._do(conn, op))
                except StopIteration as stop:
                    result: T = stop.value
                if write and result in (ApplyResult.GONE, ApplyResult.EXISTS):
                    await conn.rollback()
                elif write:
                    await conn.commit()
                return result
        except (sa_errors.SQLAlchemyError, OSError) as exc:
            if engines.retryable(exc, sent):
                raise _Retry from exc
            raise engines.mapped(exc) from exc

    @staticmethod
    async def _do(conn: AsyncConnection, op: sql.Op) -> sql.Reply:
        if isinstance(op, sql.RunSync):
            return sql.Reply(value=await conn.run_sync(op.function))
        result = await conn.execute(op.statement)
        rows = result.all() if result.returns_rows else ()
        return sql.Reply(rows, result.rowcount)

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        now = self._clock()
        return await self._run(lambda t: layout.load(t, key, refresh, now), write=False)

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        now, limit = self._clock(), self.max_per_user
        result = await self._run(lambda t: layout.apply(t, key, changes, now, limit), write=True)
        if self._purge_due(now):
            await self._background_purge()
        return result

    async def _background_purge(self) -> None:
        try:
            await self.purge()
        except StoreError as exc:  # the save itself went through
            logger.warning("purging expired sessions failed: %s", exc)

    async def delete(self, key: str) -> None:
        await self._run(lambda t: layout.delete_key(t, key), write=False)

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        now = self._clock()
        return await self._run(lambda t: layout.sessions_for_user(t, user_id, now), write=False)

    async def sessions(self) -> AsyncIterator[StoredSession]:
        now = self._clock()
        for stored in await self._run(lambda t: layout.select_sessions(t, now), write=False):
            yield stored

    async def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        now = self._clock()
        return await self._run(lambda t: layout.session(t, handle, now), write=False)

    async def revoke(self, handle: str) -> bool:
        now = self._clock()
        return await self._run(lambda t: layout.revoke(t, handle, now), write=False)

    async def purge(self) -> int:
        """Delete expired sessions, a batch at a time; return how many went."""
        now, batch = self._clock(), self.purge_batch
        return await self._run(lambda t: layout.purge(t, now, batch), write=False)

    async def aclose(self) -> None:
        """Dispose of the running event loop's engine, if the store made it (a
        loop that ends disposes of its own)."""
        engine = await self._engines.take()
        if engine is None and not self._engines.started:
            engine = self._engine
        if engine is not None and self._owned:
            await engine.dispose()


def from_settings(settings: Settings, *, asyncio: bool) -> SQLAlchemyStore | AsyncSQLAlchemyStore:
    """The store for ``SESSION_TYPE = "sqlalchemy"`` (``SESSION_SQLALCHEMY`` and its keys)."""
    options = settings.sqlalchemy
    if options.bind is None:
        raise ConfigurationError(
            "SESSION_TYPE = 'sqlalchemy' needs SESSION_SQLALCHEMY: a database URL"
            " (postgresql://user:password@host/db), an Engine or a Flask-SQLAlchemy db"
            " (or set SQLALCHEMY_DATABASE_URI)."
        )
    common: dict[str, Any] = {
        "table": options.table,
        "schema": options.schema,
        "max_per_user": settings.max_per_user,
    }
    if asyncio:
        if options.bind_key is not None:
            raise ConfigurationError(
                "SESSION_SQLALCHEMY_BIND_KEY names a Flask-SQLAlchemy bind, whose engines are"
                " blocking; the async store needs a URL or an AsyncEngine instead."
            )
        return AsyncSQLAlchemyStore(options.bind, **common)
    return SQLAlchemyStore(options.bind, bind_key=options.bind_key, **common)
