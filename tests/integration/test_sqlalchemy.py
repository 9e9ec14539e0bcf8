"""SQL-store behaviour on a private PostgreSQL: Flask-SQLAlchemy apps, the layout
version, creation races, regeneration under revocation, outages, purge."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

from sharedsession.errors import ConfigurationError
from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore
from sharedsession.stores.sqlalchemy import SQLAlchemyStore
from tests.flask_apps import cookie_of
from tests.flask_apps import make_app
from tests.flask_apps import visit
from tests.helpers import BlockingFacade
from tests.servers import PostgresServer

pytestmark = pytest.mark.integration


def psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


def scalar(url: str, query: str, *before: str) -> Any:
    """Run the ``before`` statements, then ``query``, in one transaction; its first value."""
    engine = sqlalchemy.create_engine(psycopg(url))
    try:
        with engine.begin() as conn:
            for statement in before:
                conn.execute(text(statement))
            return conn.execute(text(query)).scalar()
    finally:
        engine.dispose()


def factory(db: SQLAlchemy, url: str, name: str) -> Flask:
    """An app factory in the Flask-SQLAlchemy style: the db object is shared."""
    app, _ = make_app(name, SQLALCHEMY_DATABASE_URI=psycopg(url), SESSION_TYPE="sqlalchemy",
                      SESSION_SQLALCHEMY=db)  # fmt: skip
    db.init_app(app)
    return app


def dispose(db: SQLAlchemy, *apps: Flask) -> None:
    """Close the connections of the apps' engines (they belong to Flask-SQLAlchemy)."""
    for app in apps:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_flask_sqlalchemy_db_with_two_apps_from_one_factory(postgres_url: str) -> None:
    db = SQLAlchemy()

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id = db.Column(db.Integer, primary_key=True)

    a, b = factory(db, postgres_url, "a"), factory(db, postgres_url, "b")
    with a.app_context():
        db.create_all()  # the app's own tables; the session tables are not in its metadata
    assert set(db.metadata.tables) == {"item"}
    on_a = a.test_client()
    assert on_a.get("/set/user/ann").status_code == 200
    assert visit(b, cookie_of(on_a), "/get/user")[:2] == (200, "'ann'")
    tables = scalar(postgres_url, "SELECT string_agg(tablename, ',' ORDER BY tablename)"
                    " FROM pg_tables WHERE schemaname = 'public'")  # fmt: skip
    assert tables == "item,sharedsession,sharedsession_data,sharedsession_schema"
    dispose(db, a, b)


def test_flask_sqlalchemy_bind_key_and_a_schema(postgres_url: str) -> None:
    scalar(postgres_url, "SELECT 1", "CREATE SCHEMA sessions_here")
    db = SQLAlchemy()
    app, _ = make_app(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SQLALCHEMY_BINDS={"sessions": psycopg(postgres_url)},
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=db,
        SESSION_SQLALCHEMY_BIND_KEY="sessions",
        SESSION_SQLALCHEMY_SCHEMA="sessions_here",
        SESSION_SQLALCHEMY_TABLE="web_sessions",
    )
    db.init_app(app)
    client = app.test_client()
    client.get("/set/user/bob")
    assert client.get("/get/user").text == "'bob'"
    assert scalar(postgres_url, "SELECT count(*) FROM sessions_here.web_sessions_data") == 1
    dispose(db, app)


def test_missing_and_wrong_settings_are_refused(postgres_url: str) -> None:
    with pytest.raises(ConfigurationError, match="needs SESSION_SQLALCHEMY"):
        make_app(SESSION_TYPE="sqlalchemy")
    with pytest.raises(ConfigurationError, match="supports PostgreSQL and SQLite, not mysql"):
        make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY="mysql+pymysql://u@localhost/x")
    with pytest.raises(ConfigurationError, match="SESSION_SQLALCHEMY_TABLE must be a name"):
        make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=postgres_url,
                 SESSION_SQLALCHEMY_TABLE=3)  # fmt: skip
    with pytest.raises(ConfigurationError, match="needs a database URL or an AsyncEngine"):
        AsyncSQLAlchemyStore(sqlalchemy.create_engine(psycopg(postgres_url)))
    db = SQLAlchemy()
    app, _ = make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=db,
                      SQLALCHEMY_DATABASE_URI=psycopg(postgres_url),
                      SESSION_SQLALCHEMY_BIND_KEY="nope")  # fmt: skip
    db.init_app(app)
    app.testing = True
    with pytest.raises(ConfigurationError, match="'nope' is not one of the db's binds"):
        app.test_client().get("/set/a/1")
    dispose(db, app)


