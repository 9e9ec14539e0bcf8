"""A Sentinel failover while writers run: acknowledged writes and logouts hold.

The outcome is checked after the fault has fully played out: the old master
has been demoted and has resynchronised from the new one, which is when
writes it took alone are discarded.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
import redis

from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.flask_apps import visit
from tests.servers import SentinelSetup
from tests.servers import acknowledges
from tests.servers import wait_until

pytestmark = pytest.mark.integration


@dataclass
class User:
    name: str
    acknowledged: int = 0  # the last counter value answered 200
    logged_out: bool = False  # a logout answered 200
    logout_tried: bool = False  # a logout was sent (a 503 may still have been applied)
    statuses: list[int] = field(default_factory=list)
    cookie: str = ""  # the session cookie the browser ended with


def run_user(app: Any, user: User, stop: threading.Event, logout_at: float | None) -> None:
    client = app.test_client()
    while client.get(f"/set/user/{user.name}").status_code != 200:
        time.sleep(0.05)
    try:
        user_loop(client, user, stop, logout_at)
    finally:
        found = client.get_cookie("session")
        user.cookie = "" if found is None else found.value


def user_loop(client: Any, user: User, stop: threading.Event, logout_at: float | None) -> None:
    n = 0
    while not stop.is_set():
        if logout_at is not None and time.monotonic() >= logout_at:
            user.logout_tried = True
            status = client.get("/logout").status_code
            user.statuses.append(status)
            if status == 200:
                user.logged_out = True
                return
            continue
        n += 1
        status = client.get(f"/set/n/{n}").status_code
        user.statuses.append(status)
        if status == 200:
            user.acknowledged = n
        time.sleep(0.005)


def demoted(port: int) -> bool:
    client = redis.Redis(port=port)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info["role"] == "slave" and info.get("master_link_status") == "up"


def run_failover(setup: SentinelSetup, **config: Any) -> tuple[list[User], Any]:
    app, ext = make_app(SESSION_TYPE="redis", SESSION_REDIS=setup.url, **config)
    users = [User(f"u{i}") for i in range(8)]
    stop = threading.Event()
    start = time.monotonic()
    rng = random.Random(7)
    # Half the users log out at a random moment around the failover.
    logouts = [start + rng.uniform(0.8, 2.5) if i % 2 else None for i in range(len(users))]
    threads = [
        threading.Thread(target=run_user, args=(app, user, stop, at))
        for user, at in zip(users, logouts, strict=True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.7)
    old = setup.master_port()
    setup.failover()
    time.sleep(2.0)  # writers keep going while the old master still takes writes
    # ... and until the old master is demoted and resynced (the new master has a
    # replica again, so writes are acknowledged again), and a little after.
    wait_until(lambda: demoted(old), "the old master to be demoted and resynced", timeout=60)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    return users, ext


def test_acknowledged_writes_and_logouts_survive_a_failover(
    fresh_sentinel: SentinelSetup,
) -> None:
    users, ext = run_failover(fresh_sentinel, SESSION_REDIS_MIN_REPLICAS=1)
    ext.store.close()
    # Read everything back through a new app instance, on the new topology.
    reader, _ = make_app("reader", SESSION_TYPE="redis", SESSION_REDIS=fresh_sentinel.url)
    lost, undone = [], []
    for user in users:
        assert set(user.statuses) <= {200, 503}, user  # refusals are 503, never 500
        client = reader.test_client()
        client.set_cookie("session", user.cookie)
        name, n = client.get("/get/user").text, client.get("/get/n").text
        if user.logged_out:
            if name != "None":
                undone.append(user.name)
        elif user.logout_tried and name == "None":
            pass  # its logout was answered 503 but applied: allowed
        elif (
            name != repr(user.name) or (0 if n == "None" else int(n.strip("'"))) < user.acknowledged
        ):
            # A later write answered 503 may still have landed: never less than acknowledged.
            lost.append((user.name, user.acknowledged, n))
    assert sum(user.acknowledged for user in users) > 0
    assert any(user.logged_out for user in users)
    assert lost == [] and undone == []


def test_a_sentinel_store_never_reads_from_a_demoted_master(sentinel: SentinelSetup) -> None:
    """A pooled connection can outlive its master's role: after a failover it
    points at a replica, which would answer a plain read with its stale copy (a
    session already logged out on the new master). Reads refuse a replica (503),
    and the store reconnects to the current master."""
    import asyncio

    from sharedsession.errors import StoreUnavailable
    from sharedsession.ids import new_id
    from sharedsession.ids import store_key
    from sharedsession.stores.base import ChangeSet
    from sharedsession.stores.redis import AsyncRedisStore
    from sharedsession.stores.redis import RedisStore

    store = RedisStore.from_url(sentinel.url)
    twin = AsyncRedisStore.from_url(sentinel.url)
    assert store.options.sentinel and twin.options.sentinel  # both read from masters only
    asyncio.run(twin.aclose())
    k, now = store_key(new_id()), time.time()
    store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now))
    replica = sentinel.replica.client()
    wait_until(lambda: replica.exists(f"session:{{{k}}}") == 1, "the replica to copy it")
    # A connection that ends up on the replica, as one to a demoted master does:
    on_replica = RedisStore(redis.Redis(port=sentinel.replica.port))
    on_replica.options.sentinel = True
    with pytest.raises(StoreUnavailable, match="read only replica"):
        on_replica.load(k)
    on_replica.options.sentinel = False  # a plain read would have been served
    record = on_replica.load(k)
    assert record is not None and record.data == {"a": "1"}
    loaded = store.load(k)
    assert loaded is not None and loaded.data == {"a": "1"}  # the master serves it
    replica.close()
    on_replica.close()
    store.close()


def test_a_logout_answers_200_only_once_it_is_durable_even_on_a_stale_master(
    fresh_sentinel: SentinelSetup,
) -> None:
    """After a failover Sentinel reconfigures the old master only seconds later;
    until then it answers as a master, with its own copy, to the connections
    still open to it. A logout refused there (503: no replica acknowledged)
    had deleted the session on that copy only. The retried logout read "no
    session" there and, with nothing to delete, answered 200; the new master
    still had the session, and the old master took it back when it
    resynchronized. Ending a session the store did not find deletes its key
    anyway, a write confirmed like any other: 503 until it is durable."""
    from sharedsession.stores.redis import RedisStore

    # Two instances; each keeps a connection to the master (one logs out with
    # destroy(), the other with clear()): a refusal makes an instance reconnect.
    stores = [RedisStore.from_url(fresh_sentinel.url, min_replicas=1, timeout=1) for _ in "ab"]
    app, _ = make_app("a", store=stores[0])
    other, _ = make_app("b", store=stores[1])
    alice = session_cookie(app, "/login/alice")
    carol = session_cookie(other, "/set/user/carol")
    assert visit(app, alice, "/get/user")[:2] == (200, "'alice'")
    assert visit(other, carol, "/get/user")[:2] == (200, "'carol'")
    old = fresh_sentinel.master_port()
    fresh_sentinel.failover()
    stale = redis.Redis(port=old)
    keys = [k for k in stale.keys("session:{*") if stale.type(k) == b"hash"]
    assert len(keys) == 2
    # What a logout refused there leaves behind: the session gone on this copy only.
    stale.delete(*keys)
    assert visit(app, alice, "/logout")[0] == 503
    assert visit(other, carol, "/clear")[0] == 503
    # Still inside the window, or the logouts above proved nothing.
    assert stale.info("replication")["role"] == "master"
    wait_until(lambda: demoted(old), "the old master to be demoted and resynced", timeout=60)
    new = fresh_sentinel.master_port()
    wait_until(lambda: acknowledges(new), "the new master's replica to acknowledge writes")
    # Played out: neither logout happened, and now both do, for good.
    assert visit(app, alice, "/get/user")[:2] == (200, "'alice'")
    assert visit(other, carol, "/get/user")[:2] == (200, "'carol'")
    assert visit(app, alice, "/logout")[0] == 200
    assert visit(other, carol, "/clear")[0] == 200
    for instance in (app, other):
        for cookie in (alice, carol):
            assert visit(instance, cookie, "/get/user")[:2] == (200, "None")
    wait_until(lambda: stale.keys("session:{*") == [], "the old master to follow")
    stale.close()
    for store in stores:
        store.close()
