"""The round-trip budget (DESIGN.md) on memcached, counted on the wire against a real memcached."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from pymemcache.client.base import Client

from sharedsession.ids import new_id
from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.flask_apps import trips
from tests.servers import MemcachedServer

pytestmark = pytest.mark.integration


class CountingClient(Client):  # type: ignore[misc]
    """Records every command it sends: one entry is one round trip (a ``get_many``
    or ``delete_many`` of several keys is one too: one request, one reply)."""

    sent: list[str] = []

    def _fetch_cmd(self, name: bytes, *args: Any, **kwargs: Any) -> Any:
        type(self).sent.append(name.decode())
        return super()._fetch_cmd(name, *args, **kwargs)

    def _store_cmd(self, name: bytes, *args: Any, **kwargs: Any) -> Any:
        type(self).sent.append(name.decode())
        return super()._store_cmd(name, *args, **kwargs)

    def _misc_cmd(self, cmds: list[bytes], cmd_name: bytes, *args: Any, **kwargs: Any) -> Any:
        type(self).sent.append(cmd_name.decode())
        return super()._misc_cmd(cmds, cmd_name, *args, **kwargs)


def counted_app(memcached: MemcachedServer, **config: Any) -> Flask:
    # A client object is copied into the store's own connections of the same class.
    client = CountingClient(("127.0.0.1", memcached.port))
    app, _ = make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=client, **config)
    return app


@pytest.fixture
def counted(memcached_flushed: MemcachedServer) -> Iterator[tuple[Flask, list[str]]]:
    yield counted_app(memcached_flushed), CountingClient.sent


def test_no_cookie_and_not_written_is_free(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/untouched") == []
    assert trips(sent, app, "/get/user") == []


def test_new_session_is_one_add(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/set/a/1") == ["add"]


def test_untouched_route_with_cookie_is_free(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/untouched", session_cookie(app)) == []


def test_read_is_one_round_trip(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/get/user", session_cookie(app)) == ["gets"]


def test_unknown_cookie_is_one_round_trip(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/get/user", new_id()) == ["gets"]


def test_write_is_two_round_trips(counted: tuple[Flask, list[str]]) -> None:
    # The write's cas uses the token its own load read: no second read.
    app, sent = counted
    cookie = session_cookie(app)
    assert trips(sent, app, "/set/theme/dark", cookie) == ["gets", "cas"]
    assert trips(sent, app, "/append/apple", cookie) == ["gets", "cas"]
    assert trips(sent, app, "/del/theme", cookie) == ["gets", "cas"]


def test_clear_is_two_round_trips(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    assert trips(sent, app, "/clear", session_cookie(app)) == ["gets", "delete"]


def test_the_refresh_is_one_cas_once_per_step(memcached_flushed: MemcachedServer) -> None:
    # A 100 s lifetime refreshes in steps of 1 s (1% of it).
    app, sent = counted_app(memcached_flushed, PERMANENT_SESSION_LIFETIME=100), CountingClient.sent
    cookie = session_cookie(app)
    time.sleep(1.1)
    assert trips(sent, app, "/get/user", cookie) == ["gets", "cas"]  # the deadline moves
    assert trips(sent, app, "/get/user", cookie) == ["gets"]  # within the step: nothing
    off = counted_app(memcached_flushed, SESSION_REFRESH_EACH_REQUEST=False)
    time.sleep(1.1)
    assert trips(sent, off, "/get/user", cookie) == ["gets"]


def test_login_round_trips(counted: tuple[Flask, list[str]]) -> None:
    app, sent = counted
    load, index, move, create, handle = ["gets"], ["gets", "add"], ["cas"], ["add"], ["gets", "add"]
    # bind_user regenerates: index the session's handle (a new index: gets, add),
    # the old item becomes a tombstone (cas, with the load's token), the new item
    # is added, the handle item is pointed at it.
    first = trips(sent, app, "/login/alice", session_cookie(app, "/set/a/1"))
    assert first == load + index + move + create + handle
    # A second device: the index exists now (gets, cas).
    second = trips(sent, app, "/login/alice", session_cookie(app, "/set/a/1"))
    assert second == load + ["gets", "cas"] + move + create + handle
    # A login of a session that already has a new ID moves its handle item (gets, cas).
    cookie = session_cookie(app, "/set/a/1")
    client = app.test_client()
    client.set_cookie("session", cookie)
    client.get("/regenerate")
    again = client.get_cookie("session")
    assert again is not None
    third = trips(sent, app, "/login/alice", again.value)
    assert third == load + ["gets", "cas"] + move + create + ["gets", "cas"]
