"""One settings object for every adapter: Flask-Session's keys, checked once.

Framework-free. Flask and Quart read their app's config
(:meth:`Settings.from_mapping`); the ASGI middleware passes its keyword options
(:meth:`Settings.from_options`), which are translated to the same keys, so every
adapter gets the same types, defaults, checks and messages, and builds its
manager, cookie attributes and store the same way.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cookies import CookieAttributes
from .cookies import make_attributes
from .crypto import Encryptor
from .errors import ConfigurationError
from .expiry import ExpiryPolicy
from .flask_session import FORMATS
from .flask_session import FlaskSessionFormat
from .flask_session import Migration
from .ids import MAX_ID_BYTES
from .ids import MIN_ID_BYTES
from .ids import CookieSigner
from .manager import DEFAULT_MAX_KEYS
from .manager import DEFAULT_RENEWAL_GRACE
from .manager import SessionManager
from .stores.base import AsyncSessionStore
from .stores.base import SessionStore

logger = logging.getLogger("sharedsession")

#: ``SESSION_TYPE`` -> the module whose ``from_settings(settings, asyncio=...)``
#: builds the store. A new backend is one module and one line here.
STORE_TYPES = {
    "sqlite": "sharedsession.stores.sqlite",
    "redis": "sharedsession.stores.redis",
    "memcached": "sharedsession.stores.memcached",
    "memory": "sharedsession.stores.memory",
    "sqlalchemy": "sharedsession.stores.sqlalchemy",
}
ON_STORE_ERROR = ("fail", "degrade")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SQLITE_FILE = "sharedsession.sqlite3"
DEFAULT_LIFETIME = dt.timedelta(days=31)
DEFAULT_REDIS_TIMEOUT = 2.0
DEFAULT_MEMCACHED = "127.0.0.1:11211"
DEFAULT_MEMCACHED_TIMEOUT = 2.0
DEFAULT_MAX_CONNECTIONS = 100

#: Every key this library reads.
KEYS = frozenset(
    {
        "SESSION_TYPE",
        "SESSION_REDIS",
        "SESSION_REDIS_TIMEOUT",
        "SESSION_REDIS_MIN_REPLICAS",
        "SESSION_REDIS_MAX_CONNECTIONS",
        "SESSION_MEMCACHED",
        "SESSION_MEMCACHED_TIMEOUT",
        "SESSION_KEY_PREFIX",
        "SESSION_SQLITE_PATH",
        "SESSION_SQLALCHEMY",
        "SESSION_SQLALCHEMY_TABLE",
        "SESSION_SQLALCHEMY_SCHEMA",
        "SESSION_SQLALCHEMY_BIND_KEY",
        "SESSION_PERMANENT",
        "SESSION_REFRESH_EACH_REQUEST",
        "SESSION_USE_SIGNER",
        "SESSION_ID_LENGTH",
        "SESSION_ABSOLUTE_LIFETIME",
        "SESSION_MAX_SIZE",
        "SESSION_MAX_KEYS",
        "SESSION_MAX_PER_USER",
        "SESSION_ON_STORE_ERROR",
        "SESSION_RENEWAL_INTERVAL",
        "SESSION_RENEWAL_GRACE",
        "SESSION_ENCRYPTION_KEYS",
        "SESSION_TRACK_CLIENT",
        "SESSION_MIGRATE_FROM",
        "SESSION_FLASK_LOGIN",
        "SESSION_METRICS",
        "SESSION_STORE_WRAPPER",
        "SESSION_MIGRATE_ROLLING",
        "SESSION_MIGRATE_ALLOW_PICKLE",
        "SESSION_SERIALIZATION_FORMAT",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_PARTITIONED",
    }
)
#: Flask-Session 0.8 keys that mean nothing here: accepted, with one log line.
FLASK_SESSION_ONLY = {
    "SESSION_CLEANUP_N_REQUESTS": "expired sessions are removed by the store itself",
    "SESSION_FILE_DIR": "the filesystem backend is not supported",
    "SESSION_FILE_THRESHOLD": "the filesystem backend is not supported",
    "SESSION_FILE_MODE": "the filesystem backend is not supported",
    "SESSION_CACHELIB": "the cachelib backend is not supported",
    "SESSION_MONGODB": "the MongoDB backend is not supported",
    "SESSION_MONGODB_DB": "the MongoDB backend is not supported",
    "SESSION_MONGODB_COLLECT": "the MongoDB backend is not supported",
    "SESSION_SQLALCHEMY_SEQUENCE": "session rows are keyed by the session's digest, not a sequence",
    "SESSION_DYNAMODB": "the DynamoDB backend is not supported",
    "SESSION_DYNAMODB_TABLE": "the DynamoDB backend is not supported",
    "SESSION_DYNAMODB_TABLE_EXISTS": "the DynamoDB backend is not supported",
}
#: The ASGI middleware's keyword options and the keys they stand for.
OPTION_KEYS = {
    "session_cookie": "SESSION_COOKIE_NAME",
    "max_age": "PERMANENT_SESSION_LIFETIME",
    "path": "SESSION_COOKIE_PATH",
    "domain": "SESSION_COOKIE_DOMAIN",
    "same_site": "SESSION_COOKIE_SAMESITE",
    "https_only": "SESSION_COOKIE_SECURE",
    "partitioned": "SESSION_COOKIE_PARTITIONED",
    "permanent": "SESSION_PERMANENT",
    "refresh_each_request": "SESSION_REFRESH_EACH_REQUEST",
    "absolute_lifetime": "SESSION_ABSOLUTE_LIFETIME",
    "renewal": "SESSION_RENEWAL_INTERVAL",
    "renewal_grace": "SESSION_RENEWAL_GRACE",
    "max_size": "SESSION_MAX_SIZE",
    "max_keys": "SESSION_MAX_KEYS",
    "encryption_keys": "SESSION_ENCRYPTION_KEYS",
    "on_store_error": "SESSION_ON_STORE_ERROR",
    "track_client": "SESSION_TRACK_CLIENT",
    "id_length": "SESSION_ID_LENGTH",
    "migrate_from": "SESSION_MIGRATE_FROM",
    "migrate_rolling": "SESSION_MIGRATE_ROLLING",
    "metrics": "SESSION_METRICS",
    "store_wrapper": "SESSION_STORE_WRAPPER",
    "secret_key": "SECRET_KEY",
}


class _Reader:
    """Reads keys from a config mapping; errors name the key as the user wrote it."""

    def __init__(self, config: Mapping[str, Any], labels: Mapping[str, str]) -> None:
        self.config = config
        self.labels = labels

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def fail(self, message: str) -> ConfigurationError:
        return ConfigurationError(message)

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{self.label(key)} must be True or False, got {value!r}.")
        return value

    def seconds(self, key: str, default: Any) -> float | None:
        value = self.config.get(key, default)
        if value is None:
            return None
        if isinstance(value, dt.timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise self.fail(
                f"{self.label(key)} must be a datetime.timedelta or a number of seconds,"
                f" got {value!r}."
            )
        if seconds <= 0:
            raise self.fail(f"{self.label(key)} must be positive, got {value!r}.")
        return seconds

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.config.get(key) or choices[0]
        if not isinstance(value, str) or value.lower() not in choices:
            raise self.fail(
                f"{self.label(key)} = {value!r} is not supported; use one of"
                f" {', '.join(map(repr, choices))}."
            )
        return value.lower()

    def positive_int(
        self, key: str, default: int | None, *, low: int = 1, unit: str, optional: bool = False
    ) -> int | None:
        value = self.config.get(key, default)
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise self.fail(
                f"{self.label(key)} must be an int of at least {low} ({unit}), got {value!r}."
            )
        return value


@dataclass(frozen=True)
class SQLAlchemyOptions:
    """``SESSION_SQLALCHEMY`` and its keys, as given (checked by the store)."""

    bind: Any = None
    table: str = "sharedsession"
    schema: str | None = None
    bind_key: str | None = None


def _sqlalchemy(read: _Reader) -> SQLAlchemyOptions:
    # Flask-Session falls back to the app's Flask-SQLAlchemy database too.
    bind = read.get("SESSION_SQLALCHEMY") or read.get("SQLALCHEMY_DATABASE_URI")
    table = read.get("SESSION_SQLALCHEMY_TABLE") or SQLAlchemyOptions.table
    for key, value in [("SESSION_SQLALCHEMY_TABLE", table)] + [
        (key, read.get(key)) for key in ("SESSION_SQLALCHEMY_SCHEMA", "SESSION_SQLALCHEMY_BIND_KEY")
    ]:
        if value is not None and not (isinstance(value, str) and value):
            raise read.fail(f"{read.label(key)} must be a name (a str), got {value!r}.")
    return SQLAlchemyOptions(
        bind, table, read.get("SESSION_SQLALCHEMY_SCHEMA"), read.get("SESSION_SQLALCHEMY_BIND_KEY")
    )


@dataclass(frozen=True)
class Settings:
    """Checked session settings; see the README's config table for each key."""

    session_type: str
    redis: Any
    redis_timeout: float
    redis_min_replicas: int
    redis_max_connections: int
    memcached: Any
    memcached_timeout: float
    key_prefix: str
    sqlite_path: str
    permanent: bool
    refresh_each_request: bool
    use_signer: bool
    id_bytes: int
    lifetime: float
    absolute_lifetime: float | None
    max_size: int | None
    max_keys: int | None
    max_per_user: int | None
    on_store_error: str
    secret_keys: tuple[str | bytes, ...]
    renewal: float | None
    renewal_grace: float
    encryption_keys: tuple[str | bytes, ...]
    track_client: bool
    cookie: CookieAttributes
    migrate_from: str | None
    migrate_explicit: bool
    migrate_rolling: bool
    migrate_allow_pickle: bool
    serialization_format: str
    flask_login: bool
    metrics: bool
    store_wrapper: Any
    sqlalchemy: SQLAlchemyOptions = SQLAlchemyOptions()

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        *,
        instance_path: str,
        labels: Mapping[str, str] | None = None,
    ) -> Settings:
        """Read and check the keys.

        :param config: The app's config.
        :param instance_path: Folder of the default SQLite file.
        :param labels: How to name a key in error messages (the ASGI options).
        :raises ConfigurationError: A key has a value that cannot work; the
            message says which and what to use instead.
        """
        read = _Reader(config, labels or {})
        if labels is None:
            _report_unknown_keys(config)
        id_bytes = read.positive_int(
            "SESSION_ID_LENGTH", MIN_ID_BYTES, low=MIN_ID_BYTES, unit="bytes of randomness"
        )
        assert id_bytes is not None
        if id_bytes > MAX_ID_BYTES:
            raise read.fail(
                f"{read.label('SESSION_ID_LENGTH')} must be at most {MAX_ID_BYTES} (longer IDs"
                f" do not fit a cookie value this library accepts), got {id_bytes!r}."
            )
        prefix = read.get("SESSION_KEY_PREFIX", "session:")
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise read.fail(f"SESSION_KEY_PREFIX must be a str without braces, got {prefix!r}.")
        sqlite_path = read.get("SESSION_SQLITE_PATH") or os.path.join(
            instance_path, DEFAULT_SQLITE_FILE
        )
        if not isinstance(sqlite_path, (str, os.PathLike)):
            raise read.fail(f"SESSION_SQLITE_PATH must be a path, got {sqlite_path!r}.")
        secret_keys = _secret_keys(read)
        use_signer = read.flag("SESSION_USE_SIGNER", False)
        if use_signer and not secret_keys:
            raise read.fail(
                f"SESSION_USE_SIGNER is on but {read.label('SECRET_KEY')} is not set; set it to"
                " a long random string (python -c 'import secrets; print(secrets.token_hex())')."
            )
        lifetime = read.seconds("PERMANENT_SESSION_LIFETIME", DEFAULT_LIFETIME)
        if lifetime is None:
            raise read.fail(f"{read.label('PERMANENT_SESSION_LIFETIME')} must not be None.")
        encryption_keys = read.get("SESSION_ENCRYPTION_KEYS") or ()
        if isinstance(encryption_keys, (str, bytes)) or not isinstance(
            encryption_keys, (list, tuple)
        ):
            raise read.fail(
                f"{read.label('SESSION_ENCRYPTION_KEYS')} must be a list of keys, the current"
                f" one first, got {type(encryption_keys).__name__}."
            )
        session_type = _session_type(read)
        return cls(
            session_type=session_type,
            redis=read.get("SESSION_REDIS") or DEFAULT_REDIS_URL,
            redis_timeout=read.seconds("SESSION_REDIS_TIMEOUT", DEFAULT_REDIS_TIMEOUT)
            or DEFAULT_REDIS_TIMEOUT,
            redis_min_replicas=read.positive_int(
                "SESSION_REDIS_MIN_REPLICAS", 0, low=0, unit="replicas"
            )
            or 0,
            redis_max_connections=read.positive_int(
                "SESSION_REDIS_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, unit="connections"
            )
            or DEFAULT_MAX_CONNECTIONS,
            memcached=read.get("SESSION_MEMCACHED") or DEFAULT_MEMCACHED,
            memcached_timeout=read.seconds("SESSION_MEMCACHED_TIMEOUT", DEFAULT_MEMCACHED_TIMEOUT)
            or DEFAULT_MEMCACHED_TIMEOUT,
            key_prefix=prefix,
            sqlite_path=os.fspath(sqlite_path),
            permanent=read.flag("SESSION_PERMANENT", True),
            refresh_each_request=read.flag("SESSION_REFRESH_EACH_REQUEST", True),
            use_signer=use_signer,
            id_bytes=id_bytes,
            lifetime=lifetime,
            absolute_lifetime=read.seconds("SESSION_ABSOLUTE_LIFETIME", None),
            max_size=read.positive_int("SESSION_MAX_SIZE", None, unit="bytes", optional=True),
            max_per_user=read.positive_int(
                "SESSION_MAX_PER_USER", None, unit="sessions", optional=True
            ),
            max_keys=read.positive_int(
                "SESSION_MAX_KEYS", DEFAULT_MAX_KEYS, unit="keys", optional=True
            ),
            on_store_error=read.choice("SESSION_ON_STORE_ERROR", ON_STORE_ERROR),
            secret_keys=secret_keys,
            renewal=read.seconds("SESSION_RENEWAL_INTERVAL", None),
            renewal_grace=read.seconds("SESSION_RENEWAL_GRACE", DEFAULT_RENEWAL_GRACE)
            or DEFAULT_RENEWAL_GRACE,
            encryption_keys=tuple(encryption_keys),
            track_client=read.flag("SESSION_TRACK_CLIENT", False),
            cookie=cookie_from_config(config, labels=labels),
            migrate_from=_migrate_from(read, session_type, bool(encryption_keys)),
            migrate_explicit=config.get("SESSION_MIGRATE_FROM") is not None,
            migrate_rolling=read.flag("SESSION_MIGRATE_ROLLING", False),
            migrate_allow_pickle=read.flag("SESSION_MIGRATE_ALLOW_PICKLE", False),
            serialization_format=read.choice("SESSION_SERIALIZATION_FORMAT", FORMATS),
            flask_login=read.flag("SESSION_FLASK_LOGIN", True),
            metrics=read.flag("SESSION_METRICS", False),
            store_wrapper=_callable(read, "SESSION_STORE_WRAPPER"),
            sqlalchemy=_sqlalchemy(read),
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Settings:
        """Settings from the ASGI middleware's keyword options (see :data:`OPTION_KEYS`).

        Each option takes what its Flask key takes. ``secret_key`` may be a
        list (the current key first) and turns signing on; ``max_age=None``
        makes browser-session cookies, as in Starlette.
        """
        config: dict[str, Any] = {}
        for option, value in options.items():
            config[OPTION_KEYS[option]] = value
        if config.get("PERMANENT_SESSION_LIFETIME", DEFAULT_LIFETIME) is None:
            config["PERMANENT_SESSION_LIFETIME"] = DEFAULT_LIFETIME
            config["SESSION_PERMANENT"] = False
        keys = config.pop("SECRET_KEY", None)
        keys = [keys] if isinstance(keys, (str, bytes)) else list(keys or ())
        if not all(isinstance(k, (str, bytes)) and k for k in keys):
            raise ConfigurationError(
                "secret_key (SECRET_KEY) must be a non-empty str or bytes, or a list of them"
                f" (the current key first), got {options.get('secret_key')!r}."
            )
        if keys:
            config.update(SECRET_KEY=keys[0], SECRET_KEY_FALLBACKS=keys[1:])
            config["SESSION_USE_SIGNER"] = True
        labels = {key: f"{option} ({key})" for option, key in OPTION_KEYS.items()}
        return cls.from_mapping(config, instance_path=os.getcwd(), labels=labels)

    def manager(self) -> SessionManager:
        """The manager these settings describe."""
        return SessionManager(
            ExpiryPolicy(self.lifetime, self.absolute_lifetime),
            permanent=self.permanent,
            refresh_each_request=self.refresh_each_request,
            id_bytes=self.id_bytes,
            signer=CookieSigner(self.secret_keys) if self.use_signer else None,
            max_size=self.max_size,
            max_keys=self.max_keys,
            degrade=self.on_store_error == "degrade",
            renewal=self.renewal,
            renewal_grace=self.renewal_grace,
            encryptor=Encryptor(self.encryption_keys) if self.encryption_keys else None,
        )

    def migration(self, store: Any) -> Migration | None:
        """Adoption of Flask-Session's sessions for ``store``, when configured and possible.

        :raises ConfigurationError: Asked for explicitly, but ``store`` cannot
            read Flask-Session's data (only the Redis stores can).
        """
        if self.migrate_from is None:
            return None
        options = getattr(store, "options", None)
        if not self.migrate_explicit and getattr(options, "cluster", False):
            return None  # Flask-Session never ran on a Redis Cluster: nothing to adopt
        if not hasattr(store, "read_flask_session"):
            if self.session_type == "redis" and not self.migrate_explicit:
                return None  # a custom store: nothing to adopt from
            raise ConfigurationError(
                "SESSION_MIGRATE_FROM = 'flask-session' needs the Redis store (Flask-Session's"
                " Redis data is what is adopted); set it to None for this store."
            )
        if self.migrate_allow_pickle:
            logger.warning(
                "SESSION_MIGRATE_ALLOW_PICKLE is on: pickled Flask-Session data will be"
                " unpickled, which runs code; only if nobody else can write to this Redis"
            )
        if self.encryption_keys:
            logger.warning(
                "SESSION_MIGRATE_FROM is on with SESSION_ENCRYPTION_KEYS: whoever can write to"
                " Redis can plant a Flask-Session session to be adopted%s; turn migration off"
                " once the switch is done",
                " (and rolling mode keeps plain copies)" if self.migrate_rolling else "",
            )
        encoding = FlaskSessionFormat(
            self.serialization_format, allow_pickle=self.migrate_allow_pickle
        )
        # A revoked session's Flask-Session copy may outlive the default memory of it.
        store.revoked_ms = max(store.revoked_ms, int(self.lifetime * 1000))
        return Migration(
            encoding,
            rolling=self.migrate_rolling,
            lifetime=self.lifetime,
            user_key="_user_id" if self.flask_login else None,
        )

    def wrap(self, store: Any) -> Any:
        """``store`` as the app uses it: through ``SESSION_STORE_WRAPPER``, then metrics."""
        if self.store_wrapper is not None:
            store = self.store_wrapper(store)
        if self.metrics:
            from .metrics import instrument

            store = instrument(store)
        return store

    def store(self) -> SessionStore:
        """A new blocking store for ``SESSION_TYPE``."""
        store: SessionStore = self._backend().from_settings(self, asyncio=False)
        return store

    def async_store(self) -> AsyncSessionStore:
        """A new async store for ``SESSION_TYPE`` (Quart and the ASGI middleware)."""
        store: AsyncSessionStore = self._backend().from_settings(self, asyncio=True)
        return store

    def _backend(self) -> Any:
        return importlib.import_module(STORE_TYPES[self.session_type])

    def log_warnings(self, *, debug: bool, store: Any = None) -> None:
        """Log what a deployment should fix; quiet in debug and testing."""
        if debug:
            return
        reach = _reach(store)
        if reach == "process":
            logger.warning(
                "sessions live in this process's memory (SESSION_TYPE = 'memory'): other"
                " workers and machines do not see them. Use 'sqlite' for one machine or"
                " 'redis' for several."
            )
        elif reach == "machine":
            logger.info(
                "sessions are shared by the processes of this machine only (a SQLite file, or"
                " a server on a loopback address or Unix socket); behind a load balancer with"
                " several machines, point every instance at one server all of them reach."
            )
        if not self.cookie.secure:
            logger.warning(
                "SESSION_COOKIE_SECURE is off: the session cookie will also be sent over plain"
                " HTTP, where anyone on the network can read it and take over the session."
                " Set SESSION_COOKIE_SECURE = True (https_only=True on ASGI) when the app is"
                " served over HTTPS."
            )


def _reach(store: Any) -> str | None:
    """Who shares ``store``'s sessions (its ``reach``), looking through wrappers."""
    while store is not None and not hasattr(store, "reach") and hasattr(store, "store"):
        store = store.store
    reach: str | None = getattr(store, "reach", None)
    return reach


def _callable(read: _Reader, key: str) -> Any:
    value = read.get(key)
    if value is not None and not callable(value):
        raise read.fail(f"{read.label(key)} must be a callable taking the store, got {value!r}.")
    return value


def _migrate_from(read: _Reader, session_type: str, encrypted: bool) -> str | None:
    # On by default for Redis, where Flask-Session's sessions are; off with
    # encryption, where adopting plain data would let a store writer forge one.
    default = "flask-session" if session_type == "redis" and not encrypted else None
    value = read.get("SESSION_MIGRATE_FROM", default)
    if value is not None and value != "flask-session":
        raise read.fail(
            f"{read.label('SESSION_MIGRATE_FROM')} must be 'flask-session' or None, got {value!r}."
        )
    return value  # type: ignore[no-any-return]


def _session_type(read: _Reader) -> str:
    value = read.get("SESSION_TYPE")
    if value is None:
        # Flask-Session refuses SESSION_REDIS without a type; a silent local
        # SQLite file would not be shared across machines, so Redis it is
        # (memcached or SQL for SESSION_MEMCACHED or SESSION_SQLALCHEMY alone).
        for key, implied in (
            ("SESSION_REDIS", "redis"),
            ("SESSION_MEMCACHED", "memcached"),
            ("SESSION_SQLALCHEMY", "sqlalchemy"),
        ):
            if read.get(key) is not None:
                return implied
        return "sqlite"
    return read.choice("SESSION_TYPE", tuple(STORE_TYPES))


def cookie_from_config(
    config: Mapping[str, Any], *, labels: Mapping[str, str] | None = None
) -> CookieAttributes:
    """The cookie attributes the config describes, checked as browsers require."""
    read = _Reader(config, labels or {})
    for key in ("SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_PATH"):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise read.fail(f"{read.label(key)} must be a str or None, got {value!r}.")
    return make_attributes(
        config.get("SESSION_COOKIE_NAME") or "session",
        path=config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
        domain=config.get("SESSION_COOKIE_DOMAIN") or None,
        secure=read.flag("SESSION_COOKIE_SECURE", False),
        httponly=read.flag("SESSION_COOKIE_HTTPONLY", True),
        samesite=config.get("SESSION_COOKIE_SAMESITE"),
        partitioned=read.flag("SESSION_COOKIE_PARTITIONED", False),
        labels=labels,
    )


def _secret_keys(read: _Reader) -> tuple[str | bytes, ...]:
    current = read.get("SECRET_KEY")
    if not current:
        return ()
    # New cookies are signed with SECRET_KEY; SECRET_KEY_FALLBACKS only verify.
    return (current, *(read.get("SECRET_KEY_FALLBACKS") or ()))


def _report_unknown_keys(config: Mapping[str, Any]) -> None:
    for key in config:
        if not isinstance(key, str) or not key.startswith("SESSION_") or key in KEYS:
            continue
        if key in FLASK_SESSION_ONLY:
            logger.info(
                "%s is a Flask-Session setting with no effect here: %s.",
                key,
                FLASK_SESSION_ONLY[key],
            )
            continue
        close = difflib.get_close_matches(key, sorted(KEYS | set(FLASK_SESSION_ONLY)), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        logger.warning(
            "%s is not a setting of sharedsession or Flask-Session; it is ignored.%s", key, hint
        )
