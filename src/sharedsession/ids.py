"""Session IDs: generation, well-formedness, the store key, and cookie signing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

#: Bytes of randomness in a new ID; 32 bytes is 256 bits.
MIN_ID_BYTES = 32

#: Salt of signed cookie values, the same as Flask-Session's so that its signed
#: cookies stay valid after switching.
SIGNER_SALT = "flask-session"
_SALT = SIGNER_SALT.encode("ascii")

# A cookie value longer than this is garbage, whatever ``id_bytes`` is.
_MAX_ID_CHARS = 256
#: The most bytes of randomness whose IDs fit :data:`_MAX_ID_CHARS` characters.
MAX_ID_BYTES = _MAX_ID_CHARS * 3 // 4
_ID_RE = re.compile(r"[A-Za-z0-9_-]{43,256}")


def new_id(nbytes: int = MIN_ID_BYTES) -> str:
    """Return a fresh URL-safe session ID from the OS's CSPRNG.

    :param nbytes: Bytes of randomness, at least :data:`MIN_ID_BYTES`.
    """
    if nbytes < MIN_ID_BYTES:
        raise ValueError(f"nbytes must be at least {MIN_ID_BYTES}, got {nbytes}")
    return secrets.token_urlsafe(nbytes)


def is_well_formed(sid: str) -> bool:
    """Tell whether ``sid`` could be an ID this library issued (any length >= 256 bits)."""
    return len(sid) <= _MAX_ID_CHARS and _ID_RE.fullmatch(sid) is not None


def store_key(sid: str) -> str:
    """Return the key the store keeps a session under: the URL-safe SHA-256 of its ID.

    Whoever reads the store's keys, a log line or a backup cannot turn them
    back into a cookie, and a lookup compares digests, not secrets.
    """
    digest = hashlib.sha256(sid.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class CookieSigner:
    """Sign and verify session IDs in cookie values with HMAC.

    :param keys: Secret keys, the current one first, then older ones still accepted.
    """

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys or not all(keys):
            raise ValueError("CookieSigner needs at least one non-empty secret key")
        raw = [key.encode() if isinstance(key, str) else key for key in keys]
        # itsdangerous's Signer with Flask-Session's salt, "hmac" key derivation
        # and SHA-1, as Flask-Session signs: each key's derived key once, here,
        # and the MAC by OpenSSL's one-shot HMAC (itsdangerous derives the key
        # again and runs Python's HMAC on every call).
        self._keys = [hmac.digest(key, _SALT, "sha1") for key in raw]

    def sign(self, sid: str) -> str:
        """Return ``sid`` with its signature, made with the current key."""
        mac = hmac.digest(self._keys[0], sid.encode("ascii"), "sha1")
        return f"{sid}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"

    def unsign(self, value: str) -> tuple[str, bool] | None:
        """Verify a cookie value.

        :returns: ``(sid, current)`` where ``current`` says whether the current
            key signed it, or ``None`` when no key's signature matches.
        """
        try:
            signed = value.encode("ascii")
        except UnicodeError:
            return None
        sid, dot, signature = signed.rpartition(b".")
        if not dot:
            return None
        try:  # as itsdangerous reads it: padding optional
            mac = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
        except (binascii.Error, ValueError):
            return None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(hmac.digest(key, sid, "sha1"), mac):
                return sid.decode("ascii"), index == 0
        return None


def _successor_pad(old: str, size: int) -> bytes:
    return hashlib.shake_256(b"sharedsession successor\0" + old.encode("ascii")).digest(size)


def seal_successor(new: str, old: str) -> str:
    """Seal ``new`` so that only a holder of ``old`` can read it.

    A renewal leaves this at the old ID's store key for a short grace window:
    a request that still carries the old ID (it raced the renewal) finds the
    renewed session; the store, which never sees IDs, cannot.
    """
    raw = new.encode("ascii")
    sealed = bytes(a ^ b for a, b in zip(raw, _successor_pad(old, len(raw)), strict=True))
    return base64.urlsafe_b64encode(sealed).decode("ascii")


def unseal_successor(token: str, old: str) -> str | None:
    """The ID :func:`seal_successor` sealed with ``old``, or ``None`` if it is not one."""
    try:
        sealed = base64.urlsafe_b64decode(token.encode("ascii"))
    except (ValueError, UnicodeError):
        return None
    raw = bytes(a ^ b for a, b in zip(sealed, _successor_pad(old, len(sealed)), strict=True))
    try:
        sid = raw.decode("ascii")
    except UnicodeError:
        return None
    return sid if is_well_formed(sid) else None
