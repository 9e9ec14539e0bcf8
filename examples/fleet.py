"""App instances behind an nginx round robin, as a fleet runs them.

The demo, the browser tests and the chaos suite all start their instances
with :class:`Fleet`: each instance is a gunicorn serving a Flask app factory,
nginx in front alternates requests between them, and any instance can be
killed and started again while nginx keeps serving.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # Round robin: consecutive requests land on different instances. An
    # instance that refuses connections is skipped for a second, as in production.
    upstream app {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until something listens on ``port``; exit with ``log`` if ``process`` dies."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited early; its log:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after 30 s; see {log}")


def find_nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit("nginx is not installed; `make demo` installs it from Debian packages.")
    return found


class Fleet:
    """Named instances of ``app`` (a gunicorn app spec) behind nginx on ``port``.

    :param app: What gunicorn serves, with ``{name}`` for the instance's name,
        e.g. ``"examples.shop.app:create_app('{name}')"``.
    :param names: One instance per name.
    :param workdir: Where logs, nginx's files and the instances' files go.
    :param env: Extra environment of every instance.
    :param port: nginx's port; a free one when ``None``.
    :param workers: gunicorn worker processes per instance.
    :param threads: Threads per worker (gunicorn's gthread worker when > 1).
    """

    def __init__(
        self,
        app: str,
        names: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        workers: int = 2,
        threads: int = 1,
    ) -> None:
        self.app = app
        self.workdir = workdir
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.port = port or free_port()
        self.workers = workers
        self.threads = threads
        self.ports = {name: free_port() for name in names}
        self.instances: dict[str, subprocess.Popen[bytes]] = {}
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Fleet:
        """Start every instance, then nginx; return when all of them listen."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # nginx workers may run as another user
        try:
            for name in self.ports:
                self.start_instance(name)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def start_instance(self, name: str) -> None:
        """Start (or start again) the instance ``name`` on its own port."""
        log = self.workdir / f"instance-{name}.log"
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(self.workers),
            "--bind", f"127.0.0.1:{self.ports[name]}",
            "--chdir", str(ROOT),
            "--graceful-timeout", "5",
            "--keep-alive", "30",
        ]  # fmt: skip
        if self.threads > 1:
            command += ["--worker-class", "gthread", "--threads", str(self.threads)]
        command.append(self.app.format(name=name))
        with open(log, "ab") as out:
            # A process group of its own: a kill reaches gunicorn's workers too.
            process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.instances[name] = process
        wait_for_port(self.ports[name], process, log)

    def kill_instance(self, name: str) -> None:
        """Kill the instance ``name`` at once (SIGKILL to gunicorn and its workers)."""
        process = self.instances.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _start_nginx(self) -> None:
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / sub).mkdir(mode=0o777, exist_ok=True)
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=1s;"
            for port in self.ports.values()
        )
        conf = self.workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.workdir, port=self.port, servers=servers))
        out_path = self.workdir / "nginx.out"
        with open(out_path, "wb") as out:
            command = [find_nginx(), "-p", str(self.workdir), "-c", str(conf)]
            self.nginx = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.nginx, out_path)

    def alive(self) -> bool:
        """Whether nginx and every started instance still run."""
        processes = [*self.instances.values(), *([self.nginx] if self.nginx else [])]
        return all(process.poll() is None for process in processes)

    def stop(self) -> None:
        """Stop nginx and every instance, gracefully, killing what does not stop."""
        processes = list(self.instances.values())
        if self.nginx is not None:
            processes.insert(0, self.nginx)
            self.nginx.send_signal(signal.SIGQUIT)
        for process in self.instances.values():
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.instances.clear()
        self.nginx = None
