"""Simulated users against a fleet, and a checker of everything acknowledged.

Each user logs in, writes from several tabs at once (each tab its own key,
a counter that only goes up; every other write only sets the key, without
reading the session first), reads, logs out and starts over, until the load
window ends. The checker holds the fleet to what a 200 promised:

- **lost write**: a read (or the user's last read) shows a tab's counter below
  a value the fleet acknowledged before that read began, or the login is gone;
- **resurrection**: a session whose logout was acknowledged answers with data
  again, even after a write that only sets a key was sent with its cookie
  (checked at once and again when the run is over);
- **foreign data**: a session shows another user's name or keys, or a
  counter no tab ever sent.

Requests that fail (502 from nginx, 503 from the app) promise nothing and are
only counted.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import Any

#: Seconds a user keeps retrying a login, logout or final read that fails.
PATIENCE = 30.0


@dataclass
class Report:
    """What a run did and what the checker found."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    logins: int = 0
    logouts: int = 0
    writes: int = 0
    unread_writes: int = 0  # of ``writes``: the ones that only set the key
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def failures(self) -> list[str]:
        """Everything the checker objects to, one line each."""
        return [
            *(f"lost: {x}" for x in self.lost),
            *(f"resurrected: {x}" for x in self.resurrected),
            *(f"foreign: {x}" for x in self.foreign),
            *(f"never answered: {x}" for x in self.stuck),
        ]


class Client:
    """One tab's connection to the front, with the user's cookie sent by hand."""

    def __init__(self, port: int, report: Report) -> None:
        self.port = port
        self.report = report
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, cookie: str | None, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], str | None]:
        """(status, JSON body, the session cookie it set); status 0: no answer."""
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        started = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            status = response.status
            set_cookie = _session_cookie(response.headers.get_all("Set-Cookie") or [])
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            status, raw, set_cookie = 0, b"", None
        elapsed = time.monotonic() - started
        with self.report.lock:
            self.report.statuses[status] += 1
            self.report.latencies.append(elapsed)
        try:
            payload = json.loads(raw) if status == 200 else {}
        except ValueError:
            payload = {}
        return status, payload, set_cookie

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _session_cookie(headers: list[str]) -> str | None:
    for header in headers:
        name, _, rest = header.partition("=")
        if name.strip() == "session":
            return rest.split(";", 1)[0]
    return None


