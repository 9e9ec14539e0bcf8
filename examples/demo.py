"""Run the shop as two app instances behind nginx, sharing one session store.

``make demo`` runs this. It starts two gunicorn instances of ``examples/shop``
(two workers each), an nginx in front that alternates requests between them,
walks through a login and a cart to show the session following the user from
instance to instance, prints the URL to open, and stops everything on Ctrl-C.

Sessions live in a SQLite file shared by all four worker processes, or in
Redis when ``--redis URL`` or ``SESSION_REDIS_URL`` is given; ``--redis``
alone starts a private redis-server for the demo.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.fleet import ROOT
from examples.fleet import Fleet
from examples.fleet import find_nginx
from examples.fleet import free_port
from examples.fleet import wait_for_port

SHOP = "examples.shop.app:create_app('{name}')"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Browser:
    """A client with a cookie jar, as a browser keeps the session cookie."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get_state(self) -> dict[str, Any]:
        with self.opener.open(self.base + "/api/state", timeout=10) as response:
            state: dict[str, Any] = json.load(response)
            return state

    def post(self, path: str, **form: str) -> None:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=10) as response:
            response.read()


def start_private_redis(workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A redis-server of the demo's own, on a free port."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if binary is None:
        raise SystemExit(
            "redis-server is not installed: apt-get install redis-server (make test does)"
        )
    port = free_port()
    log = workdir / "redis.log"
    with open(log, "wb") as out:
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, process, log)
    return f"redis://127.0.0.1:{port}/0", process


def check_redis(url: str) -> None:
    """One clear line, not a traceback, when the Redis URL cannot be reached."""
    sys.path.insert(0, str(ROOT / "src"))
    from sharedsession.stores._redis_url import connect
    from sharedsession.stores._redis_url import redact

    try:
        client = connect(url, timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # any failure to reach it ends the demo the same way
        raise SystemExit(f"cannot reach Redis at {redact(url)}: {exc}") from None


def walkthrough(base: str) -> bool:
    """Log in, fill a cart, read it back through the front, log out; True if all held."""
    browser = Browser(base)
    browser.post("/login", user="demo")
    browser.post("/add/apple")
    browser.post("/add/bread")
    rows = [browser.get_state() for _ in range(4)]
    print("\n  request  rendered by  last change by  user   cart")
    for i, state in enumerate(rows, 1):
        by = (state.get("changed") or {}).get("instance", "-")
        cart = ", ".join(state["cart"])
        print(f"  {i:<8} {state['instance']:<12} {by:<15} {state['user']!s:<6} {cart}")
    served = {state["instance"] for state in rows}
    shared = all(s["user"] == "demo" and s["cart"] == ["apple", "bread"] for s in rows)
    browser.post("/logout")
    after = [browser.get_state() for _ in range(2)]
    logged_out = all(s["user"] is None and s["cart"] == [] for s in after)
    print(f"\n  both instances served the session: {'yes' if served == {'A', 'B'} else 'NO'}")
    print(f"  cart survived every switch:        {'yes' if shared else 'NO'}")
    print(f"  logout ended it on both instances:  {'yes' if logged_out else 'NO'}")
    return served == {"A", "B"} and shared and logged_out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
    parser.add_argument(
        "--redis",
        nargs="?",
        const="private",
        default=os.environ.get("SESSION_REDIS_URL"),
        metavar="URL",
        help="a Redis URL; without one, a private redis-server is started",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--check", action="store_true", help="run the walkthrough and exit")
    args = parser.parse_args(argv)

    if not port_is_free(args.port):
        raise SystemExit(f"port {args.port} is in use; choose another: make demo DEMO_PORT=8080")
    find_nginx()
    workdir = Path(tempfile.mkdtemp(prefix="sharedsession-demo-"))
    workdir.chmod(0o755)  # nginx workers may run as another user
    env: dict[str, str] = {}
    processes: list[subprocess.Popen[bytes]] = []
    fleet: Fleet | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if args.redis == "private":
            args.redis, server = start_private_redis(workdir)
            processes.append(server)
        if args.redis:
            check_redis(args.redis)
            env["SESSION_REDIS_URL"] = args.redis
            from sharedsession.stores._redis_url import redact

            where = f"Redis at {redact(args.redis)}"
        else:
            env["SESSION_REDIS_URL"] = ""
            env["SHOP_SQLITE_PATH"] = str(workdir / "sessions.sqlite3")
            where = f"the SQLite file {workdir / 'sessions.sqlite3'}"
        fleet = Fleet(SHOP, ["A", "B"], workdir, env=env, port=args.port, workers=args.workers)
        fleet.start()
        ports = fleet.ports
        url = f"http://127.0.0.1:{args.port}/"
        print(f"Two shop instances (A on :{ports['A']}, B on :{ports['B']}) behind nginx,")
        print(f"sharing sessions in {where}.")
        ok = walkthrough(url.rstrip("/"))
        if args.check:
            return 0 if ok else 1
        print(f"\nOpen {url} and reload: the instance alternates, your cart stays.")
        print("Press Ctrl-C to stop.")
        while fleet.alive() and all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("a demo process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        if fleet is not None:
            fleet.stop()
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
