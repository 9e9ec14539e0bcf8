"""Sentinel failover and Redis Cluster, on topologies the tests start themselves."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from sharedsession.ids import store_key
from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.servers import ClusterSetup
from tests.servers import SentinelSetup

pytestmark = pytest.mark.integration


def login(app: Any, user: str) -> str:
    client = app.test_client()
    assert client.get(f"/set/user/{user}").status_code == 200
    found = client.get_cookie("session")
    assert found is not None
    return str(found.value)


def read(app: Any, cookie: str, key: str = "user") -> tuple[int, str]:
    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.get(f"/get/{key}")
    return response.status_code, response.text


def test_sessions_survive_a_sentinel_failover(fresh_sentinel: SentinelSetup) -> None:
    app, ext = make_app(SESSION_TYPE="redis", SESSION_REDIS=fresh_sentinel.url)
    cookies = {f"user{i}": login(app, f"user{i}") for i in range(10)}
    master = redis.Redis(port=fresh_sentinel.master_port())
    assert master.wait(1, 5000) == 1  # the replica has every session
    master.close()
    old = fresh_sentinel.master_port()
    assert fresh_sentinel.failover() != old
    # The same app object, never restarted, reads and writes on the new master.
    for user, cookie in cookies.items():
        assert read(app, cookie) == (200, repr(user))
    client = app.test_client()
    client.set_cookie("session", cookies["user0"])
    assert client.get("/set/after/failover").status_code == 200
    assert read(app, cookies["user0"], "after") == (200, "'failover'")
    assert ext.store is not None
    ext.store.close()


def test_sentinel_client_object_is_accepted(sentinel: SentinelSetup) -> None:
    hosts = [("127.0.0.1", s.port) for s in sentinel.sentinels]
    client = Sentinel(hosts, socket_timeout=2).master_for(sentinel.service)  # type: ignore[no-untyped-call]
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=client)
    assert read(app, login(app, "eve")) == (200, "'eve'")


def test_two_instances_share_sessions_on_a_cluster(cluster: ClusterSetup, cluster_url: str) -> None:
    a, _ = make_app("a", SESSION_TYPE="redis", SESSION_REDIS=cluster_url)
    b, _ = make_app("b", SESSION_TYPE="redis", SESSION_REDIS=cluster_url)
    cookies = [login(a, f"user{i}") for i in range(30)]
    for i, cookie in enumerate(cookies):
        assert read(b, cookie) == (200, f"'user{i}'")
    # Sessions spread over the masters, and each lives in the slot of its hash tag.
    store = RedisStore.from_url(cluster_url)
    client: Any = store.client  # a redis.cluster.RedisCluster
    nodes_used = set()
    for cookie in cookies:
        key = f"session:{{{store_key(cookie)}}}"
        slot = client.keyslot(key)
        assert slot == client.keyslot(store_key(cookie))
        node = client.nodes_manager.get_node_from_slot(slot)
        assert client.exists(key) == 1
        nodes_used.add(node.port)
    assert len(nodes_used) == 3
    store.close()
