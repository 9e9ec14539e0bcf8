"""The Redis store's kept connections: bounded, never starving the pool, fork-safe,
never holding a reply that a timed-out command left behind, kept only on the
store's own pool, and pipelines that survive a flushed script cache. Against a
real redis-server and Sentinel."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import redis
from flask import Flask

from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.flask_apps import visit
from tests.servers import RedisServer
from tests.servers import SentinelSetup
from tests.servers import wait_until

pytestmark = pytest.mark.integration


def named(redis_client: Any, name: str) -> int:
    """Connections the server has open under the client name ``name``."""
    return sum(1 for client in redis_client.client_list() if client.get("name") == name)


def writes_in_threads(app: Flask, cookies: list[str], count: int) -> list[str]:
    """Each cookie's session written ``count`` times in a thread of its own, all at
    once; the answers that were not 200."""
    failures: list[str] = []

    def busy(cookie: str) -> None:
        for i in range(count):
            status, text, _ = visit(app, cookie, f"/set/n/{i}")
            if status != 200:
                failures.append(f"{status} {text[:80]}")

    threads = [threading.Thread(target=busy, args=(cookie,)) for cookie in cookies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_kept_connections_stay_within_the_bound_and_leave_the_pool_usable(
    redis_server: RedisServer, redis_client: Any
) -> None:
    store = RedisStore.from_url(f"{redis_server.url}?client_name=kept", max_connections=3)
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    cookies = [session_cookie(app) for _ in range(8)]
    assert writes_in_threads(app, cookies, 40) == []
    assert 1 <= named(redis_client, "kept") <= 3
    # What takes connections from the pool itself (SCAN, a login's pipeline)
    # finds one, however many the hot path kept.
    assert len(list(store.sessions())) == 8
    login = app.test_client()
    login.set_cookie("session", cookies[0])
    assert login.get("/login/alice").status_code == 200
    assert [info.user_id for info in store.sessions_for_user("alice")] == ["alice"]
    assert named(redis_client, "kept") <= 3
    store.close()
    # The server drops a closed connection from CLIENT LIST when its event loop
    # next sees the socket's end, a moment after close() returns.
    wait_until(lambda: named(redis_client, "kept") == 0, "the kept connections to close", 5.0)


def test_a_logged_in_write_reloads_scripts_the_server_forgot(
    redis_server: RedisServer, redis_client: Any
) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=redis_server.url)
    client = app.test_client()
    client.set_cookie("session", session_cookie(app))
    assert client.get("/login/alice").status_code == 200
    redis_client.script_flush()
    # A bound session's write is the apply script and the user index's PEXPIRE
    # in one pipeline: NOSCRIPT there loads the script and sends it again.
    assert client.get("/set/colour/blue").status_code == 200
    assert client.get("/get/colour").text == "'blue'"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_uses_the_parents_kept_connections(
    redis_server: RedisServer, redis_client: Any
) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=redis_server.url)
    parent = app.test_client()
    parent.set_cookie("session", session_cookie(app))
    assert parent.get("/set/who/parent").status_code == 200  # a connection is kept now
    child_cookie = session_cookie(app)
    pid = os.fork()
    if pid == 0:  # the child: on a shared socket, its replies and the parent's would mix
        code = 1
        try:
            child = app.test_client()
            child.set_cookie("session", child_cookie)
            ok = all(
                child.get(f"/set/n/{i}").status_code == 200 and child.get("/get/n").text == f"'{i}'"
                for i in range(150)
            )
            code = 0 if ok else 1
        finally:
            os._exit(code)
    answers = [parent.get("/get/who").text for _ in range(150)]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert set(answers) == {"'parent'"}
    check = app.test_client()
    check.set_cookie("session", child_cookie)
    assert check.get("/get/n").text == "'149'"


def test_a_timed_out_read_never_hands_its_reply_to_the_next_request(
    sentinel: SentinelSetup,
) -> None:
    # redis-py leaves a Sentinel-managed connection open after a socket
    # timeout; the reply the frozen master owes arrives later. One connection
    # (max_connections=1), so the next request gets that very connection.
    store = RedisStore.from_url(sentinel.url, timeout=0.3, max_connections=1)
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    alice = session_cookie(app, "/set/owner/alice")
    bob = session_cookie(app, "/set/owner/bob")
    port = sentinel.master_port()
    master = next(s for s in (sentinel.master, sentinel.replica) if s.port == port)
    assert master.process is not None
    seen: list[tuple[int, str]] = []
    # Frozen for well under Sentinel's down-after (1 s): no failover.
    thaw = threading.Timer(0.1, os.kill, (master.process.pid, signal.SIGCONT))
    os.kill(master.process.pid, signal.SIGSTOP)
    try:
        seen.append(visit(app, alice, "/get/owner")[:2])  # times out: 503
        # Bob's read goes out while the master is still frozen; the master
        # wakes up within its timeout and answers Alice's read first.
        thaw.start()
        seen.append(visit(app, bob, "/get/owner")[:2])
    finally:
        thaw.cancel()
        os.kill(master.process.pid, signal.SIGCONT)
    time.sleep(0.2)
    assert seen[0][0] == 503
    assert seen[1] == (200, "'bob'") or seen[1][0] == 503, seen  # never Alice's
    # Once all is quiet, each gets their own session, whatever came before.
    for _ in range(5):
        assert visit(app, bob, "/get/owner")[:2] == (200, "'bob'")
        assert visit(app, alice, "/get/owner")[:2] == (200, "'alice'")
    store.close()


def test_on_a_client_the_app_shares_connections_go_back_after_each_command(
    redis_server: RedisServer, redis_client: Any
) -> None:
    # The app's own client, with a bounded pool that the app uses too.
    pool: Any = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host="127.0.0.1", port=redis_server.port, max_connections=2, timeout=0.5
    )
    shared = redis.Redis(connection_pool=pool)
    store = RedisStore(shared, max_connections=2)
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    cookies = [session_cookie(app) for _ in range(4)]
    assert writes_in_threads(app, cookies, 20) == []
    # Both of the pool's connections are free for the app again.
    held = [pool.get_connection(), pool.get_connection()]
    for conn in held:
        pool.release(conn)
    assert shared.set("the-apps-own", "1") is True
    pool.disconnect()


def test_listing_sessions_while_every_connection_is_busy(
    redis_server: RedisServer, redis_client: Any
) -> None:
    # Three requests in a loop hold the three connections nearly all the time;
    # a listing waits its turn for one (first come, first served: with
    # threading.Semaphore it waited out its whole timeout), never for a
    # connection beyond the bound.
    store = RedisStore.from_url(redis_server.url, max_connections=3)
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    cookies = [session_cookie(app) for _ in range(3)]
    stop = threading.Event()
    failures: list[str] = []

    def busy(cookie: str) -> None:
        while not stop.is_set():
            status, text, _ = visit(app, cookie, "/get/user")
            if status != 200:
                failures.append(f"{status} {text[:80]}")

    threads = [threading.Thread(target=busy, args=(cookie,)) for cookie in cookies]
    for thread in threads:
        thread.start()
    listed: list[int] = []
    try:
        for _ in range(30):
            listed.append(len(list(store.sessions())))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert listed == [3] * 30
    store.close()
