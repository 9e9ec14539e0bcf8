"""The exceptions sharedsession raises.

::

    SessionError
    ├── ConfigurationError
    ├── SerializationError
    ├── SessionTooLarge
    ├── SessionNotLoaded
    └── StoreError
        └── StoreUnavailable
"""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error raised by sharedsession."""


class ConfigurationError(SessionError, ValueError):
    """Raised when the configuration is invalid; the message says what to fix."""


class SerializationError(SessionError, TypeError):
    """Raised when a session value cannot be stored; nothing of that save is written.

    :param key: The top-level session key whose value failed.
    :param type_: The type that cannot be serialized.
    :param path: Where inside the value the type sits, for example ``cart[2].price``.
    :param reason: What is wrong and how to fix it, after ``session[key]path``;
        by default, that ``type_`` cannot be stored and which types can.
    """

    def __init__(self, key: str, type_: type, path: str = "", reason: str | None = None) -> None:
        self.key = key
        self.type_ = type_
        self.path = path
        if reason is None:
            reason = (
                f"holds a {type_.__module__}.{type_.__qualname__}, which sessions cannot"
                " store. Store JSON types (str, int, float, bool, None, list, dict with"
                " str, int, float, bool or None keys) or one of datetime, date, time"
                " (naive, or with a zoneinfo.ZoneInfo or datetime.timezone), UUID,"
                " Decimal, bytes, tuple, set, frozenset, Markup; convert other objects,"
                " e.g. to a dict or an ID, before storing them."
            )
        super().__init__(f"session[{key!r}]{path} {reason}")


class SessionTooLarge(SessionError, ValueError):
    """Raised at save when the session exceeds the configured maximum size or key count.

    :param size: The serialized size in bytes, or the number of keys.
    :param limit: The configured maximum.
    :param unit: ``"bytes"`` (``SESSION_MAX_SIZE``) or ``"keys"`` (``SESSION_MAX_KEYS``).
    """

    def __init__(self, size: int, limit: int, *, unit: str = "bytes") -> None:
        self.size = size
        self.limit = limit
        self.unit = unit
        setting = "SESSION_MAX_KEYS" if unit == "keys" else "SESSION_MAX_SIZE"
        super().__init__(
            f"The session would hold {size} {unit}, over the limit of {limit} {unit};"
            " nothing was written. Store less in the session (keep large data in your"
            f" database and put its ID in the session) or raise {setting}."
        )


class SessionNotLoaded(SessionError, RuntimeError):
    """Raised when an async handler uses a session that was not loaded yet."""

    def __init__(self) -> None:
        super().__init__(
            "The session is not loaded: an async handler cannot load it on first use."
            " Call `await load_session(request)` (or use the FastAPI dependency) before"
            " using request.session, or create SessionMiddleware with autoload=True."
        )


class StoreError(SessionError):
    """Raised when a store fails; ``original_error`` is the backend's exception.

    :param message: What failed.
    :param original_error: The exception raised by the backend client.
    """

    def __init__(self, message: str, original_error: BaseException | None = None) -> None:
        self.original_error = original_error
        super().__init__(message)


class StoreUnavailable(StoreError):
    """Raised when the store cannot be reached or timed out; adapters answer 503."""
