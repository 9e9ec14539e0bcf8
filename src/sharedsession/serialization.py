"""Tagged JSON for session values; no pickle.

Each top-level session value is serialized on its own, so a save can write
just the keys that changed and ``redis-cli HGETALL`` shows readable JSON.
Types JSON lacks are written as one-key objects whose key starts with a
space, e.g. ``{" t": [1, 2]}`` for the tuple ``(1, 2)``; a user dict that
looks like such a tag is escaped, so every value round-trips exactly.

A dict with a key that is not a str is written as ``{" dk": [[key, value],
...]}`` (keys may be int, float, bool or None). A datetime or time whose
tzinfo is a :class:`zoneinfo.ZoneInfo` is written as ``{" dtz": [wall time,
zone key, fold]}`` (``" tmz"`` for a time), so it comes back in its zone.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from typing import TypeVar
from zoneinfo import ZoneInfo

import msgspec
import orjson

from .errors import SerializationError

try:
    from markupsafe import Markup
except ImportError:  # pragma: no cover - markupsafe ships with Flask and Jinja
    Markup = None  # type: ignore[assignment,misc]

_PLAIN = (str, int, float, bool, type(None))
_Clock = TypeVar("_Clock", dt.datetime, dt.time)

_TZ_REASON = (
    "holds a {name} tzinfo, which sessions cannot store. Give datetimes and times a"
    " zoneinfo.ZoneInfo made from a key, e.g. ZoneInfo('Europe/Paris') (not"
    " ZoneInfo.from_file), or a datetime.timezone, e.g. datetime.timezone.utc;"
    " for a pytz zone, use ZoneInfo(tz.zone)."
)
_UTF8_REASON = (
    "holds a str with {char}, which is not valid UTF-8 and cannot be stored. Such"
    " strings usually come from os.fsdecode or errors='surrogateescape'; decode the"
    " bytes with their real encoding (or errors='replace') before storing them."
)


def dumps(key: str, value: Any) -> str:
    """Serialize the value of one top-level session key.

    :raises SerializationError: The value holds a type that cannot round-trip,
        or a str that is not valid UTF-8; the error names ``key``, and the type
        and where it sits when known.
    """
    try:
        text = _ENCODER.encode(_encode(value))
    except _Refused as refused:
        # Where it sits is worked out only now: the walk itself builds no paths.
        path = _path_to(value, refused.found, "") or ""
        if refused.is_key:
            path += " (a dict key)"
        elif refused.reason is not None:
            path += ".tzinfo"
        raise SerializationError(key, refused.type_, path, refused.reason) from None
    if not text.isascii():
        _check_utf8(text, key)
    if not key.isascii():
        _check_utf8(key, key)  # the key is stored too
    return text


def same_text(value: Any, text: str) -> bool:
    """Whether ``value``, decoded from the stored ``text`` and perhaps changed in
    place since, still serializes to ``text``: the quick check at save of a
    value the request read but did not assign.

    ``text`` must hold no tag (:func:`decode` tells): a tagged value is
    compared by :func:`dumps`. A str, int, float, bool or None cannot change
    in place. A list or dict is written again by orjson and the texts
    compared. orjson refuses what :func:`dumps` would tag or refuse (a
    datetime, a set, a subclass such as ``OrderedDict`` or ``Markup``, a
    non-str dict key, an int beyond 64 bits): the answer is then ``False``,
    and :func:`dumps` decides. It writes a tuple as a list, a
    :class:`~uuid.UUID` as its text and an :class:`~enum.Enum` member as its
    value (whatever its type), so an in-place change that only swaps a plain
    value for one of those, with the same JSON, is not seen. It writes NaN
    and the infinities as ``null``: a match whose text holds ``null``
    anywhere (even inside a string) is confirmed by the standard library's
    encoder, and is no match if that encoder cannot write the value.
    """
    if type(value) in _PLAIN:
        return True
    try:
        written = orjson.dumps(value, default=_refuse, option=_ORJSON_STRICT)
    except Exception:  # orjson's refusal, or whatever a subclass's own items() raises
        return False
    # surrogatepass: a stored lone surrogate (from before dumps refused them)
    # never matches what orjson writes, and never raises here.
    if written != text.encode("utf-8", "surrogatepass"):
        return False
    if b"null" not in written:
        return True
    try:
        return bool(_ENCODER.encode(value) == text)
    except Exception:  # a UUID or an Enum it cannot write: dumps decides, and raises
        return False


def _refuse(value: Any) -> Any:
    raise TypeError(type(value))


def loads(text: str | bytes) -> Any:
    """Deserialize a value written by :func:`dumps`.

    :raises ValueError: ``text`` is not a value :func:`dumps` writes.
    """
    return decode(text)[0]


def decode(text: str | bytes) -> tuple[Any, bool]:
    """:func:`loads`, and whether ``text`` holds no tag (its value can be
    compared by :func:`same_text`).

    :raises ValueError: ``text`` is not a value :func:`dumps` writes.
    """
    if isinstance(text, bytes):
        text = text.decode()
    # Every tag is an object whose key starts with a space.
    plain = '{" ' not in text
    try:
        if plain:
            # msgspec alone, without a Python hook per object. It decodes what
            # the standard library does, the same way, or refuses (NaN, the
            # infinities, a lone surrogate, escaped or not): then the standard
            # library.
            try:
                return _PLAIN_DECODER.decode(text), True
            except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
                return _STDLIB_PLAIN_DECODER.decode(text), True
        return _DECODER.decode(text), False
    except RecursionError as exc:
        raise ValueError("the stored value is nested too deeply to decode") from exc


def _check_utf8(text: str, key: str) -> None:
    # Checked once on the whole text: a lone surrogate would otherwise only
    # fail later, inside a store, after other keys were written.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = f"the lone surrogate {text[exc.start]!r}"
        raise SerializationError(key, str, reason=_UTF8_REASON.format(char=char)) from exc


class _Refused(Exception):
    """What the walk cannot store: ``found`` (a value, a dict key, or a datetime
    with a foreign tzinfo), its type, and the fix when there is a special one."""

    def __init__(
        self, found: Any, type_: type, *, is_key: bool = False, reason: str | None = None
    ) -> None:
        self.found, self.type_, self.is_key, self.reason = found, type_, is_key, reason


def _encode(value: Any) -> Any:
    # The hot path of every save (each accessed value is encoded again to see
    # whether it changed): plain leaves are handled inline, without a call.
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is list:
        return [v if type(v) in _PLAIN else _encode(v) for v in value]
    if cls is dict:
        return _encode_dict(value)
    if cls is tuple:
        return {" t": [v if type(v) in _PLAIN else _encode(v) for v in value]}
    if cls is set or cls is frozenset:
        return _encode_set(value)
    if cls is bytes:
        return {" b": base64.b64encode(value).decode("ascii")}
    if Markup is not None and cls is Markup:
        return {" m": str(value)}
    if cls is uuid.UUID:
        return {" u": value.hex}
    if cls is dt.datetime:
        return _encode_clock(value, " dt", " dtz")
    if cls is dt.date:
        return {" d": value.isoformat()}
    if cls is dt.time:
        return _encode_clock(value, " tm", " tmz")
    if cls is Decimal:
        return {" dec": str(value)}
    raise _Refused(value, cls)


def _encode_dict(value: dict[Any, Any]) -> Any:
    out = {}
    for k, v in value.items():
        if type(k) is not str:
            return {" dk": _encode_pairs(value)}
        out[k] = v if type(v) in _PLAIN else _encode(v)
    if len(out) == 1 and next(iter(out)).startswith(" "):
        return {" di": [[k, v] for k, v in out.items()]}
    return out


def _encode_pairs(value: dict[Any, Any]) -> list[list[Any]]:
    pairs = []
    for k, v in value.items():
        # type(), not isinstance(): a bool or IntEnum key must not come back as int.
        if type(k) not in _PLAIN:
            raise _Refused(k, type(k), is_key=True)
        pairs.append([k, _encode(v)])
    return pairs


def _encode_set(value: set[Any] | frozenset[Any]) -> Any:
    items = [_encode(v) for v in value]
    try:
        # Sorted, so an unchanged set serializes the same in every process.
        items.sort()
    except TypeError:
        items.sort(key=lambda v: json.dumps(v, sort_keys=True))
    return {" s" if type(value) is set else " fs": items}


def _encode_clock(value: _Clock, tag: str, zoned_tag: str) -> Any:
    tz = value.tzinfo
    if tz is None or type(tz) is dt.timezone:
        return {tag: value.isoformat()}
    if type(tz) is ZoneInfo and tz.key is not None:
        # The wall time, zone and fold, not the offset: the offset alone loses
        # the zone, and with it correct arithmetic across a DST change.
        return {zoned_tag: [value.replace(tzinfo=None).isoformat(), tz.key, value.fold]}
    name = f"{type(tz).__module__}.{type(tz).__qualname__}"
    raise _Refused(value, type(tz), reason=_TZ_REASON.format(name=name))


def _path_to(value: Any, found: Any, path: str) -> str | None:
    """Where ``found`` sits inside ``value`` (``[2]['price']``), the walk's order."""
    if value is found:
        return path
    cls = type(value)
    if cls is dict:
        for k, v in value.items():
            if k is found:
                return path
            inner = _path_to(v, found, f"{path}[{k!r}]")
            if inner is not None:
                return inner
    elif cls is list or cls is tuple:
        for i, v in enumerate(value):
            inner = _path_to(v, found, f"{path}[{i}]")
            if inner is not None:
                return inner
    elif cls is set or cls is frozenset:
        for v in value:
            inner = _path_to(v, found, f"{path}{{}}")
            if inner is not None:
                return inner
    return None


