"""SQLiteStore: the embedded default, one file shared by every process on a machine.

Layout: a row per session in ``sessions`` and a row per key in
``session_data``, so a save changes single keys inside one short
``BEGIN IMMEDIATE`` transaction. WAL mode lets readers run while one process
writes; expired rows are purged through the index on ``expires``, a bounded
batch at a time, never with a full-table scan.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from ..errors import ConfigurationError
from ..errors import StoreError
from ..errors import StoreUnavailable
from ..expiry import cap
from .base import ApplyResult
from .base import ChangeSet
from .base import Closing
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession
from .offload import AsyncOffloadStore

if TYPE_CHECKING:
    from .._config import Settings

SCHEMA_VERSION = 3

logger = logging.getLogger("sharedsession")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    absolute REAL,
    expires REAL NOT NULL,
    issued REAL NOT NULL,
    seen REAL NOT NULL,
    user_id TEXT,
    client TEXT,
    forward TEXT,
    handle TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE INDEX IF NOT EXISTS sessions_handle ON sessions (handle);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS session_data (
    key TEXT NOT NULL REFERENCES sessions (key) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, name)
) WITHOUT ROWID;
"""

# Older files gain the renewal marker column (2), then the stable handle (3).
_MIGRATIONS = {
    1: "ALTER TABLE sessions ADD COLUMN forward TEXT",
    2: "ALTER TABLE sessions ADD COLUMN handle TEXT;UPDATE sessions SET handle = key",
}

_LOAD = """
SELECT s.created, s.absolute, s.expires, s.issued, s.user_id, s.forward,
       COALESCE(s.handle, s.key), d.name, d.value
FROM sessions AS s LEFT JOIN session_data AS d ON d.key = s.key
WHERE s.key = ?
"""

# Regeneration: the new row first (session_data points at it), then the old one
# goes, or becomes a renewal's forwarding marker.
_MOVE = (
    "INSERT INTO sessions"
    " (key, created, absolute, expires, issued, seen, user_id, client, handle)"
    " SELECT ?, created, absolute, expires, ?, seen, user_id, client, COALESCE(handle, key)"
    " FROM sessions WHERE key = ?",
    "UPDATE session_data SET key = ? WHERE key = ?",
    "DELETE FROM sessions WHERE key = ?",
)
_MARK = "UPDATE sessions SET forward = ?, expires = ?, user_id = NULL, client = NULL WHERE key = ?"


def _readable(rows: list[Any]) -> bool:
    """Whether a loaded session's columns hold what this store writes (SQLite
    accepts any type in any column); if not, it is no session, never a 500."""
    number = (int, float)
    created, absolute, expires, issued = rows[0][:4]
    ok = all(type(v) in number for v in (created, expires, issued)) and (
        absolute is None or type(absolute) in number
    )
    if not ok:
        logger.warning("a stored session has unreadable metadata; ignoring it")
    return ok


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        # "database is locked" after busy_timeout, disk I/O errors, a vanished file.
        raise StoreUnavailable(f"SQLite session store unavailable: {exc}", exc) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite session store failed: {exc}", exc) from exc


