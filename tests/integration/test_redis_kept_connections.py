"""The Redis store's kept connections: bounded, never starving the pool, fork-safe,
and pipelines that survive a flushed script cache. Against a real redis-server."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def named(redis_client: Any, name: str) -> int:
    """Connections the server has open under the client name ``name``."""
    return sum(1 for client in redis_client.client_list() if client.get("name") == name)


def test_kept_connections_stay_within_the_bound_and_leave_the_pool_usable(
    redis_server: RedisServer, redis_client: Any
) -> None:
    store = RedisStore.from_url(f"{redis_server.url}?client_name=kept", max_connections=3)
    app, _ = make_app(SESSION_TYPE="redis", store=store)
    cookies = [session_cookie(app) for _ in range(8)]
    failures: list[str] = []

    def busy(cookie: str) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        for i in range(40):
            response = client.get(f"/set/n/{i}")
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:80]}")

    threads = [threading.Thread(target=busy, args=(cookie,)) for cookie in cookies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
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
    assert named(redis_client, "kept") == 0


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