def _decode_tag(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        return obj
    tag, payload = next(iter(obj.items()))
    if not tag.startswith(" "):
        return obj
    entry = _DECODERS.get(tag)
    if entry is None:
        raise ValueError(f"unknown serialization tag {tag!r}")
    payload_type, decode = entry
    if type(payload) is not payload_type:
        raise ValueError(
            f"the {tag!r} tag should hold a {payload_type.__name__}, not {payload!r:.40}"
        )
    try:
        return decode(payload)
    except (TypeError, ArithmeticError) as exc:
        # Callers treat ValueError as "undecodable session"; a payload of the
        # right JSON type can still be refused (unhashable set items, Decimal("x")).
        raise ValueError(f"the {tag!r} tag holds a bad value: {exc!r}") from exc


def _markup(payload: str) -> Any:
    if Markup is None:  # pragma: no cover - see the import above
        raise ValueError("a stored value is Markup, but markupsafe is not installed")
    return Markup(payload)


def _pairs(key_types: tuple[type, ...]) -> Callable[[list[Any]], dict[Any, Any]]:
    def decode(payload: list[Any]) -> dict[Any, Any]:
        out = {}
        for pair in payload:
            match pair:
                case [k, v] if type(k) in key_types:
                    out[k] = v
                case _:
                    raise ValueError(f"a stored dict item is not a [key, value] pair: {pair!r:.40}")
        return out

    return decode


def _zoned(parse: Callable[[str], _Clock]) -> Callable[[list[Any]], _Clock]:
    def decode(payload: list[Any]) -> _Clock:
        match payload:
            case [str(wall), str(zone), int(fold)] if fold in (0, 1):
                value = parse(wall)
                if value.tzinfo is None:
                    return value.replace(tzinfo=_zone(zone), fold=fold)
        raise ValueError(
            f"a stored zoned datetime or time is not [wall, zone, fold]: {payload!r:.40}"
        )

    return decode


def _zone(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (LookupError, OSError) as exc:
        raise ValueError(f"unknown time zone {key!r}") from exc


_DECODERS: dict[str, tuple[type, Callable[[Any], Any]]] = {
    " t": (list, tuple),
    " s": (list, set),
    " fs": (list, frozenset),
    " b": (str, base64.b64decode),
    " m": (str, _markup),
    " u": (str, uuid.UUID),
    " dt": (str, dt.datetime.fromisoformat),
    " dtz": (list, _zoned(dt.datetime.fromisoformat)),
    " d": (str, dt.date.fromisoformat),
    " tm": (str, dt.time.fromisoformat),
    " tmz": (list, _zoned(dt.time.fromisoformat)),
    " dec": (str, Decimal),
    " di": (list, _pairs((str,))),
    " dk": (list, _pairs(_PLAIN)),
}


# Made once: json.dumps/json.loads with options build a new coder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(object_hook=_decode_tag)
_PLAIN_DECODER = msgspec.json.Decoder()
_STDLIB_PLAIN_DECODER = json.JSONDecoder()
# Subclasses of the JSON types, datetimes and dataclasses go to ``default``
# (which refuses them) instead of being written as their base type.
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
