"""What the Flask and Quart adapters share: both answer with werkzeug responses
and read cookie settings through ``get_cookie_*`` hooks of the same shape."""

from __future__ import annotations

import logging
from typing import Any

from .cookies import CookieAttributes
from .errors import StoreUnavailable
from .manager import Cookie
from .session import Session

logger = logging.getLogger("sharedsession")

#: The body of the 503 response sent when the store cannot be reached.
UNAVAILABLE_MESSAGE = "Sessions are unavailable right now; please try again shortly."


# Responses are werkzeug's (Flask) or werkzeug sans-IO ones (Quart): typed Any.


def mark_used(response: Any, session: Session) -> None:
    """``Vary: Cookie`` and ``Cache-Control: private`` when the session was used."""
    if not session.accessed:
        return
    headers = response.headers
    # Plain header writes when the app set none: werkzeug's parsed views cost more.
    if "Vary" in headers:
        response.vary.add("Cookie")
    else:
        headers["Vary"] = "Cookie"
    if "Cache-Control" in headers:
        # Never let a shared cache keep or serve one user's session-bearing page.
        response.cache_control.public = False
        response.cache_control.private = True
    else:
        headers["Cache-Control"] = "private"


def cookie_attributes(interface: Any, app: Any) -> CookieAttributes:
    """The session cookie's attributes from the app's ``get_cookie_*`` hooks."""
    return CookieAttributes(
        interface.get_cookie_name(app),
        path=interface.get_cookie_path(app),
        domain=interface.get_cookie_domain(app),
        secure=interface.get_cookie_secure(app),
        httponly=interface.get_cookie_httponly(app),
        samesite=interface.get_cookie_samesite(app) or "Lax",
        partitioned=interface.get_cookie_partitioned(app),
    )


def send_cookie(attributes: CookieAttributes, response: Any, cookie: Cookie) -> None:
    """Set or delete the session cookie."""
    response.headers.add("Set-Cookie", attributes.set_cookie(cookie))


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