def test_a_newer_layout_and_a_foreign_table_are_refused(postgres_url: str) -> None:
    with SQLAlchemyStore(postgres_url) as store:
        store.load(store_key(new_id()))  # creates the tables
    scalar(postgres_url, "SELECT 1", "UPDATE sharedsession_schema SET version = 99")
    with SQLAlchemyStore(postgres_url) as store:
        with pytest.raises(ConfigurationError, match="layout 99, newer than this version"):
            store.load(store_key(new_id()))
    assert scalar(postgres_url, "SELECT version FROM sharedsession_schema") == 99
    # Flask-Session's own table under the name asked for: refused, left alone.
    scalar(postgres_url, "SELECT 1", "CREATE TABLE sessions (id serial, session_id text)")
    with SQLAlchemyStore(postgres_url, table="sessions") as store:
        with pytest.raises(ConfigurationError, match="was not made by sharedsession"):
            store.load(store_key(new_id()))
    assert (
        scalar(postgres_url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'sessions%'") == 1
    )


def race_to_create(store: SQLAlchemyStore, k: str, count: int) -> list[Any]:
    """``count`` threads create ``k`` at once; what each got (a result or an exception)."""
    barrier = threading.Barrier(count)
    results: list[Any] = []

    def create(i: int) -> None:
        barrier.wait()
        now = time.time()
        try:
            results.append(store.apply(k, ChangeSet(now, now + 60, {"n": str(i)}, created=now)))
        except BaseException as exc:  # pragma: no cover - reported by the caller
            results.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_creations_of_one_key_one_wins(postgres_url: str) -> None:
    with SQLAlchemyStore(postgres_url) as store:
        for _ in range(10):
            k = store_key(new_id())
            results = race_to_create(store, k, 8)
            assert sorted(r.value for r in results) == ["applied"] + ["exists"] * 7
            record = store.load(k)
            assert record is not None and len(record.data) == 1


def test_a_revocation_waiting_on_a_regeneration_ends_the_new_id(postgres_url: str) -> None:
    store = SQLAlchemyStore(postgres_url)
    old, new = store_key(new_id()), store_key(new_id())
    now = time.time()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="u"))
    engine = sqlalchemy.create_engine(psycopg(postgres_url))
    revoked: list[bool] = []
    with engine.connect() as conn:
        # The regeneration's first statement, held open: the row is locked.
        conn.execute(text("UPDATE sharedsession SET key = :new WHERE key = :old"),
                     {"new": new, "old": old})  # fmt: skip
        thread = threading.Thread(target=lambda: revoked.append(store.revoke(old)))
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        deadline = time.monotonic() + 10
        while scalar(postgres_url, waiting) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scalar(postgres_url, waiting) == 1  # the revocation waits on the row
        conn.commit()
    thread.join(10)
    assert revoked == [True]
    assert store.load(new) is None and store.load(old) is None
    engine.dispose()
    store.close()


def test_purge_deletes_expired_sessions_in_batches(postgres_url: str) -> None:
    clock = [1000.0]
    store = SQLAlchemyStore(postgres_url, clock=lambda: clock[0], purge_interval=1e9)
    store.purge_batch = 7
    for i in range(30):
        ttl = 10 if i % 2 else 1000
        store.apply(store_key(f"{i:043d}"),
                    ChangeSet(clock[0], clock[0] + ttl, {"a": "1"}, created=1000))  # fmt: skip
    clock[0] += 100
    assert store.purge() == 15
    assert scalar(postgres_url, "SELECT count(*) FROM sharedsession") == 15
    assert scalar(postgres_url, "SELECT count(*) FROM sharedsession_data") == 15
    engine = sqlalchemy.create_engine(psycopg(postgres_url))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # 30 rows: a scan would be cheaper
        query = "EXPLAIN SELECT key FROM sharedsession WHERE expires <= 5 LIMIT 7"
        plan = " ".join(row[0] for row in conn.execute(text(query)))
    engine.dispose()
    assert "Index Cond: (expires <= " in plan and "on sharedsession_expires" in plan, plan
    store.close()


