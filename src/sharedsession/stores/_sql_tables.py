"""The SQL store's tables, its layout version and the operations flows yield.

A flow (see :mod:`._sql_layout`) yields :class:`Execute` and :class:`RunSync`
operations and receives a :class:`Reply` for each; the blocking and the async
store each carry them out on their kind of connection.

The layout is versioned in ``<table>_schema`` (one row, ``layout``). Set-up
creates missing tables, upgrades an older layout in place through
:data:`MIGRATIONS` (in its transaction, under an advisory lock on PostgreSQL so
that processes starting together do it once), and refuses a newer layout or a
table of that name it did not make.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar

from sqlalchemy import Column
from sqlalchemy import Double
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from ..errors import ConfigurationError

#: Dialects whose upsert and ``RETURNING`` the flows use.
DIALECTS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Execute:
    """One statement; ``write`` if it changes data."""

    statement: Executable
    write: bool = False


@dataclass(frozen=True)
class RunSync:
    """A function of a blocking ``Connection`` (DDL and inspection at set-up)."""

    function: Callable[[Connection], Any]


@dataclass(frozen=True)
class Reply:
    """What a statement returned: its rows (``SELECT``, ``RETURNING``) and rowcount."""

    rows: Sequence[Any] = ()
    rowcount: int = 0
    value: Any = None


Op = Execute | RunSync
T = TypeVar("T")
Flow = Generator[Op, Reply, T]


@dataclass
class Layout:
    """The tables of one store, in a private ``MetaData``: several apps and app
    factories can each have a store on one database without "table already
    defined" clashes with each other or with the app's own models."""

    name: str
    schema: str | None
    dialect: str
    metadata: MetaData = field(init=False)
    sessions: Table = field(init=False)
    data: Table = field(init=False)
    versions: Table = field(init=False)

    def __post_init__(self) -> None:
        self.metadata = MetaData(schema=self.schema)
        name = self.name
        self.sessions = Table(
            name,
            self.metadata,
            Column("key", String(128), primary_key=True),
            Column("created", Double, nullable=False),
            Column("absolute", Double),
            Column("expires", Double, nullable=False),
            Column("issued", Double, nullable=False),
            Column("seen", Double, nullable=False),
            Column("user_id", Text),
            Column("client", Text),
            Column("forward", Text),
            Column("handle", String(128)),
            Index(f"{name}_expires", "expires"),
            Index(f"{name}_handle", "handle"),
            Index(f"{name}_user", "user_id"),
        )
        parent = f"{self.schema}.{name}" if self.schema else name
        self.data = Table(
            f"{name}_data",
            self.metadata,
            Column("key", String(128), primary_key=True),
            Column("name", Text, primary_key=True),
            Column("value", Text, nullable=False),
            ForeignKeyConstraint(
                ["key"], [f"{parent}.key"], onupdate="CASCADE", ondelete="CASCADE"
            ),
        )
        self.versions = Table(
            f"{name}_schema",
            self.metadata,
            Column("name", String(64), primary_key=True),
            Column("version", Integer, nullable=False),
        )

    def insert(self, table: Table) -> Any:
        """The dialect's ``INSERT`` with ``ON CONFLICT``."""
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.dialects import sqlite

        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)


#: The layout version this code writes; a database holding a newer one is refused.
SCHEMA_VERSION = 1

#: Upgrades of an older layout, by the version they upgrade from, run in the
#: set-up transaction in order (``ALTER TABLE`` statements, as in the SQLite store).
MIGRATIONS: dict[int, Callable[[Connection, Layout], None]] = {}


def set_up(t: Layout) -> Flow[None]:
    """Create the tables if missing, check the layout version, upgrade an older one."""
    yield RunSync(lambda conn: _set_up(t, conn))


def _lock_id(t: Layout) -> int:
    digest = hashlib.sha256(f"sharedsession:{t.schema}.{t.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _set_up(t: Layout, conn: Connection) -> None:
    if t.dialect == "postgresql":
        # Processes starting together: one creates the tables, the others wait.
        conn.execute(select(func.pg_advisory_xact_lock(_lock_id(t))))
    names = set(inspect(conn).get_table_names(schema=t.schema))
    where = f"{t.schema}.{t.name}" if t.schema else t.name
    if t.sessions.name in names and t.versions.name not in names:
        raise ConfigurationError(
            f"The table {where} exists but was not made by sharedsession (Flask-Session's"
            " table is named 'sessions' by default); set SESSION_SQLALCHEMY_TABLE to a name"
            " of its own."
        )
    t.metadata.create_all(conn)
    v = t.versions
    found = conn.execute(select(v.c.version).where(v.c.name == "layout")).first()
    if found is None:
        conn.execute(v.insert().values(name="layout", version=SCHEMA_VERSION))
        return
    version = int(found[0])
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The tables {where}* hold sessions in layout {version}, newer than this version"
            f" of sharedsession understands ({SCHEMA_VERSION}); upgrade sharedsession or set"
            " SESSION_SQLALCHEMY_TABLE to another name."
        )
    for old in range(version, SCHEMA_VERSION):
        MIGRATIONS[old](conn, t)
    if version < SCHEMA_VERSION:
        conn.execute(update(v).where(v.c.name == "layout").values(version=SCHEMA_VERSION))
