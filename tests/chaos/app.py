"""The app the chaos suite runs as a fleet: log in, write a tab's counter (after
reading the session, or without reading it), read, log out.

Configured from the environment: ``CHAOS_CONFIG`` is the Flask config as
JSON; ``CHAOS_BROKEN=updates`` (or ``key-writes``) puts a store in front that
acknowledges some updates (or writes that never read) without making them,
so the suite can show that its checker catches a loss.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from flask import Flask
from flask import request

from sharedsession.flask import Session
from sharedsession.flask import session
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import KeyWrites
from sharedsession.stores.base import Written


class DroppingStore:
    """Acknowledges every ``drop_every``-th update of an existing session without
    writing it: the lost update the checker must find (``CHAOS_BROKEN=updates``)."""

    drop_every = 5

    def __init__(self, store: Any) -> None:
        self.store = store
        self._count = 0
        self._lock = threading.Lock()

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        if changes.created is None and changes.replaces is None and not changes.bind:
            with self._lock:
                self._count += 1
                drop = self._count % self.drop_every == 0
            if drop:
                return ApplyResult.APPLIED
        result: ApplyResult = self.store.apply(key, changes)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class DroppingKeyWrites:
    """Acknowledges every ``drop_every``-th write that never reads without making
    it (``CHAOS_BROKEN=key-writes``). A method of its own, so the adapter finds
    ``write_keys`` and writes keys that are only set without a load."""

    drop_every = 5

    def __init__(self, store: Any) -> None:
        self.store = store
        self._count = 0
        self._lock = threading.Lock()

    def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        with self._lock:
            self._count += 1
            drop = self._count % self.drop_every == 0
        if drop:
            return Written(writes.now + writes.idle, None)
        written: Written | None = self.store.write_keys(key, writes)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


BROKEN = {"updates": DroppingStore, "key-writes": DroppingKeyWrites}


def create_app(instance: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="chaos-only-secret", SESSION_COOKIE_NAME="session")
    app.config.update(json.loads(os.environ.get("CHAOS_CONFIG", "{}")))
    if os.environ.get("CHAOS_BROKEN"):
        app.config["SESSION_STORE_WRAPPER"] = BROKEN[os.environ["CHAOS_BROKEN"]]
    Session(app)

    @app.post("/login")
    def login() -> dict[str, Any]:
        user = request.form["user"]
        session.bind_user(user)
        session["user"] = user
        return {"instance": instance}

    @app.post("/write")
    def write() -> tuple[dict[str, Any], int]:
        user = session.get("user")
        if user is None:
            return {"instance": instance, "error": "not logged in"}, 409
        session[f"{user}.{request.form['tab']}"] = int(request.form["seq"])
        return {"instance": instance}, 200

    @app.post("/set")
    def set_unread() -> tuple[dict[str, Any], int]:
        # Only sets a key, reads nothing: on Redis, a write that never loads.
        session[f"{request.form['user']}.{request.form['tab']}"] = int(request.form["seq"])
        return {"instance": instance}, 200

    @app.get("/read")
    def read() -> dict[str, Any]:
        return {"instance": instance, "data": dict(session)}

    @app.post("/logout")
    def logout() -> dict[str, Any]:
        session.destroy()
        return {"instance": instance}

    return app
