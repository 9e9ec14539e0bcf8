"""Start private servers for the tests: a free loopback port, a temp dir, always stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    """The path of ``name``; skip without it, but fail in CI so nothing passes silently."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        message = f"{name} is not installed (make test installs it from Debian packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """A private ``redis-server`` on a free loopback port.

    :param directory: Where its files (and AOF, when on) go.
    :param args: Extra ``redis-server`` options, e.g. ``["--appendonly", "yes"]``.
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.binary = require_binary("redis-server")
        self.directory = directory
        self.args = list(args)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    def start(self) -> RedisServer:
        return self._start([self.binary])

    def start_sentinel(self, conf: Path) -> RedisServer:
        """Run as a Sentinel with ``conf`` (Sentinel rewrites it as it learns)."""
        return self._start([self.binary, str(conf), "--sentinel"])

    def _start(self, head: list[str]) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            *head,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            *self.args,
        ]  # fmt: skip
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        client = self.client(socket_timeout=1.0)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited early:\n{log[-2000:]}")
            return bool(client.ping())

        try:
            wait_until(ready, f"redis-server on port {self.port}", timeout=10.0)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None


def end_process(
    process: subprocess.Popen[Any], how: int = signal.SIGTERM, wait: float = 10.0
) -> None:
    """Stop a server with the signal ``how``; kill it if it has not exited within ``wait`` s."""
    process.send_signal(how)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            if predicate():
                return
        except (redis.ConnectionError, redis.ResponseError):
            pass  # not up yet (BusyLoadingError is a ConnectionError)
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


class MemcachedServer:
    """A private ``memcached`` on a free loopback port (no persistence: a restart empties it).

    :param args: Extra ``memcached`` options, e.g. ``["-I", "2m"]``.
    """

    def __init__(self, *args: str) -> None:
        self.binary = require_binary("memcached")
        self.args = list(args)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The ``host:port`` form ``SESSION_MEMCACHED`` takes."""
        return f"127.0.0.1:{self.port}"

    def client(self) -> Any:
        from pymemcache.client.base import Client

        return Client(("127.0.0.1", self.port), timeout=2, connect_timeout=2, default_noreply=False)

    def start(self) -> MemcachedServer:
        # memcached refuses to run as root unless told which user to be.
        user = ["-u", "root"] if os.geteuid() == 0 else []
        command = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64",
                   "-t", "2", *user, *self.args]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = self.client()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise RuntimeError(f"memcached exited early: {self.process.stderr.read()!r}")
            try:
                return bool(client.version())
            except OSError:
                return False

        try:
            wait_until(ready, f"memcached on port {self.port}", timeout=10.0)
        finally:
            client.close()
        return self

    def flush(self) -> None:
        client = self.client()
        try:
            client.flush_all(noreply=False)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


def acknowledges(port: int) -> bool:
    """Whether the master on ``port`` has a replica acknowledging writes
    (``WAIT`` within 0.1 s; right after a sync the first takes ~0.4 s)."""
    client: Any = redis.Redis(port=port)
    try:
        client.set("probe:acknowledged", 1, px=1000)
        return bool(client.execute_command("WAIT", 1, 100) == 1)
    finally:
        client.close()


