"""Tagged JSON for session values; no pickle.

Each top-level session value is serialized on its own, so a save can write
just the keys that changed and ``redis-cli HGETALL`` shows readable JSON.
Types JSON lacks are written as one-key objects whose key starts with a
space, e.g. ``{" t": [1, 2]}`` for the tuple ``(1, 2)``; a user dict that
looks like such a tag is escaped, so every value round-trips exactly.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from .errors import SerializationError

try:
    from markupsafe import Markup
except ImportError:  # pragma: no cover - markupsafe ships with Flask and Jinja
    Markup = None  # type: ignore[assignment,misc]

_PLAIN = (str, int, float, bool, type(None))


def dumps(key: str, value: Any) -> str:
    """Serialize the value of one top-level session key.

    :raises SerializationError: The value holds a type that cannot round-trip;
        the error names ``key``, the type and where it sits.
    """
    return _ENCODER.encode(_encode(value, key, ""))


def loads(text: str | bytes) -> Any:
    """Deserialize a value written by :func:`dumps`."""
    if isinstance(text, bytes):
        text = text.decode()
    if '{" ' not in text:
        # No tag can be in it (every tag is an object whose key starts with a
        # space): the C decoder alone, without a Python hook per object.
        return _PLAIN_DECODER.decode(text)
    return _DECODER.decode(text)


def _encode(value: Any, key: str, path: str) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is list:
        return [_encode(v, key, f"{path}[{i}]") for i, v in enumerate(value)]
    if cls is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise SerializationError(key, type(k), f"{path} (a dict key)")
            out[k] = _encode(v, key, f"{path}[{k!r}]")
        if len(out) == 1 and next(iter(out)).startswith(" "):
            return {" di": [[k, v] for k, v in out.items()]}
        return out
    if cls is tuple:
        return {" t": [_encode(v, key, f"{path}[{i}]") for i, v in enumerate(value)]}
    if cls is set or cls is frozenset:
        items = [_encode(v, key, f"{path}{{}}") for v in value]
        try:
            # Sorted, so an unchanged set serializes the same in every process.
            items.sort()
        except TypeError:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return {" s" if cls is set else " fs": items}
    if cls is bytes:
        return {" b": base64.b64encode(value).decode("ascii")}
    if Markup is not None and cls is Markup:
        return {" m": str(value)}
    if cls is uuid.UUID:
        return {" u": value.hex}
    if cls is dt.datetime:
        return {" dt": value.isoformat()}
    if cls is dt.date:
        return {" d": value.isoformat()}
    if cls is dt.time:
        return {" tm": value.isoformat()}
    if cls is Decimal:
        return {" dec": str(value)}
    raise SerializationError(key, cls, path)


def _decode_tag(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        return obj
    tag, payload = next(iter(obj.items()))
    if not tag.startswith(" "):
        return obj
    decode = _DECODERS.get(tag)
    if decode is None:
        raise ValueError(f"unknown serialization tag {tag!r}")
    return decode(payload)


def _markup(payload: str) -> Any:
    if Markup is None:  # pragma: no cover - see the import above
        raise ValueError("a stored value is Markup, but markupsafe is not installed")
    return Markup(payload)


_DECODERS: dict[str, Any] = {
    " t": tuple,
    " s": set,
    " fs": frozenset,
    " b": lambda p: base64.b64decode(p),
    " m": _markup,
    " u": uuid.UUID,
    " dt": dt.datetime.fromisoformat,
    " d": dt.date.fromisoformat,
    " tm": dt.time.fromisoformat,
    " dec": Decimal,
    " di": lambda pairs: {k: v for k, v in pairs},
}


# Made once: json.dumps/json.loads with options build a new coder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(object_hook=_decode_tag)
_PLAIN_DECODER = json.JSONDecoder()
