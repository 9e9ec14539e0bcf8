"""SQLite-specific behaviour: many processes on one file, WAL, purge through the index."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.sqlite import SQLiteStore


def _writer(path: str, key: str, worker: int, count: int) -> None:
    store = SQLiteStore(path)
    for i in range(count):
        assert store.load(key) is not None
        now = time.time()
        store.apply(key, ChangeSet(now, now + 60, {f"w{worker}-{i}": str(i)}))
    store.close()


def test_many_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    key = store_key(new_id())
    with SQLiteStore(path) as store:
        now = time.time()
        store.apply(key, ChangeSet(now, now + 60, {"seed": "0"}, created=now))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, key, w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    with SQLiteStore(path) as store:
        record = store.load(key)
    assert record is not None and len(record.data) == 1 + 4 * 25


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    import pytest

    from sharedsession.errors import ConfigurationError

    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer than this version"):
        SQLiteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


def test_purge_removes_only_expired_rows_through_the_index(tmp_path: Path) -> None:
    clock = [1000.0]
    store = SQLiteStore(tmp_path / "s.db", clock=lambda: clock[0], purge_interval=1e9)
    store.purge_batch = 7
    for i in range(30):
        ttl = 10 if i % 2 else 1000
        store.apply(
            store_key(f"{i:043d}"), ChangeSet(clock[0], clock[0] + ttl, {"a": "1"}, created=1000)
        )
    clock[0] += 100
    assert store.purge() == 15
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 15
    assert conn.execute("SELECT count(*) FROM session_data").fetchone()[0] == 15
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT key FROM sessions WHERE expires <= ? LIMIT 10", (0,)
    ).fetchall()
    assert any("sessions_expires" in row[-1] for row in plan)
    conn.close()
    store.close()


def test_reads_do_not_write_within_the_refresh_step(tmp_path: Path) -> None:
    from sharedsession.stores.base import Refresh

    store = SQLiteStore(tmp_path / "s.db")
    key = store_key(new_id())
    now = time.time()
    store.apply(key, ChangeSet(now, now + 3600, {"a": "1"}, created=now))
    conn = sqlite3.connect(tmp_path / "s.db")
    before = conn.execute("SELECT expires FROM sessions").fetchone()[0]
    store.load(key, refresh=Refresh(now + 1, 3600, step=36))
    assert conn.execute("SELECT expires FROM sessions").fetchone()[0] == before
    store.load(key, refresh=Refresh(now + 100, 3600, step=36))
    assert conn.execute("SELECT expires FROM sessions").fetchone()[0] == now + 3700
    conn.close()
    store.close()
