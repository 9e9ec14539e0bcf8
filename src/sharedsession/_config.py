"""Flask-Session's config keys, read from any mapping and checked once.

Framework-free, so every adapter that reads Flask-style config (Flask, Quart)
builds the same manager and store from it.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crypto import Encryptor
from .errors import ConfigurationError
from .expiry import ExpiryPolicy
from .ids import MIN_ID_BYTES
from .ids import CookieSigner
from .manager import SessionManager
from .stores.base import AsyncSessionStore
from .stores.base import SessionStore

SESSION_TYPES = ("sqlite", "redis", "memory")
ON_STORE_ERROR = ("fail", "degrade")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SQLITE_FILE = "sharedsession.sqlite3"
_DEFAULT_LIFETIME = dt.timedelta(days=31)


def _bool(config: Mapping[str, Any], name: str, default: bool) -> bool:
    value = config.get(name, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}.")
    return value


def _seconds(config: Mapping[str, Any], name: str, default: Any) -> float | None:
    value = config.get(name, default)
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(
            f"{name} must be a datetime.timedelta or a number of seconds, got {value!r}."
        )
    if seconds <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value!r}.")
    return seconds


def _choice(config: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = config.get(name) or choices[0]
    if value not in choices:
        raise ConfigurationError(
            f"{name} = {value!r} is not supported; use one of {', '.join(map(repr, choices))}."
        )
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Checked session settings; see the README's config table for each key."""

    session_type: str
    redis: Any
    redis_timeout: float
    key_prefix: str
    sqlite_path: str
    permanent: bool
    refresh_each_request: bool
    use_signer: bool
    id_bytes: int
    lifetime: float
    absolute_lifetime: float | None
    max_size: int | None
    on_store_error: str
    secret_keys: tuple[str | bytes, ...]
    renewal: float | None
    encryption_keys: tuple[str | bytes, ...]
    track_client: bool

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], *, instance_path: str) -> Settings:
        """Read and check the keys.

        :param config: The app's config.
        :param instance_path: Folder of the default SQLite file.
        :raises ConfigurationError: A key has a value that cannot work; the
            message says which and what to use instead.
        """
        id_bytes = config.get("SESSION_ID_LENGTH", MIN_ID_BYTES)
        if not isinstance(id_bytes, int) or isinstance(id_bytes, bool) or id_bytes < MIN_ID_BYTES:
            raise ConfigurationError(
                f"SESSION_ID_LENGTH must be an int of at least {MIN_ID_BYTES} (bytes of"
                f" randomness, 256 bits), got {id_bytes!r}."
            )
        prefix = config.get("SESSION_KEY_PREFIX", "session:")
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"SESSION_KEY_PREFIX must be a str without braces, got {prefix!r}."
            )
        max_size = config.get("SESSION_MAX_SIZE")
        if max_size is not None and (
            not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0
        ):
            raise ConfigurationError(
                f"SESSION_MAX_SIZE must be a positive int (bytes) or None, got {max_size!r}."
            )
        sqlite_path = config.get("SESSION_SQLITE_PATH") or os.path.join(
            instance_path, DEFAULT_SQLITE_FILE
        )
        if not isinstance(sqlite_path, (str, os.PathLike)):
            raise ConfigurationError(f"SESSION_SQLITE_PATH must be a path, got {sqlite_path!r}.")
        use_signer = _bool(config, "SESSION_USE_SIGNER", False)
        secret_keys = _secret_keys(config)
        if use_signer and not secret_keys:
            raise ConfigurationError(
                "SESSION_USE_SIGNER is on but SECRET_KEY is not set; set SECRET_KEY to a long"
                " random string (python -c 'import secrets; print(secrets.token_hex())')."
            )
        lifetime = _seconds(config, "PERMANENT_SESSION_LIFETIME", _DEFAULT_LIFETIME)
        if lifetime is None:
            raise ConfigurationError("PERMANENT_SESSION_LIFETIME must not be None.")
        _check_cookie(config)
        encryption_keys = config.get("SESSION_ENCRYPTION_KEYS") or ()
        if isinstance(encryption_keys, (str, bytes)) or not isinstance(
            encryption_keys, (list, tuple)
        ):
            raise ConfigurationError(
                "SESSION_ENCRYPTION_KEYS must be a list of keys, the current one first,"
                f" got {type(encryption_keys).__name__}."
            )
        return cls(
            session_type=_choice(config, "SESSION_TYPE", SESSION_TYPES),
            redis=config.get("SESSION_REDIS") or DEFAULT_REDIS_URL,
            redis_timeout=_seconds(config, "SESSION_REDIS_TIMEOUT", 2.0) or 2.0,
            key_prefix=prefix,
            sqlite_path=os.fspath(sqlite_path),
            permanent=_bool(config, "SESSION_PERMANENT", True),
            refresh_each_request=_bool(config, "SESSION_REFRESH_EACH_REQUEST", True),
            use_signer=use_signer,
            id_bytes=id_bytes,
            lifetime=lifetime,
            absolute_lifetime=_seconds(config, "SESSION_ABSOLUTE_LIFETIME", None),
            max_size=max_size,
            on_store_error=_choice(config, "SESSION_ON_STORE_ERROR", ON_STORE_ERROR),
            secret_keys=secret_keys,
            renewal=_seconds(config, "SESSION_RENEWAL_INTERVAL", None),
            encryption_keys=tuple(encryption_keys),
            track_client=_bool(config, "SESSION_TRACK_CLIENT", False),
        )

    def manager(self) -> SessionManager:
        """The manager these settings describe."""
        return SessionManager(
            ExpiryPolicy(self.lifetime, self.absolute_lifetime),
            permanent=self.permanent,
            refresh_each_request=self.refresh_each_request,
            id_bytes=self.id_bytes,
            signer=CookieSigner(self.secret_keys) if self.use_signer else None,
            max_size=self.max_size,
            degrade=self.on_store_error == "degrade",
            renewal=self.renewal,
            encryptor=Encryptor(self.encryption_keys) if self.encryption_keys else None,
        )

    def store(self) -> SessionStore:
        """A new blocking store for ``SESSION_TYPE``."""
        if self.session_type == "memory":
            from .stores.memory import MemoryStore

            return MemoryStore()
        if self.session_type == "sqlite":
            from .stores.sqlite import SQLiteStore

            os.makedirs(os.path.dirname(os.path.abspath(self.sqlite_path)), exist_ok=True)
            return SQLiteStore(self.sqlite_path)
        store: SessionStore = _redis_store(self.redis, self.key_prefix, self.redis_timeout)
        return store

    def async_store(self) -> AsyncSessionStore:
        """A new async store for ``SESSION_TYPE`` (Quart and other async adapters)."""
        if self.session_type != "redis":
            from .stores.offload import AsyncOffloadStore

            # The blocking store, its calls in worker threads (memory never blocks).
            return AsyncOffloadStore(self.store(), thread=self.session_type == "sqlite")
        store: AsyncSessionStore = _redis_store(
            self.redis, self.key_prefix, self.redis_timeout, asyncio=True
        )
        return store