def test_async_store_on_asyncpg_too(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
    with BlockingFacade(AsyncSQLAlchemyStore(url)) as store:
        k = store_key(new_id())
        now = time.time()
        assert store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now)).value == "applied"
        record = store.load(k)
        assert record is not None and dict(record.data) == {"a": "1"}


def test_sqlite_through_sqlalchemy_is_one_machine(tmp_path: Path) -> None:
    with SQLAlchemyStore(f"sqlite:///{tmp_path}/s.db") as store:
        assert store.reach == "machine"
    with pytest.raises(ConfigurationError, match="needs an async one"):
        AsyncSQLAlchemyStore(f"sqlite:///{tmp_path}/s.db")


def test_postgres_is_shared_by_the_network_unless_on_a_loopback_address(
    postgres_url: str,
) -> None:
    with SQLAlchemyStore(postgres_url) as store:
        assert store.reach == "machine"  # the test's private server listens on 127.0.0.1
    with SQLAlchemyStore("postgresql://app@10.0.0.5/sessions") as store:
        assert store.reach == "network"


def test_stopped_database_answers_503_then_works_again(
    postgres_server: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, ext = make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=postgres_url)
    client = app.test_client()
    client.get("/set/user/ann")
    cookie = cookie_of(client)
    postgres_server.stop()
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        status, body, set_cookie = visit(app, cookie, "/get/user")
        assert status == 503 and "unavailable" in body and set_cookie is None
        assert visit(app, cookie, "/set/x/1")[0] == 503
        assert visit(app, cookie, "/untouched")[0] == 200
    assert cookie not in caplog.text
    postgres_server.start()
    # The pool's connections died with the server: the first use retries on a new one.
    assert visit(app, cookie, "/get/user")[:2] == (200, "'ann'")
    assert visit(app, cookie, "/set/x/2")[0] == 200
    assert visit(app, cookie, "/get/x")[:2] == (200, "'2'")
    assert ext.store is not None
    ext.store.close()


def test_sqlite_connections_pooled_before_the_store_keep_data_with_its_session(
    tmp_path: Path,
) -> None:
    """An engine the app used first (create_all, seeding) holds connections on which
    SQLite does not enforce foreign keys: a new ID keeps the data, and sessions that
    end leave no data rows behind."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT 1"))  # pooled, without the store's pragma
    store = SQLAlchemyStore(engine)
    now = time.time()
    first, second, third = store_key(new_id()), store_key(new_id()), store_key(new_id())
    assert store.apply(first, ChangeSet(now, now + 60, {"cart": "[1]"}, created=now)) is (
        ApplyResult.APPLIED
    )
    moved = ChangeSet(now, now + 60, {"user": '"u"'}, replaces=first)
    assert store.apply(second, moved) is ApplyResult.APPLIED
    record = store.load(second)
    assert record is not None and record.data == {"cart": "[1]", "user": '"u"'}
    store.apply(third, ChangeSet(now, now + 60, {"a": "1"}, created=now))
    store.delete(second)
    assert store.revoke(third)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("PRAGMA foreign_keys")).scalar() == 0
        rows = conn.execute(sqlalchemy.text("SELECT * FROM sharedsession_data")).all()
    assert rows == []
    store.close()
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a url", "is not a database URL"),
        ("postgresql+asyncpg://u@127.0.0.1/db", "is an async driver"),
    ],
)
def test_unusable_database_urls_are_refused_with_what_to_use(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=value)


def test_concurrent_first_requests_of_an_async_store_set_it_up_once(postgres_url: str) -> None:
    import asyncio

    async def main() -> list[Any]:
        store = AsyncSQLAlchemyStore(postgres_url)
        try:
            keys = [store_key(new_id()) for _ in range(12)]
            now = time.time()
            created = [ChangeSet(now, now + 60, {"a": "1"}, created=now) for _ in keys]
            results = await asyncio.gather(
                *(store.apply(k, c) for k, c in zip(keys, created, strict=True))
            )
            loaded = await asyncio.gather(*(store.load(k) for k in keys))
            return [*results, *(r is not None and r.data == {"a": "1"} for r in loaded)]
        finally:
            await store.aclose()

    assert asyncio.run(main()) == [ApplyResult.APPLIED] * 12 + [True] * 12