class User:
    """A user with a cookie jar shared by ``tabs`` tabs."""

    def __init__(self, name: str, port: int, tabs: int, report: Report) -> None:
        self.name = name
        self.port = port
        self.tabs = [f"t{i}" for i in range(tabs)]
        self.report = report
        self.cookie: str | None = None
        self.cookie_lock = threading.Lock()
        # Per tab: (monotonic time of the acknowledgement, value), in order.
        self.acked: dict[str, list[tuple[float, int]]] = {}
        self.sent: dict[str, set[int]] = {}
        self.dead_cookies: list[str] = []

    def run(self, until: float) -> None:
        client = Client(self.port, self.report)
        try:
            while time.monotonic() < until:
                if not self._cycle(client, until):
                    return
        finally:
            client.close()

    def _cycle(self, client: Client, until: float) -> bool:
        """Log in, load from every tab, check the final state, log out; False if stuck."""
        self.cookie = None
        self.acked = {tab: [] for tab in self.tabs}
        self.sent = {tab: set() for tab in self.tabs}
        if not self._retry(client, "POST", "/login", {"user": self.name}, "login"):
            return False
        with self.report.lock:
            self.report.logins += 1
        end = min(until, time.monotonic() + random.uniform(1.0, 3.0))
        threads = [threading.Thread(target=self._tab, args=(tab, end)) for tab in self.tabs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not self._final_read(client):
            return False
        old = self.cookie
        if not self._retry(client, "POST", "/logout", None, "logout"):
            return False
        with self.report.lock:
            self.report.logouts += 1
        if old:
            self.dead_cookies.append(old)
            self.check_dead(client, old)
        return True

    def _retry(self, client: Client, method: str, path: str, form: Any, what: str) -> bool:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            status, _, cookie = client.request(method, path, self.cookie, form)
            if status == 200:
                if cookie is not None:
                    self.cookie = cookie or None
                return True
            time.sleep(0.05)
        with self.report.lock:
            self.report.stuck.append(f"{self.name}: {what} failed for {PATIENCE:.0f} s")
        return False

    def _tab(self, tab: str, end: float) -> None:
        client = Client(self.port, self.report)
        seq = 0
        try:
            while time.monotonic() < end:
                seq += 1
                self.sent[tab].add(seq)
                form = {"tab": tab, "seq": str(seq), "user": self.name}
                unread = seq % 2 == 0
                path = "/set" if unread else "/write"
                status, _, _ = client.request("POST", path, self.cookie, form)
                if status == 200:
                    with self.report.lock:
                        self.report.writes += 1
                        self.report.unread_writes += unread
                    self.acked[tab].append((time.monotonic(), seq))
                self.read(client)
        finally:
            client.close()

    def read(self, client: Client) -> bool:
        """One read, checked against what was acknowledged before it began."""
        started = time.monotonic()
        required = {
            tab: max((v for t, v in list(acks) if t < started), default=0)
            for tab, acks in self.acked.items()
        }
        status, payload, _ = client.request("GET", "/read", self.cookie)
        if status != 200:
            return False
        self.check(payload.get("data", {}), required)
        return True

    def _final_read(self, client: Client) -> bool:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.read(client):
                return True
            time.sleep(0.05)
        with self.report.lock:
            self.report.stuck.append(f"{self.name}: no read answered for {PATIENCE:.0f} s")
        return False

    def check(self, data: dict[str, Any], required: dict[str, int]) -> None:
        problems: list[tuple[str, str]] = []
        if data.get("user") != self.name:
            if data.get("user") is None:
                problems.append(("lost", f"{self.name}: the login is gone ({data!r})"))
            else:
                problems.append(("foreign", f"{self.name} sees user {data.get('user')!r}"))
        for key, value in data.items():
            owner, _, tab = key.partition(".")
            if key == "user":
                continue
            if owner != self.name or tab not in self.sent:
                problems.append(("foreign", f"{self.name} sees key {key!r}"))
            elif value not in self.sent[tab]:
                problems.append(("foreign", f"{self.name}.{tab} = {value!r}, never sent"))
        for tab, need in required.items():
            have = data.get(f"{self.name}.{tab}", 0)
            if isinstance(have, int) and have < need:
                problems.append(("lost", f"{self.name}.{tab}: read {have}, acknowledged {need}"))
        with self.report.lock:
            for kind, text in problems:
                getattr(self.report, "lost" if kind == "lost" else "foreign").append(text)

    def check_dead(self, client: Client, cookie: str) -> None:
        """A logged-out session must answer as nobody's, now and later, also
        after a write that only sets a key was sent with its cookie."""
        form = {"user": self.name, "tab": self.tabs[0], "seq": "0"}
        client.request("POST", "/set", cookie, form)  # whatever it answers
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            status, payload, _ = client.request("GET", "/read", cookie)
            if status == 200:
                if payload.get("data"):
                    with self.report.lock:
                        self.report.resurrected.append(f"{self.name}: {payload['data']!r}")
                return
            time.sleep(0.05)
        with self.report.lock:
            self.report.stuck.append(f"{self.name}: a logged-out check failed for {PATIENCE:.0f} s")


def run_load(port: int, *, users: int, tabs: int, seconds: float, report: Report) -> list[User]:
    """Run ``users`` users with ``tabs`` tabs each for ``seconds``; return them."""
    until = time.monotonic() + seconds
    people = [User(f"u{i}", port, tabs, report) for i in range(users)]
    threads = [threading.Thread(target=user.run, args=(until,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return people


def recheck_logouts(port: int, people: list[User], report: Report) -> None:
    """After everything has played out: every logged-out session is still dead."""
    client = Client(port, report)
    try:
        for user in people:
            for cookie in user.dead_cookies:
                user.check_dead(client, cookie)
    finally:
        client.close()
