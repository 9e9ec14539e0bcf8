"""The session cookie on the wire: read it from a ``Cookie`` header, write ``Set-Cookie``.

Framework-free and shared by every adapter. Session cookie values are
URL-safe (an ID, optionally ``.signature``), so they need no quoting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate

from .manager import Cookie

_EXPIRED = "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"


def read_cookie(header: str | None, name: str) -> str | None:
    """The value of the first cookie called ``name`` in a ``Cookie`` header."""
    if not header or name not in header:
        return None
    for chunk in header.split(";"):
        cookie_name, _, value = chunk.strip().partition("=")
        if cookie_name == name:
            return value.strip().strip('"')
    return None


@dataclass(frozen=True)
class CookieAttributes:
    """How the session cookie is sent.

    :param name: The cookie's name.
    :param path: ``Path``.
    :param domain: ``Domain``, or ``None`` for the request's host only.
    :param secure: Send ``Secure``.
    :param httponly: Send ``HttpOnly``.
    :param samesite: ``"Lax"``, ``"Strict"``, ``"None"``, or ``None`` to omit it.
    :param partitioned: Send ``Partitioned``.
    """

    name: str = "session"
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = True
    samesite: str | None = "Lax"
    partitioned: bool = False

    def suffix(self) -> str:
        parts = [f"Path={self.path}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.secure:
            parts.append("Secure")
        if self.httponly:
            parts.append("HttpOnly")
        if self.samesite:
            parts.append(f"SameSite={self.samesite}")
        if self.partitioned:
            parts.append("Partitioned")
        return "; ".join(parts)

    def set_cookie(self, cookie: Cookie) -> str:
        """The ``Set-Cookie`` header value that sends (or deletes) ``cookie``."""
        if cookie.value is None:
            return f"{self.name}=; {_EXPIRED}; {self.suffix()}"
        header = f"{self.name}={cookie.value}"
        if cookie.expires is not None:
            max_age = max(0, int(cookie.expires - time.time()))
            header += f"; Expires={formatdate(cookie.expires, usegmt=True)}; Max-Age={max_age}"
        return f"{header}; {self.suffix()}"
