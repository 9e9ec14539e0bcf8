"""What the Flask and Quart adapters share: both answer with werkzeug responses
and read cookie settings through ``get_cookie_*`` hooks of the same shape."""

from __future__ import annotations

import logging
from typing import Any

from werkzeug.wrappers import Response

from .errors import StoreUnavailable
from .manager import Cookie
from .session import Session

logger = logging.getLogger("sharedsession")

#: The body of the 503 response sent when the store cannot be reached.
UNAVAILABLE_MESSAGE = "Sessions are unavailable right now; please try again shortly."


def mark_used(response: Response, session: Session) -> None:
    """``Vary: Cookie`` and ``Cache-Control: private`` when the session was used."""
    if session.accessed:
        response.vary.add("Cookie")
        # Never let a shared cache keep or serve one user's session-bearing page.
        response.cache_control.public = False
        response.cache_control.private = True


def send_cookie(interface: Any, app: Any, response: Response, cookie: Cookie | None) -> None:
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


def on_save_error(exc: StoreUnavailable, response: Response, degrade: bool) -> None:
    """Fail closed (turn the response into a 503), or log and go on when degrading."""
    if degrade:
        logger.warning("session store unavailable, session not saved: %s", cause(exc))
        return
    log_unavailable(exc, "save")
    response.status_code = 503
    response.set_data(UNAVAILABLE_MESSAGE)
    response.mimetype = "text/plain"
    response.headers.pop("Set-Cookie", None)
    response.headers["Retry-After"] = "5"


def unavailable_handler(exc: StoreUnavailable) -> tuple[str, int, dict[str, str]]:
    """The error handler for :class:`StoreUnavailable` raised while a handler ran."""
    log_unavailable(exc, "load")
    return UNAVAILABLE_MESSAGE, 503, {"Content-Type": "text/plain", "Retry-After": "5"}
