"""Load with faults against a fleet behind nginx, every acknowledgement checked.

``make test`` runs the quick scenarios at a small scale; ``make chaos``
(``CHAOS=full``) runs every scenario at full scale. Each prints a row of the
table at the end of the run (and into ``artifacts/chaos/table.md``); any lost
acknowledged write, resurrection or foreign data fails the scenario, except
in the broken-store scenarios, which must find losses to prove the checker can.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.fleet import ROOT
from examples.fleet import Fleet
from tests.chaos.load import Report
from tests.chaos.load import recheck_logouts
from tests.chaos.load import run_load
from tests.servers import ClusterSetup
from tests.servers import RedisServer
from tests.servers import SentinelSetup
from tests.servers import require_binary
from tests.servers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(600)]

FULL = os.environ.get("CHAOS") == "full"
APP = "tests.chaos.app:create_app('{name}')"
AOF = ("--appendonly", "yes", "--appendfsync", "always")
TABLE: list[str] = []


@dataclass(frozen=True)
class Scale:
    instances: int
    users: int
    tabs: int
    seconds: float
    fault_at: float
    fault_for: float


SCALE = (
    Scale(instances=3, users=30, tabs=3, seconds=20.0, fault_at=5.0, fault_for=3.0)
    if FULL
    else Scale(instances=2, users=6, tabs=2, seconds=5.0, fault_at=1.0, fault_for=1.5)
)

Fault = Callable[[Fleet, Any], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    store: str
    fault: str | None = None
    quick: bool = False
    broken: str | None = None  # CHAOS_BROKEN: what the store drops


SCENARIOS = [
    Scenario("steady load, Redis", "redis", quick=True),
    Scenario("app instance killed and restarted", "redis", "kill-instance", quick=True),
    Scenario("Redis restarted (AOF)", "redis", "restart-redis"),
    Scenario("Redis frozen", "redis", "freeze-redis", quick=True),
    Scenario("SQLite shared by the instances", "sqlite", quick=True),
    Scenario("Sentinel failover, MIN_REPLICAS=1", "sentinel", "failover"),
    Scenario("Redis Cluster node restarted (AOF)", "cluster", "restart-node"),
    Scenario("broken store (must be caught)", "sqlite", quick=True, broken="updates"),
    Scenario("broken key writes, Redis (must be caught)", "redis", quick=True, broken="key-writes"),
]


@contextmanager
def store(kind: str, tmp: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """The Flask config of a fresh store of ``kind``, and its servers."""
    if kind == "sqlite":
        yield {"SESSION_TYPE": "sqlite", "SESSION_SQLITE_PATH": str(tmp / "s.sqlite3")}, None
    elif kind == "redis":
        server = RedisServer(tmp / "redis", *AOF).start()
        try:
            yield {"SESSION_TYPE": "redis", "SESSION_REDIS": server.url}, server
        finally:
            server.stop()
    elif kind == "sentinel":
        sentinel = SentinelSetup(tmp / "sentinel").start()
        try:
            config = {"SESSION_REDIS": sentinel.url, "SESSION_REDIS_MIN_REPLICAS": 1}
            yield {"SESSION_TYPE": "redis", **config}, sentinel
        finally:
            sentinel.stop()
    else:
        cluster = ClusterSetup(tmp / "cluster", *AOF).start()
        try:
            yield {"SESSION_TYPE": "redis", "SESSION_REDIS": cluster.url}, cluster
        finally:
            cluster.stop()


def kill_instance(fleet: Fleet, servers: Any) -> None:
    name = next(iter(fleet.ports))
    fleet.kill_instance(name)
    time.sleep(SCALE.fault_for)
    fleet.start_instance(name)


def restart_redis(fleet: Fleet, server: RedisServer) -> None:
    server.stop()
    time.sleep(SCALE.fault_for)
    server.start()


def freeze_redis(fleet: Fleet, server: RedisServer) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    time.sleep(SCALE.fault_for)
    server.process.send_signal(signal.SIGCONT)


def failover(fleet: Fleet, sentinel: SentinelSetup) -> None:
    new = sentinel.failover()
    # Played out when the demoted master follows the new one and has caught up.
    old = sentinel.master if new == sentinel.replica.port else sentinel.replica
    client = old.client()
    try:
        wait_until(
            lambda: client.info("replication").get("master_link_status") == "up",
            "the demoted master to follow the new one",
        )
    finally:
        client.close()


def restart_node(fleet: Fleet, cluster: ClusterSetup) -> None:
    node = cluster.nodes[0]
    node.stop()
    time.sleep(SCALE.fault_for)
    node.start()
    for each in cluster.nodes:  # played out when every node sees the whole cluster again
        client = each.client()
        try:
            wait_until(
                lambda c=client: (  # type: ignore[misc]
                    c.execute_command("CLUSTER", "INFO").decode().startswith("cluster_state:ok")
                ),
                "the cluster to be whole again",
            )
        finally:
            client.close()


FAULTS: dict[str, Fault] = {
    "kill-instance": kill_instance,
    "restart-redis": restart_redis,
    "freeze-redis": freeze_redis,
    "failover": failover,
    "restart-node": restart_node,
}


def row(scenario: Scenario, report: Report) -> str:
    statuses = " ".join(f"{code or 'none'}:{n}" for code, n in sorted(report.statuses.items()))
    return (
        f"| {scenario.name} | {report.requests} | {statuses} |"
        f" {report.writes} ({report.unread_writes} unread) |"
        f" {report.logins}/{report.logouts} | {len(report.lost)} | {len(report.resurrected)} |"
        f" {len(report.foreign)} | {report.percentile(0.5):.1f} | {report.percentile(0.99):.1f} |"
    )


HEADER = (
    "| scenario | requests | statuses | acked writes | logins/logouts | lost | resurrected"
    " | foreign | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|---|---|"
)


def record(line: str) -> None:
    TABLE.append(line)
    out = ROOT / "artifacts" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join([HEADER, *TABLE]) + "\n")


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(s, id=s.name) for s in SCENARIOS if FULL or s.quick],
)
def test_scenario(scenario: Scenario, tmp_path: Path) -> None:
    require_binary("nginx")
    report = Report()
    with ExitStack() as stack:
        config, servers = stack.enter_context(store(scenario.store, tmp_path))
        config["SESSION_REDIS_TIMEOUT"] = 1
        env = {"CHAOS_CONFIG": json.dumps(config)}
        if scenario.broken:
            env["CHAOS_BROKEN"] = scenario.broken
        names = [chr(ord("A") + i) for i in range(SCALE.instances)]
        fleet = stack.enter_context(
            Fleet(APP, names, tmp_path / "fleet", env=env, workers=2, threads=4)
        )
        errors: list[BaseException] = []

        def inject() -> None:
            time.sleep(SCALE.fault_at)
            try:
                FAULTS[scenario.fault or ""](fleet, servers)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        faulting = threading.Thread(target=inject)
        if scenario.fault:
            faulting.start()
        people = run_load(
            fleet.port, users=SCALE.users, tabs=SCALE.tabs, seconds=SCALE.seconds, report=report
        )
        if scenario.fault:
            faulting.join()
        if errors:
            raise errors[0]
        # The fault has played out: every session logged out before it is still dead.
        recheck_logouts(fleet.port, people, report)
    record(row(scenario, report))
    assert report.writes > 0 and report.logouts > 0, "the load did nothing"
    assert report.unread_writes > 0, "no write that only sets a key was acknowledged"
    if scenario.broken:
        assert report.lost, "the checker missed writes the broken store dropped"
        return
    assert not report.failures(), "\n".join(report.failures()[:20])
