"""Round trips to PostgreSQL per request, counted by the server: every statement it
received from the store's connections (``log_statement = all`` for them only)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy
from flask import Flask

from sharedsession.ids import new_id
from sharedsession.stores.sqlalchemy import SQLAlchemyStore
from tests.flask_apps import make_app
from tests.flask_apps import sent_by
from tests.flask_apps import session_cookie
from tests.servers import PostgresServer

pytestmark = pytest.mark.integration

# "[app] LOG:  statement: BEGIN" (simple protocol) or "[app] LOG:  execute <unnamed>: SELECT"
STATEMENT = re.compile(r"^\[(?P<app>[^\]]*)\] LOG:  (?:statement|execute [^:]*): (?P<sql>\w+)")


class ServerLog:
    """The statements one client sent, read from the server's log as they arrive."""

    def __init__(self, server: PostgresServer, name: str) -> None:
        self.path = server.log_path
        self.name = name
        self.offset = self.path.stat().st_size

    def since_last(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
            self.offset = log.tell()
        found = [STATEMENT.match(line) for line in text.splitlines()]
        return [m["sql"].upper() for m in found if m is not None and m["app"] == self.name]


@pytest.fixture
def counted(
    postgres_server: PostgresServer, postgres_url: str
) -> Iterator[tuple[Flask, ServerLog]]:
    name = f"trips-{new_id()[:8]}"
    engine = sqlalchemy.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"),
        connect_args={"application_name": name, "options": "-c log_statement=all"},
    )
    store = SQLAlchemyStore(engine)
    app, _ = make_app(SESSION_TYPE="sqlalchemy", store=store)
    warm = app.test_client()  # creates the tables, opens a connection, runs the first purge
    warm.get("/set/a/1")
    warm.get("/get/a")
    log = ServerLog(postgres_server, name)
    yield app, log
    store.close()
    engine.dispose()


def trips(log: ServerLog, app: Flask, path: str, cookie: str | None = None) -> list[str]:
    return sent_by(app, path, cookie, log.since_last)


def test_untouched_and_cookieless_reads_are_free(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    assert trips(log, app, "/untouched", session_cookie(app)) == []
    assert trips(log, app, "/get/user") == []


def test_read_is_one_statement(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    # The refresh writes only when the deadline moved by more than its step.
    assert trips(log, app, "/get/user", session_cookie(app)) == ["SELECT"]


def test_new_session_is_one_transaction(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    assert trips(log, app, "/set/a/1") == ["BEGIN", "INSERT", "INSERT", "COMMIT"]


def test_write_is_a_read_and_one_short_transaction(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    cookie = session_cookie(app)
    write = ["SELECT", "BEGIN", "UPDATE", "INSERT", "COMMIT"]
    assert trips(log, app, "/set/theme/dark", cookie) == write
    assert trips(log, app, "/append/apple", cookie) == write
    # A deleted key: its row goes, and the session with it if it was the last.
    assert trips(log, app, "/del/theme", cookie) == [
        "SELECT", "BEGIN", "UPDATE", "DELETE", "DELETE", "COMMIT"
    ]  # fmt: skip


def test_clear_is_two_statements(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    assert trips(log, app, "/clear", session_cookie(app)) == ["SELECT", "DELETE"]


def test_login_moves_the_row_in_one_transaction(counted: tuple[Flask, ServerLog]) -> None:
    app, log = counted
    # The row takes its new key and the binding in place (the data rows follow by
    # cascade); "user" is already "alice" here, so no key row is written.
    assert trips(log, app, "/login/alice", session_cookie(app)) == [
        "SELECT", "BEGIN", "UPDATE", "COMMIT"
    ]  # fmt: skip
    # Here "user" changes: one upsert more. However many sessions bob has.
    for _ in range(3):
        assert trips(log, app, "/login/bob", session_cookie(app)) == [
            "SELECT", "BEGIN", "UPDATE", "INSERT", "COMMIT"
        ]  # fmt: skip
