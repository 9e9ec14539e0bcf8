"""Flask-Session 0.8's Redis data: read it to adopt sessions, write it during a rolling deploy.

Flask-Session keeps a session under ``{SESSION_KEY_PREFIX}{sid}`` (the raw ID,
unlike this library's digest keys) as one msgspec-encoded blob: msgpack by
default, JSON with ``SESSION_SERIALIZATION_FORMAT = "json"``, and pickle in
data written by versions before 0.7. Pickle runs code while it loads, so a
pickled session is read only with ``SESSION_MIGRATE_ALLOW_PICKLE = True``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from typing import Any

import msgspec

from . import serialization
from .errors import ConfigurationError
from .errors import SerializationError

logger = logging.getLogger("sharedsession")

FORMATS = ("msgpack", "json")
#: A stored field marking a session adopted from Flask-Session (session keys
#: cannot start with NUL): ending it also deletes Flask-Session's copy.
ADOPTED = "\x00adopted"
#: Every pickle of protocol 2 or later starts with this byte.
_PICKLE_MARK = b"\x80"


class FlaskSessionFormat:
    """Decode and encode Flask-Session's session blobs.

    :param serialization_format: ``SESSION_SERIALIZATION_FORMAT``: ``"msgpack"``
        or ``"json"``; the other is tried too, as Flask-Session does.
    :param allow_pickle: Unpickle data that older versions wrote. Only for a
        store nobody else can write to: unpickling runs code.
    :raises ConfigurationError: The format is unknown.
    """

    def __init__(self, serialization_format: str = "msgpack", *, allow_pickle: bool = False):
        if serialization_format not in FORMATS:
            raise ConfigurationError(
                f"SESSION_SERIALIZATION_FORMAT must be 'msgpack' or 'json', got"
                f" {serialization_format!r}."
            )
        # Types msgspec cannot encode (Markup, ...) are written as text, as
        # Flask-Session's readers would need them anyway.
        msgpack = (msgspec.msgpack.Encoder(enc_hook=str), msgspec.msgpack.Decoder())
        json = (msgspec.json.Encoder(enc_hook=str), msgspec.json.Decoder())
        first, second = (msgpack, json) if serialization_format == "msgpack" else (json, msgpack)
        self._encoder = first[0]
        self._decoders = (first[1], second[1])
        self._error = msgspec.DecodeError
        self.allow_pickle = allow_pickle

    def decode(self, blob: bytes) -> dict[str, Any] | None:
        """The session in ``blob``, or ``None`` (logged) when it cannot be adopted."""
        data, reason = self.read(blob)
        if data is None:
            logger.warning("a Flask-Session session was not adopted: %s", reason)
        return data

    def read(self, blob: bytes) -> tuple[dict[str, Any] | None, str]:
        """The session in ``blob``, or ``None`` and why it cannot be adopted."""
        if blob[:1] == _PICKLE_MARK:
            if not self.allow_pickle:
                return None, (
                    "pickled (written before Flask-Session 0.7); allow with"
                    " SESSION_MIGRATE_ALLOW_PICKLE = True (--allow-pickle)"
                )
            return _checked(_unpickle(blob))
        for decoder in self._decoders:
            try:
                return _checked(decoder.decode(blob))
            except self._error:
                continue
        return None, "neither msgpack nor JSON"

    def encode(self, data: Mapping[str, Any]) -> bytes:
        """``data`` as Flask-Session 0.8 stores it."""
        blob: bytes = self._encoder.encode(dict(data))
        return blob

    def decode_one(self, blob: bytes) -> Any:
        """The value ``{"v": value}`` that :meth:`encode` wrote."""
        return self._decoders[0].decode(blob)["v"]


def _unpickle(blob: bytes) -> Any:
    # Only with SESSION_MIGRATE_ALLOW_PICKLE: unpickling runs code.
    try:
        return pickle.loads(blob)
    except Exception:  # a damaged pickle can raise almost anything
        return None


def _checked(data: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        return None, "not a dict of str keys"
    return data, ""


def legacy_key(prefix: str, sid: str) -> str:
    """Flask-Session's Redis key of the session ``sid``."""
    return f"{prefix}{sid}"


class Migration:
    """Adopting Flask-Session's sessions, and mirroring to them during a rolling deploy.

    :param format: How Flask-Session's blobs are encoded.
    :param rolling: Keep Flask-Session's copy of every session the new
        instances touch current (``SESSION_MIGRATE_ROLLING``), and take it as
        the truth when reading, so old and new instances agree.
    :param lifetime: Seconds Flask-Session keeps a session
        (``PERMANENT_SESSION_LIFETIME``), for the copies written here.
    """

    def __init__(
        self,
        format: FlaskSessionFormat,
        *,
        rolling: bool,
        lifetime: float,
        user_key: str | None = "_user_id",
    ) -> None:
        self.format = format
        self.rolling = rolling
        self.lifetime_ms = int(lifetime * 1000)
        #: The session key naming the logged-in user (Flask-Login's), bound on adoption.
        self.user_key = user_key

    def user_of(self, data: Mapping[str, Any]) -> str | None:
        """Who an adopted session belongs to, so "log out other devices" finds it."""
        if self.user_key is None or data.get(self.user_key) is None:
            return None
        return str(data[self.user_key]) or None

    def same(self, ours: Any, theirs: Any) -> bool:
        """Whether Flask-Session's value is ours as Flask-Session would store it
        (then ours, with its richer type, is kept)."""
        try:
            normalised = self.format.decode_one(self.format.encode({"v": ours}))
        except (TypeError, ValueError):
            return False
        return bool(normalised == theirs)

    def texts(self, data: Mapping[str, Any]) -> dict[str, str] | None:
        """Flask-Session's values serialized as this library stores them, or ``None`` (logged)."""
        try:
            return {name: serialization.dumps(name, value) for name, value in data.items()}
        except SerializationError as exc:
            logger.warning("a Flask-Session session holds a value that cannot be adopted: %s", exc)
            return None

    def image(self, data: Mapping[str, Any]) -> bytes | None:
        """``data`` as Flask-Session stores it, or ``None`` (logged) if it cannot be."""
        try:
            return self.format.encode(data)
        except (TypeError, ValueError) as exc:
            logger.warning("a session could not be written for Flask-Session: %s", exc)
            return None
