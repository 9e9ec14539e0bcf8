"""The session on the wire, for every adapter: the cookie and the HTTP rules around it.

Framework-free. Read the cookie from ``Cookie`` header fields, write
``Set-Cookie`` (attributes normalised as werkzeug writes them, and checked as
browsers require), the ``Vary``/``Cache-Control`` rule for responses that
used the session, the 503 answer on a store outage, and what is recorded
about the client. Session cookie values are URL-safe (an ID, optionally
``.signature``), so they need no quoting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from .errors import ConfigurationError
from .manager import Cookie

_SEPARATORS = (";", ",")
_EXPIRED = "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"

#: The 503 answer to a request whose session store cannot be reached.
UNAVAILABLE_STATUS = 503
UNAVAILABLE_MESSAGE = "Sessions are unavailable right now; please try again shortly."
UNAVAILABLE_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "5"))


def read_cookie(header: str | Iterable[str] | None, name: str) -> str | None:
    """The value of the first cookie called ``name`` in the ``Cookie`` header field(s).

    HTTP/2 may split the header into several fields; pass them all. Some
    servers join repeated fields with commas, so commas separate cookies too
    (a session cookie value never holds one).
    """
    if header is None:
        return None
    key = f"{name}="
    for field in (header,) if isinstance(header, str) else header:
        start = field.find(key)
        while start != -1:
            # A cookie's name follows the start or a separator, and white space
            # (walked back over, never copied: a hostile header stays linear).
            before = start - 1
            while before >= 0 and field[before].isspace():
                before -= 1
            if before < 0 or field[before] in _SEPARATORS:
                value = field[start + len(key) :]
                for separator in _SEPARATORS:
                    end = value.find(separator)
                    if end != -1:
                        value = value[:end]
                return value.strip().strip('"')
            start = field.find(key, start + 1)
    return None


@dataclass(frozen=True)
class CookieAttributes:
    """How the session cookie is sent; build it with :func:`make_attributes`.

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
            # Rounded up: a live session never gets Max-Age=0 (an expired cookie).
            max_age = max(0, math.ceil(cookie.expires - time.time()))
            header += f"; Expires={formatdate(cookie.expires, usegmt=True)}; Max-Age={max_age}"
        return f"{header}; {self.suffix()}"


def make_attributes(
    name: str,
    *,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: str | None = None,
    partitioned: bool = False,
    labels: Mapping[str, str] | None = None,
) -> CookieAttributes:
    """Normalise cookie attributes as werkzeug writes them, and refuse what browsers drop.

    The domain loses a leading dot and a port and is IDNA-encoded, SameSite is
    title-cased (``None`` means ``Lax``), the path is quoted.

    :param labels: How to name each Flask key in error messages.
    :raises ConfigurationError: Browsers would reject or silently drop the cookie.
    """
    label = (labels or {}).get
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"{label('SESSION_COOKIE_NAME', 'SESSION_COOKIE_NAME')} must be a non-empty str,"
            f" got {name!r}."
        )
    if domain:
        domain = domain.partition(":")[0].lstrip(".").encode("idna").decode("ascii") or None
    samesite = _samesite(samesite, label("SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_SAMESITE"))
    path = quote(path or "/", safe="%!$&'()*+,/:=@")
    secure_key = label("SESSION_COOKIE_SECURE", "SESSION_COOKIE_SECURE")
    name_key = label("SESSION_COOKIE_NAME", "SESSION_COOKIE_NAME")
    if name.startswith("__Host-") and (not secure or domain or path != "/"):
        raise ConfigurationError(
            f"{name_key} {name!r} uses the __Host- prefix, which browsers accept only with"
            f" {secure_key} = True, no {label('SESSION_COOKIE_DOMAIN', 'SESSION_COOKIE_DOMAIN')}"
            " and the path '/'."
        )
    if name.startswith("__Secure-") and not secure:
        raise ConfigurationError(
            f"{name_key} {name!r} uses the __Secure- prefix, which browsers accept only with"
            f" {secure_key} = True."
        )
    if partitioned and not secure:
        raise ConfigurationError(
            f"{label('SESSION_COOKIE_PARTITIONED', 'SESSION_COOKIE_PARTITIONED')} needs"
            f" {secure_key} = True (browsers drop partitioned cookies that are not Secure)."
        )
    if samesite == "None" and not secure:
        raise ConfigurationError(
            f"{label('SESSION_COOKIE_SAMESITE', 'SESSION_COOKIE_SAMESITE')} = 'None' needs"
            f" {secure_key} = True (browsers drop SameSite=None cookies that are not Secure)."
        )
    return CookieAttributes(name, path, domain, secure, httponly, samesite, partitioned)


def _samesite(value: str | None, key: str) -> str:
    # Flask's default None is sent as Lax, the browsers' own default, stated.
    if value is None:
        return "Lax"
    if isinstance(value, str) and value.title() in ("Strict", "Lax", "None"):
        return value.title()
    raise ConfigurationError(f"{key} must be 'Lax', 'Strict', 'None' or None, got {value!r}.")


def private_cache_control(value: str | None) -> str:
    """``Cache-Control`` for a response that used the session: always ``private``.

    Never let a shared cache keep or serve one user's session-bearing page;
    the app's other directives are kept.
    """
    if not value:
        return "private"
    directives = [d.strip() for d in value.split(",")]
    kept = [d for d in directives if d and d.lower() not in ("public", "private")]
    return ", ".join(["private", *kept])


def vary_cookie(value: str | None) -> str:
    """``Vary`` for a response that used the session: the app's fields plus ``Cookie``."""
    if not value:
        return "Cookie"
    fields = [f.strip() for f in value.split(",") if f.strip()]
    if any(f == "*" or f.lower() == "cookie" for f in fields):
        return ", ".join(fields)
    return ", ".join([*fields, "Cookie"])


def client_info(agent: str | None, ip: str | None) -> dict[str, str]:
    """What a bound session remembers about its client (``SESSION_TRACK_CLIENT``)."""
    return {"agent": (agent or "")[:256], "ip": ip or ""}
