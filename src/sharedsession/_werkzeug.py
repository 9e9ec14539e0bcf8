"""What the Flask and Quart adapters share: both answer with werkzeug responses
and read cookie settings through ``get_cookie_*`` hooks of the same shape."""

from __future__ import annotations

import logging
from typing import Any

from .errors import StoreUnavailable
from .manager import Cookie
from .session import Session

logger = logging.getLogger("sharedsession")

#: The body of the 503 response sent when the store cannot be reached.
UNAVAILABLE_MESSAGE = "Sessions are unavailable right now; please try again shortly."


# Responses are werkzeug's (Flask) or werkzeug sans-IO ones (Quart): typed Any.


def mark_used(response: Any, session: Session) -> None:
    """``Vary: Cookie`` and ``Cache-Control: private`` when the session was used."""
    if session.accessed:
        response.vary.add("Cookie")
        # Never let a shared cache keep or serve one user's session-bearing page.
        response.cache_control.public = False
        response.cache_control.private = True


def send_cookie(interface: Any, app: Any, response: Any, cookie: Cookie | None) -> None:
    """Set or delete the session cookie with the app's cookie settings."""
    if cookie is None:
        return
    name = interface.get_cookie_name(app)
    options: dict[str, Any] = {
        "domain": interface.get_cookie_domain(app),
        "path": interface.get_cookie_path(app),
        "secure": interface.get_cookie_secure(app),
        "samesite": interface.get_cookie_samesite(app) or "Lax",
        "httponly": interface.get_cookie_httponly(app),
        "partitioned": interface.get_cookie_partitioned(app),
    }
    if cookie.value is None:
        response.delete_cookie(name, **options)
    else:
        response.set_cookie(name, cookie.value, expires=cookie.expires, **options)


def cause(exc: StoreUnavailable) -> BaseException:
    # The backend's error says what failed (refused, timed out) and never holds a session ID.
    return exc.original_error or exc


def log_unavailable(exc: StoreUnavailable, stage: str) -> None:
    logger.error("session store unavailable during %s: %s", stage, cause(exc))


def on_save_error(exc: StoreUnavailable, response: Any, degrade: bool) -> bool:
    """Fail closed or, when degrading, log and go on.

    :returns: Whether the response became a 503; the caller sets
        :data:`UNAVAILABLE_MESSAGE` as its body.
    """
    if degrade:
        logger.warning("session store unavailable, session not saved: %s", cause(exc))
        return False
    log_unavailable(exc, "save")
    response.status_code = 503
    response.mimetype = "text/plain"
    response.headers.pop("Set-Cookie", None)
    response.headers["Retry-After"] = "5"
    return True


def unavailable_handler(exc: StoreUnavailable) -> tuple[str, int, dict[str, str]]:
    """The error handler for :class:`StoreUnavailable` raised while a handler ran."""
    log_unavailable(exc, "load")
    return UNAVAILABLE_MESSAGE, 503, {"Content-Type": "text/plain", "Retry-After": "5"}
