"""The round-trip budget (DESIGN.md), counted on the wire against a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import redis
from flask import Flask

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.flask_apps import trips
from tests.flask_apps import visit
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


class CountingConnection(redis.Connection):
    """Records every request written to the socket: one entry is one round trip."""

    sent: list[str] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = command if isinstance(command, list) else [command]
        head = b"".join(chunks)[:64].split(b"\r\n")
        type(self).sent.append(head[2].decode().upper() if len(head) > 2 else "?")
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def counted(redis_server: RedisServer, redis_client: Any) -> Iterator[tuple[Flask, list[str]]]:
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=client)
    warm = app.test_client()  # first use loads the Lua scripts into the server
    warm.get("/set/a/1")
    warm.get("/get/a")
    warm.get("/set/a/2")
    CountingConnection.sent.clear()
    yield app, CountingConnection.sent
    client.close()


def test_no_cookie_and_not_written_is_free(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/untouched") == []
    assert trips(sent, app, "/get/user") == []


def test_new_session_is_one_write(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/set/a/1") == ["EVALSHA"]


def test_untouched_route_with_cookie_is_free(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/untouched", session_cookie(app)) == []


def test_read_is_one_round_trip_with_the_refresh(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    # A plain HGETALL: no script runs on the server for a read.
    assert trips(sent, app, "/get/user", session_cookie(app)) == ["HGETALL"]


def test_a_refresh_costs_one_more_round_trip_once_per_step(
    counted: tuple[Flask, list[str]], redis_client: Any
) -> None:
    app, sent = counted
    before = set(redis_client.keys("session:{*"))
    cookie = session_cookie(app)
    [name] = set(redis_client.keys("session:{*")) - before
    redis_client.hset(name, ":expires", "1000")  # as if the refresh step had passed
    trips(sent, app, "/get/user", cookie)  # loads the refresh script into the server
    redis_client.hset(name, ":expires", "1000")
    ttl = redis_client.pttl(name)
    redis_client.pexpire(name, ttl // 2)
    assert trips(sent, app, "/get/user", cookie) == ["HGETALL", "EVALSHA"]
    assert float(redis_client.hget(name, ":expires")) > 1000
    assert redis_client.pttl(name) > ttl // 2  # the deadline moved
    assert trips(sent, app, "/get/user", cookie) == ["HGETALL"]  # and not again
    redis_client.hdel(name, ":expires")  # as an earlier version wrote it
    assert trips(sent, app, "/get/user", cookie) == ["HGETALL", "EVALSHA"]
    assert trips(sent, app, "/get/user", cookie) == ["HGETALL"]


def test_read_without_refresh_is_one_round_trip(
    redis_server: RedisServer, redis_client: Any
) -> None:
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=CountingConnection)
    app, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis(connection_pool=pool),
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    sent = CountingConnection.sent
    cookie = session_cookie(app)
    assert trips(sent, app, "/get/user", cookie) == ["HGETALL"]


def test_write_is_two_round_trips(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    cookie = session_cookie(app)
    assert trips(sent, app, "/append/apple", cookie) == ["HGETALL", "EVALSHA"]
    assert trips(sent, app, "/del/user", cookie) == ["HGETALL", "EVALSHA"]


def test_write_without_a_read_is_one_round_trip(
    counted: tuple[Flask, list[str]], redis_client: Any
) -> None:
    app, sent = counted
    cookie = session_cookie(app)
    assert trips(sent, app, "/set/theme/dark", cookie) == ["EVALSHA"]
    assert trips(sent, app, "/get/theme", cookie) == ["HGETALL"]
    assert redis_client.hget(f"session:{{{store_key(cookie)}}}", "theme") == b'"dark"'
    # A session bound to a user: its user index lives as long as it. Within a
    # refresh step of its deadline a write leaves both deadlines as they are.
    bound = session_cookie(app, "/login/ann")
    index = "session:user:ann"
    name = f"session:{{{store_key(bound)}}}"
    deadline = redis_client.hget(name, ":expires")
    assert trips(sent, app, "/set/theme/light", bound) == ["EVALSHA"]
    assert redis_client.hget(name, ":expires") == deadline
    # Written long ago (its deadline more than a step behind): the write moves
    # the deadline, and the index's in a second round trip (the script learns
    # of the binding).
    redis_client.pexpire(index, 5000)
    redis_client.pexpire(name, 5000)
    redis_client.hset(name, ":expires", repr(time.time() + 5))
    assert trips(sent, app, "/set/theme/dark", bound) == ["EVALSHA", "PEXPIRE"]
    # The index first: read later, the hash's TTL has had time to shrink.
    index_ttl = redis_client.pttl(index)
    hash_ttl = redis_client.pttl(name)
    assert hash_ttl > 5000 and index_ttl >= hash_ttl
    assert float(redis_client.hget(name, ":expires")) > time.time() + 60


def test_a_write_moves_the_deadline_and_sends_the_cookie_once_per_refresh_step(
    counted: tuple[Flask, list[str]], redis_client: Any
) -> None:
    app, _ = counted
    cookie = session_cookie(app)
    name = f"session:{{{store_key(cookie)}}}"
    deadline = redis_client.hget(name, ":expires")
    # Written unread, and read then written: within a step of the deadline the
    # cookie has, the deadline stays and no cookie goes out.
    for path in ("/set/theme/dark", "/append/x"):
        assert visit(app, cookie, path)[::2] == (200, None)
        assert redis_client.hget(name, ":expires") == deadline
    # Its deadline more than a step behind (written a while ago): the write
    # moves it, and the cookie goes out with that deadline.
    for path in ("/set/theme/light", "/append/y"):
        redis_client.hset(name, ":expires", repr(time.time() + 5))
        redis_client.pexpire(name, 5000)
        status, _, set_cookie = visit(app, cookie, path)
        assert status == 200 and set_cookie is not None and cookie in set_cookie
        stored = float(redis_client.hget(name, ":expires"))
        assert stored > time.time() + 60 and redis_client.pttl(name) > 60_000
        sent = parsedate_to_datetime(set_cookie.split("Expires=")[1].split(";")[0])
        assert sent.timestamp() == int(stored)
    assert visit(app, cookie, "/get/cart")[1] == "['x', 'y']"


def test_clear_is_two_round_trips(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/clear", session_cookie(app)) == ["HGETALL", "DEL"]


def test_unknown_cookie_is_one_round_trip_plus_the_flask_session_lookup(
    counted: tuple[Flask, list[str]], redis_server: RedisServer
) -> None:
    app, sent = counted
    # Adoption is on by default for Redis: an ID we do not know is looked up
    # in Flask-Session's layout too (GET and PTTL in one pipeline).
    assert trips(sent, app, "/get/user", new_id()) == ["HGETALL", "GET"]
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=CountingConnection)
    plain, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis(connection_pool=pool),
        SESSION_MIGRATE_FROM=None,
    )
    trips(sent, plain, "/get/user", new_id())  # opens its own connection
    assert trips(sent, plain, "/get/user", new_id()) == ["HGETALL"]


def test_scripts_are_loaded_once_per_server(redis_server: RedisServer, redis_client: Any) -> None:
    redis_client.script_flush()
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=CountingConnection)
    store = RedisStore(redis.Redis(connection_pool=pool))
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    sent = CountingConnection.sent
    sent.clear()
    cookie = session_cookie(app)
    handshake = {"HELLO", "CLIENT"}  # once per new connection
    first = [command for command in sent if command not in handshake]
    assert first == ["EVALSHA", "SCRIPT", "EVALSHA"]  # NOSCRIPT, load, retry: first use only
    assert trips(sent, app, "/append/b", cookie) == ["HGETALL", "EVALSHA"]
    assert trips(sent, app, "/append/c", cookie) == ["HGETALL", "EVALSHA"]
    # A write that never reads has a script of its own, loaded on its first use.
    assert trips(sent, app, "/set/b/2", cookie) == ["EVALSHA", "SCRIPT", "EVALSHA"]
    assert trips(sent, app, "/set/c/3", cookie) == ["EVALSHA"]


def test_login_round_trips(counted: tuple[Flask, list[str]], redis_server: RedisServer) -> None:
    app, sent = counted
    trips(sent, app, "/login/warm", session_cookie(app))  # loads the regeneration script
    load, (index, move, create, handle) = ["HGETALL"], (["EVALSHA"],) * 4
    # bind_user regenerates: index the session's handle (one script), take the
    # old hash, create the new one, point the handle at it.
    first = trips(sent, app, "/login/alice", session_cookie(app))
    assert first == load + index + move + create + handle
    # A second device costs the same: a login never walks the user's other sessions,
    # however many there are.
    second = trips(sent, app, "/login/alice", session_cookie(app))
    assert second == load + index + move + create + handle
    client: Any = redis.Redis(port=redis_server.port)
    client.zadd("session:user:alice", {f"old-device-{i}": i for i in range(10_000)})
    client.close()
    many = trips(sent, app, "/login/alice", session_cookie(app))
    assert many == load + index + move + create + handle


def test_adopting_a_flask_session_session_costs_four_then_one(
    counted: tuple[Flask, list[str]], redis_client: Any
) -> None:
    import msgspec

    app, sent = counted
    sid = new_id()
    redis_client.set(f"session:{sid}", msgspec.msgpack.encode({"user": "ann"}), ex=600)
    # Unknown here: look in Flask-Session's layout (one pipeline), create the
    # session here, delete Flask-Session's key.
    assert trips(sent, app, "/get/user", sid) == ["HGETALL", "GET", "EVALSHA", "DEL"]
    assert trips(sent, app, "/get/user", sid) == ["HGETALL"]  # adopted: a plain read
