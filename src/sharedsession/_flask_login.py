"""Flask-Login's logins and logouts, made to do what a session store should.

Flask-Login keeps the session ID at login (a fixation risk it leaves to the
app) and knows nothing of the user's other sessions. When it is installed,
a login (``login_user``, or a remember-me cookie) binds the session to
``user.get_id()`` and gives it a new ID, and a logout destroys it, so "log out
other devices" works for a Flask-Login app with no code change.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import session


def connect(app: Flask) -> bool:
    """Hook Flask-Login's signals for ``app``; ``False`` if Flask-Login is not installed."""
    try:
        from flask_login import signals  # type: ignore[import-untyped]
    except ImportError:
        return False
    signals.user_logged_in.connect(_logged_in, sender=app, weak=False)
    signals.user_loaded_from_cookie.connect(_logged_in, sender=app, weak=False)
    signals.user_logged_out.connect(_logged_out, sender=app, weak=False)
    return True


def _logged_in(sender: Any, user: Any = None, **extra: Any) -> None:
    if user is None:
        return
    user_id = user.get_id()
    if user_id is not None and hasattr(session, "bind_user"):
        session.bind_user(str(user_id))


def _logged_out(sender: Any, user: Any = None, **extra: Any) -> None:
    if not hasattr(session, "destroy"):
        return
    # Flask-Login has just asked to clear its remember-me cookie; keep asking.
    remember = session.get("_remember")
    session.destroy()
    if remember is not None:
        session["_remember"] = remember
