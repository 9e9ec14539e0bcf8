"""Encryption at rest: each stored value sealed with AES-256-GCM.

The first key encrypts; every key decrypts, so keys rotate by putting a new
one first and dropping the old one once every session has been written again
or has expired (one ``PERMANENT_SESSION_LIFETIME``). Values read under an old
key are written again under the new one by the next save of their session.

Each value is bound to its session and its key name (the AEAD's associated
data), so a value copied into another session or under another name does not
decrypt. A fresh random 96-bit nonce is drawn for every write.

The session's metadata is sealed too: creation time, absolute deadline and
bound user live in one encrypted field (:data:`META`) that the manager trusts
over the store's plain copies, and the store indexes users by an HMAC of
their ID (:meth:`Encryptor.user_handle`), never the ID itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence

from .errors import ConfigurationError

#: Marks an encrypted value; a value without it is refused, never read as plaintext.
PREFIX = "enc1:"
#: The stored field holding a session's sealed metadata (session keys cannot
#: start with NUL, so no user key collides with it).
META = "\x00meta"
#: The name sealed client information is bound to.
CLIENT = "\x00client"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


def generate_key() -> str:
    """A new random 256-bit key, URL-safe base64, for ``SESSION_ENCRYPTION_KEYS``."""
    return secrets.token_urlsafe(32)


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, str):
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except (binascii.Error, ValueError):
            raw = b""
    else:
        raw = key
    if len(raw) != 32:
        raise ConfigurationError(
            "each SESSION_ENCRYPTION_KEYS entry must be 32 random bytes or their URL-safe"
            " base64; make one with: python -c 'from sharedsession.crypto import"
            " generate_key; print(generate_key())'"
        )
    return raw


class Encryptor:
    """Seal and open stored values.

    :param keys: The current key first, then older keys still accepted.
    :raises ConfigurationError: No key, a malformed key, or ``cryptography`` missing.
    """

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise ConfigurationError(
                "SESSION_ENCRYPTION_KEYS needs cryptography:"
                " pip install 'sharedsession[encryption]'"
            ) from exc
        if isinstance(keys, (str, bytes)) or not keys:
            raise ConfigurationError("SESSION_ENCRYPTION_KEYS must be a non-empty list of keys")
        raws = [_key_bytes(key) for key in keys]
        self._keys = {hashlib.sha256(raw).digest()[:_KEY_ID_BYTES]: AESGCM(raw) for raw in raws}
        self._current = hashlib.sha256(raws[0]).digest()[:_KEY_ID_BYTES]
        # A separate key per encryption key, for user handles only.
        self._macs = [hashlib.sha256(b"sharedsession user handle\0" + raw).digest() for raw in raws]

    @staticmethod
    def _aad(handle: str, name: str) -> bytes:
        return f"{handle}\x00{name}".encode()

    def encrypt(self, handle: str, name: str, text: str) -> str:
        """Seal ``text``, the value of key ``name`` in the session stored at ``handle``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, text.encode(), self._aad(handle, name))
        token = base64.urlsafe_b64encode(self._current + nonce + sealed).decode("ascii")
        return PREFIX + token

    def decrypt(self, handle: str, name: str, value: str) -> tuple[str, bool]:
        """Open a sealed value.

        :returns: The text, and whether the current key sealed it.
        :raises ValueError: Not sealed, sealed with an unknown key, or tampered with.
        """
        from cryptography.exceptions import InvalidTag

        if not value.startswith(PREFIX):
            raise ValueError("the value is not encrypted")
        try:
            blob = base64.urlsafe_b64decode(value[len(PREFIX) :])
        except (binascii.Error, ValueError):
            raise ValueError("the value is not valid base64") from None
        key_id, nonce = blob[:_KEY_ID_BYTES], blob[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
        aead = self._keys.get(key_id)
        if aead is None:
            raise ValueError("the value was encrypted with a key that is not configured")
        try:
            plain = aead.decrypt(
                nonce, blob[_KEY_ID_BYTES + _NONCE_BYTES :], self._aad(handle, name)
            )
        except InvalidTag:
            raise ValueError("the value failed authentication") from None
        return plain.decode(), key_id == self._current

    def user_handle(self, user_id: str, *, key: int = 0) -> str:
        """What the store indexes ``user_id`` by: an HMAC under the current key (or ``key``)."""
        mac = hmac.new(self._macs[key], user_id.encode(), hashlib.sha256).digest()
        return "u1:" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def user_handles(self, user_id: str) -> list[str]:
        """``user_id``'s handle under every key: sessions bound before a rotation too."""
        return [self.user_handle(user_id, key=i) for i in range(len(self._macs))]