class SQLiteStore(Closing):
    """Sessions in one SQLite file, safe for many threads and processes at once.

    :param path: The database file; its folder must exist.
    :param timeout: Seconds to wait for another process's write lock.
    :param purge_interval: Seconds between purges of expired sessions done
        by writes in this process.
    :param clock: Returns the time in epoch seconds.
    :param max_per_user: End a user's oldest sessions beyond this many, at login.
    """

    #: Who shares these sessions: the processes of one machine.
    reach = "machine"

    #: Expired sessions deleted per purge batch.
    purge_batch = 500

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        max_per_user: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.max_per_user = max_per_user
        self.timeout = timeout
        self.purge_interval = purge_interval
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._next_purge = 0.0
        if self.path != ":memory:" and not os.path.exists(self.path):
            # Sessions are secrets: only this user may read the file (SQLite
            # gives its -wal and -shm files the same mode).
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with _mapped_errors():
            self._setup(self._conn())

    def _setup(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} holds sessions in schema {version}, newer than this version of"
                f" sharedsession understands ({SCHEMA_VERSION}); upgrade sharedsession or"
                " point SESSION_SQLITE_PATH at another file."
            )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for old in range(version, SCHEMA_VERSION) if version else ():
                for statement in _MIGRATIONS[old].split(";"):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # A forked worker must not share its parent's connections.
            self._local = threading.local()
            self._connections = []
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with _mapped_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        now = self._clock()
        with _mapped_errors():
            conn = self._conn()
            rows = conn.execute(_LOAD, (key,)).fetchall()
            if not rows or not _readable(rows) or rows[0][2] <= now:
                return None
            created, absolute, expires, issued, user_id, forward, handle = rows[0][:7]
            if forward is not None:
                return Record({}, created, forward=forward)
            refreshed = False
            if refresh is not None:
                deadline = cap(refresh.now + refresh.ttl, absolute)
                if deadline - expires > refresh.step:
                    refreshed = True
                    # Autocommit; a concurrent delete wins, the update then matches nothing.
                    conn.execute(
                        "UPDATE sessions SET expires = ?, seen = ? WHERE key = ? AND expires < ?",
                        (deadline, refresh.now, key, deadline),
                    )
        data = {name: value for *_, name, value in rows if name is not None}
        return Record(data, created, absolute, issued, user_id, refreshed=refreshed, handle=handle)

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        now = self._clock()
        with self._write() as conn:
            if not self._make_room(conn, key, changes, now):
                return ApplyResult.EXISTS if self._live(conn, key, now) else ApplyResult.GONE
            conn.execute(
                "UPDATE sessions SET expires = ?, seen = ? WHERE key = ?",
                (changes.expires, changes.now, key),
            )
            if changes.bind:
                conn.execute(
                    "UPDATE sessions SET user_id = ?, client = ? WHERE key = ?",
                    (changes.user_id, json.dumps(dict(changes.client)), key),
                )
                if changes.user_id is not None and self.max_per_user:
                    # The oldest beyond the limit end, in the same transaction.
                    # The sessions bound longest ago go; the one logging in now stays.
                    conn.execute(
                        "DELETE FROM sessions WHERE key IN (SELECT key FROM sessions"
                        " WHERE user_id = ? AND key != ? AND expires > ?"
                        " ORDER BY issued DESC LIMIT -1 OFFSET ?)",
                        (changes.user_id, key, now, self.max_per_user - 1),
                    )
            if changes.clear:
                conn.execute("DELETE FROM session_data WHERE key = ?", (key,))
            conn.executemany(
                "DELETE FROM session_data WHERE key = ? AND name = ?",
                [(key, name) for name in changes.delete],
            )
            conn.executemany(
                "INSERT INTO session_data (key, name, value) VALUES (?, ?, ?)"
                " ON CONFLICT (key, name) DO UPDATE SET value = excluded.value",
                [(key, name, value) for name, value in changes.set.items()],
            )
            empty = conn.execute(
                "SELECT user_id IS NULL AND NOT EXISTS (SELECT 1 FROM session_data WHERE key = ?)"
                " FROM sessions WHERE key = ?",
                (key, key),
            ).fetchone()[0]
            if empty or changes.expires <= now:
                conn.execute("DELETE FROM sessions WHERE key = ?", (key,))
        if now >= self._next_purge:
            self._next_purge = now + self.purge_interval
            self.purge()
        return ApplyResult.APPLIED

    @staticmethod
    def _live(conn: sqlite3.Connection, key: str, now: float) -> bool:
        # A forwarding marker is not a session: never written, never replaced.
        row = conn.execute("SELECT expires, forward FROM sessions WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] > now and row[1] is None

    def _make_room(
        self, conn: sqlite3.Connection, key: str, changes: ChangeSet, now: float
    ) -> bool:
        """Make sure a live row is at ``key`` for ``changes``; False if it cannot be."""
        if changes.created is None and changes.replaces is None:
            return self._live(conn, key, now)
        if conn.execute(
            "SELECT 1 FROM sessions WHERE key = ? AND expires > ?", (key, now)
        ).fetchone():
            return False
        conn.execute("DELETE FROM sessions WHERE key = ?", (key,))  # an expired leftover
        if changes.replaces is not None:
            if not self._live(conn, changes.replaces, now):
                return False
            insert, move, delete = _MOVE
            conn.execute(insert, (key, changes.now, changes.replaces))
            conn.execute(move, (key, changes.replaces))
            if changes.forward is None:
                conn.execute(delete, (changes.replaces,))
            else:
                conn.execute(_MARK, (changes.forward, changes.forward_until, changes.replaces))
            return True
        conn.execute(
            "INSERT INTO sessions (key, created, absolute, expires, issued, seen, handle)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                changes.created,
                changes.absolute,
                changes.expires,
                changes.now,
                changes.now,
                key,
            ),
        )
        return True

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        rows = self._select("user_id = ?", (user_id,))
        return [SessionInfo(s.handle, user_id, s.created, s.last_seen, s.client) for s in rows]

    def sessions(self) -> Iterator[StoredSession]:
        yield from self._select("1", ())

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        found = self._select("handle = ?", (handle,))
        if not found:
            return None
        record = self.load(found[0].key)
        return None if record is None else (found[0], record)

    def revoke(self, handle: str) -> bool:
        with _mapped_errors():
            cursor = self._conn().execute(
                "DELETE FROM sessions WHERE handle = ? AND forward IS NULL AND expires > ?",
                (handle, self._clock()),
            )
        return cursor.rowcount > 0

    def _select(self, where: str, args: tuple[Any, ...]) -> list[StoredSession]:
        query = (
            "SELECT key, COALESCE(handle, key), created, seen, user_id, client,"
            " (SELECT COALESCE(SUM(LENGTH(name) + LENGTH(CAST(value AS BLOB))), 0)"
            "  FROM session_data AS d WHERE d.key = s.key)"
            f" FROM sessions AS s WHERE {where} AND expires > ? AND forward IS NULL"
            " ORDER BY created"
        )
        with _mapped_errors():
            rows = self._conn().execute(query, (*args, self._clock())).fetchall()
        return [
            StoredSession(handle, key, created, seen, user, json.loads(client or "{}"), size)
            for key, handle, created, seen, user, client, size in rows
        ]

    def delete(self, key: str) -> None:
        with _mapped_errors():
            self._conn().execute("DELETE FROM sessions WHERE key = ?", (key,))

    def purge(self) -> int:
        """Delete expired sessions, a batch at a time; return how many went."""
        total = 0
        while True:
            with self._write() as conn:
                cursor = conn.execute(
                    "DELETE FROM sessions WHERE key IN"
                    " (SELECT key FROM sessions WHERE expires <= ? LIMIT ?)",
                    (self._clock(), self.purge_batch),
                )
            total += cursor.rowcount
            if cursor.rowcount < self.purge_batch:
                return total

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


class AsyncSQLiteStore(AsyncOffloadStore):
    """The async twin of :class:`SQLiteStore`: the same store, each call in a worker thread.

    :param path: The database file; its folder must exist.
    :param options: Passed on to :class:`SQLiteStore`.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(SQLiteStore(path, **options))


def from_settings(settings: Settings, *, asyncio: bool) -> SQLiteStore | AsyncSQLiteStore:
    """The store for ``SESSION_TYPE = "sqlite"`` at ``SESSION_SQLITE_PATH``."""
    os.makedirs(os.path.dirname(os.path.abspath(settings.sqlite_path)), mode=0o700, exist_ok=True)
    limit = settings.max_per_user
    if asyncio:
        return AsyncSQLiteStore(settings.sqlite_path, max_per_user=limit)
    return SQLiteStore(settings.sqlite_path, max_per_user=limit)