def _check_cookie(config: Mapping[str, Any]) -> None:
    """Refuse cookie settings that browsers would reject, before any user sees it."""
    name = config.get("SESSION_COOKIE_NAME") or "session"
    secure = config.get("SESSION_COOKIE_SECURE", False)
    if name.startswith("__Host-"):
        path = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/"
        if not secure or config.get("SESSION_COOKIE_DOMAIN") or path != "/":
            raise ConfigurationError(
                f"SESSION_COOKIE_NAME {name!r} uses the __Host- prefix, which browsers accept"
                " only with SESSION_COOKIE_SECURE = True, no SESSION_COOKIE_DOMAIN and the"
                " path '/'."
            )
    if name.startswith("__Secure-") and not secure:
        raise ConfigurationError(
            f"SESSION_COOKIE_NAME {name!r} uses the __Secure- prefix, which browsers accept"
            " only with SESSION_COOKIE_SECURE = True."
        )
    if config.get("SESSION_COOKIE_PARTITIONED") and not secure:
        raise ConfigurationError(
            "SESSION_COOKIE_PARTITIONED needs SESSION_COOKIE_SECURE = True (browsers drop"
            " partitioned cookies that are not Secure)."
        )
    samesite = config.get("SESSION_COOKIE_SAMESITE")
    if samesite is not None and samesite not in ("Lax", "Strict", "None"):
        raise ConfigurationError(
            f"SESSION_COOKIE_SAMESITE must be 'Lax', 'Strict', 'None' or None, got {samesite!r}."
        )
    if samesite == "None" and not secure:
        raise ConfigurationError(
            "SESSION_COOKIE_SAMESITE = 'None' needs SESSION_COOKIE_SECURE = True."
        )


def _secret_keys(config: Mapping[str, Any]) -> tuple[str | bytes, ...]:
    current = config.get("SECRET_KEY")
    if not current:
        return ()
    # New cookies are signed with SECRET_KEY; SECRET_KEY_FALLBACKS only verify.
    return (current, *(config.get("SECRET_KEY_FALLBACKS") or ()))


def _redis_store(client: Any, prefix: str, timeout: float, *, asyncio: bool = False) -> Any:
    """A RedisStore, or with ``asyncio`` an AsyncRedisStore, from ``SESSION_REDIS``."""
    try:
        from .stores.redis import AsyncRedisStore
        from .stores.redis import RedisStore
    except ImportError as exc:
        raise ConfigurationError(
            "SESSION_TYPE = 'redis' needs redis-py: pip install 'sharedsession[redis]'."
        ) from exc
    store_class = AsyncRedisStore if asyncio else RedisStore
    if isinstance(client, str):
        try:
            return store_class.from_url(client, prefix=prefix, timeout=timeout)
        except ValueError as exc:
            raise ConfigurationError(
                f"SESSION_REDIS = {client!r} is not a usable Redis URL ({exc}); use a form"
                " such as redis://host:6379/0, rediss://host:6380/0, unix:///path/redis.sock,"
                " redis+sentinel://host:26379/mymaster/0 or redis+cluster://host:7000."
            ) from exc
    kind = "an asyncio" if asyncio else "a blocking"
    execute = getattr(client, "execute_command", None)
    if execute is None or not hasattr(client, "register_script"):
        raise ConfigurationError(
            f"SESSION_REDIS must be a Redis URL or {kind} redis-py client, got {client!r}."
        )
    if inspect.iscoroutinefunction(execute) != asyncio:
        raise ConfigurationError(
            f"SESSION_REDIS must be {kind} redis-py client here"
            + (
                " (redis.asyncio.Redis, or a URL): the app is async."
                if asyncio
                else " (redis.Redis, Sentinel(...).master_for(...), redis.cluster.RedisCluster,"
                " or a URL): Flask calls sessions synchronously."
            )
        )
    return store_class(client, prefix=prefix)