class SentinelSetup:
    """One master, one replica and three Sentinels, all private, on loopback.

    :param directory: Where every process keeps its files.
    """

    service = "mymaster"

    #: A master waits 5 s by default for more replicas before a diskless full sync.
    no_sync_delay = ("--repl-diskless-sync-delay", "0")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master = RedisServer(directory / "master", *self.no_sync_delay)
        self.replica = RedisServer(directory / "replica")
        self.sentinels = [RedisServer(directory / f"sentinel{i}") for i in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> SentinelSetup:
        self.master.start()
        # The replica is the master after a failover, so it skips the wait too.
        replica_of = ["--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica.args = [*self.no_sync_delay, *replica_of]
        self.replica.start()
        replica = self.replica.client()
        wait_until(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica to sync",
        )
        replica.close()
        # The replica's side is up before the master's WAIT counts it.
        wait_until(lambda: acknowledges(self.master.port), "the replica to acknowledge writes")
        for sentinel in self.sentinels:
            sentinel.directory.mkdir(parents=True, exist_ok=True)
            conf = sentinel.directory / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
            )
            sentinel.start_sentinel(conf)
        for sentinel in self.sentinels:
            client = sentinel.client()
            wait_until(
                lambda c=client: len(c.execute_command("SENTINEL", "REPLICAS", self.service)) == 1,  # type: ignore[misc]
                "the Sentinels to find the replica",
            )
            client.close()
        return self

    def master_port(self) -> int:
        client: Any = self.sentinels[0].client()
        try:
            host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            return int(port)
        finally:
            client.close()

    def failover(self) -> int:
        """Force a failover and wait until the replica is the master; return its port."""
        old = self.master_port()
        client: Any = self.sentinels[0].client()

        def started() -> bool:
            # NOGOODSLAVE until the Sentinel has heard from the replica directly.
            client.execute_command("SENTINEL", "FAILOVER", self.service)
            return True

        wait_until(started, "the Sentinel to accept the failover")
        client.close()
        wait_until(lambda: self.master_port() != old, "the failover", timeout=60)
        new = self.master_port()
        server = self.replica if new == self.replica.port else self.master
        promoted = server.client()
        wait_until(lambda: promoted.info("replication")["role"] == "master", "the promotion")
        promoted.close()
        return new

    def flush(self) -> None:
        """Empty the current master (the replica follows)."""
        client = redis.Redis(host="127.0.0.1", port=self.master_port())
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()


class ClusterSetup:
    """A three-master Redis Cluster, private, on loopback.

    :param directory: Where every node keeps its files.
    :param args: Extra ``redis-server`` options of every node.
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = list(args)
        self.nodes = [RedisServer(directory / f"node{i}") for i in range(3)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> ClusterSetup:
        for node in self.nodes:
            node.args = [
                "--cluster-enabled", "yes",
                "--cluster-port", str(free_port()),
                "--cluster-config-file", str(node.directory / "nodes.conf"),
                "--cluster-node-timeout", "2000",
                *self.args,
            ]  # fmt: skip
            node.start()
        cli = require_binary("redis-cli")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for node in self.nodes:
            client = node.client()
            wait_until(
                lambda c=client: (
                    c.execute_command("CLUSTER", "INFO")  # type: ignore[misc]
                    .decode()
                    .startswith("cluster_state:ok")
                ),
                "the cluster to be ready",
            )
            client.close()
        return self

    def flush(self) -> None:
        for node in self.nodes:
            client = node.client()
            client.flushall()
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def postgres_binary(name: str) -> str:
    """A PostgreSQL program: Debian's newest ``/usr/lib/postgresql/*/bin``, else the PATH;
    skip without it, fail in CI (as :func:`require_binary`)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return str(versions[-1]) if versions else require_binary(name)


class PostgresServer:
    """A private PostgreSQL cluster (``initdb`` + ``postgres``) on a free loopback port.

    PostgreSQL refuses to run as root: then the cluster belongs to the
    ``postgres`` user (Debian's package makes it), else ``nobody``, in a
    folder of its own under the system's temp dir.
    """

    def __init__(self) -> None:
        self.initdb = postgres_binary("initdb")
        self.postgres = postgres_binary("postgres")
        self.pg_isready = postgres_binary("pg_isready")
        self.port = free_port()
        self.user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = pwd.getpwnam("nobody")
            self.user = (entry.pw_uid, entry.pw_gid)
        self.directory = Path(tempfile.mkdtemp(prefix="sharedsession-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            os.chown(self.directory, *self.user)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user[0], "group": self.user[1], "extra_groups": []}

    def start(self) -> PostgresServer:
        if not self.data.exists():
            subprocess.run(
                [self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, timeout=120, cwd=self.directory,
                **self._as_user(),
            )  # fmt: skip
        command = [
            self.postgres, "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=300",
            # Statements logged (log_statement, per connection) name their client.
            "-c", "log_line_prefix=[%a] ",
        ]  # fmt: skip
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, **self._as_user()
        )
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                text = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"postgres exited early:\n{text[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                return False
            probe = subprocess.run(
                [self.pg_isready, "-h", "127.0.0.1",
                 "-p", str(self.port), "-U", "postgres"],
                capture_output=True, timeout=10,
            )  # fmt: skip
            return probe.returncode == 0

        wait_until(ready, f"postgres on port {self.port}", timeout=60.0)
        return self

    def stop(self) -> None:
        """Fast shutdown: open connections are dropped, the data stays."""
        if self.process is None:
            return
        end_process(self.process, signal.SIGINT, wait=30)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
