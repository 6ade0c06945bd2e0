"""What the providers' wire models share: a msgspec `Wire` base and `decode`.

A model is a frozen `msgspec.Struct` whose fields name the JSON keys (`rename`, or
`msgspec.field(name=...)`); `decode` converts an already-decoded JSON value into it with
msgspec's lax coercions (`strict=False`: numbers and booleans sent as strings, integral
floats as ints, Unix seconds or ISO 8601 as datetimes). Unknown keys are ignored. After
msgspec, `Wire.__post_init__` applies the rules the providers need everywhere:

* text is stripped, and an empty string is absent (both providers send `""` for it): None,
  the field's default, or for a required field a `WireFormatError`; blank entries of a
  list of text are dropped;
* a datetime without an offset is UTC.

The hand-written readers these models replaced took far more than that: `null` for any
field, a number where text is documented, `"yes"` for a boolean, Unix milliseconds, a
non-list where a list is expected... A provider that sends such a value has answered, and
on a purchase an unreadable answer means "outcome unknown", so none of it is refused.
That reading lives in each provider's `Leniency` (its old readers, value by value), and
`decode` applies it only when the plain conversion fails or `__post_init__` meets a value
msgspec read differently from the old readers (`_Odd`): a second, lenient pass rewrites the
body field by field, as the struct declares them, then converts it again. Well-formed
bodies, nearly all of them, never pay for it.

A value neither pass can read, or a missing required key, is a `WireFormatError` naming
the field (never its value); the clients turn it into `ProviderUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import NoneType, UnionType
from typing import Any, ClassVar, Self, TypeVar, Union, get_args, get_origin

import msgspec
from msgspec.structs import force_setattr

__all__ = ["ABSENT", "Leniency", "Wire", "WireFormatError", "decode", "force_setattr"]

T = TypeVar("T")
Reader = Callable[[Any], Any]

#: what a lenient reader returns for a value the old readers took as not sent
ABSENT: Any = object()


class WireFormatError(ValueError):
    """A 2xx body that lacks what the documented shape promises."""


class _Odd(Exception):
    """Raised by `__post_init__`: msgspec read a value otherwise than the old readers.
    (Not a ValueError, which msgspec would wrap in a ValidationError.)"""


_LENIENT_PASS: ContextVar[bool] = ContextVar("lenient_pass", default=False)


def decode(data: Any, type_: type[T]) -> T:
    try:
        return msgspec.convert(data, type_, strict=False)
    except (msgspec.ValidationError, _Odd):
        pass  # rare: read the body as the old readers did, then convert that
    token = _LENIENT_PASS.set(True)
    try:
        return msgspec.convert(_lenient(data, type_), type_, strict=False)
    except msgspec.ValidationError as exc:
        raise WireFormatError(str(exc)) from exc
    finally:
        _LENIENT_PASS.reset(token)


def _odd() -> None:
    if not _LENIENT_PASS.get():  # the lenient pass hands over final values
        raise _Odd


@dataclass(frozen=True, slots=True)
class Leniency:
    """How one provider's hand-written readers took values of an unexpected JSON type.

    Each reader maps a raw value to what the field should be converted from, or `ABSENT`
    (the field's default, or for a required field a `WireFormatError`).
    """

    text: Reader
    flag: Reader
    integer: Reader
    number: Reader
    time: Reader
    #: for `money_fields`: absent when null, an error when not a number
    money: Reader
    #: Unix times after this were sent in milliseconds
    millis_after: datetime
    money_fields: frozenset[str] = frozenset()
    #: list fields whose non-object entries are skipped (others refuse them); None: all
    skipped_entries: frozenset[str] | None = None
    #: an offset is converted to UTC (else kept as sent)
    to_utc: bool = False
    #: a whole float is a whole `Decimal` (`150000.0` -> `150000`)
    whole_floats: bool = False


# -- the lenient pass ---------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _is_struct(type_: Any) -> bool:
    return isinstance(get_origin(type_) or type_, type) and issubclass(
        get_origin(type_) or type_, msgspec.Struct
    )


def _lenient(data: Any, type_: Any) -> Any:
    if _is_struct(type_):
        return _fields(data, type_) if isinstance(data, dict) else data
    if get_origin(type_) in (list, tuple) and isinstance(data, list):
        item = get_args(type_)[0]
        return _objects(data, item, skip=False) if _is_struct(item) else data
    return data


#: per struct type, per JSON key: its reader, and the JSON type it would return unchanged
_READERS: dict[Any, dict[str, tuple[Reader, type]]] = {}


class _Never:
    """No JSON value has this type: the reader always runs."""


def _fields(data: dict[str, Any], type_: Any) -> dict[str, Any]:
    readers = _READERS.get(type_) or _readers(type_)
    found: dict[str, Any] = {}
    for key, value in data.items():
        spec = readers.get(key)
        if spec is not None and (type(value) is spec[1] or (value := spec[0](value)) is not ABSENT):
            found[key] = value
    return found


def _objects(values: list[Any], type_: Any, *, skip: bool) -> list[Any]:
    # an entry that is not an object is left for the conversion to refuse, unless skipped
    return [
        _fields(v, type_) if isinstance(v, dict) else v
        for v in values
        if not skip or isinstance(v, dict)
    ]


def _readers(type_: Any) -> dict[str, tuple[Reader, type]]:
    leniency: Leniency = (get_origin(type_) or type_).leniency
    readers = _READERS[type_] = {
        info.encode_name: (_reader(info.type, info.name, leniency), _as_is(info.type))
        for info in msgspec.structs.fields(type_)
    }
    return readers


def _as_is(type_: Any) -> type:
    """What JSON type every provider's reader returns unchanged for a field of `type_`
    (an int for a Decimal: its text is the same); `_Never` when there is none."""
    union = isinstance(type_, UnionType) or get_origin(type_) is Union
    kinds = set(get_args(type_) if union else (type_,)) - {NoneType, msgspec.UnsetType}
    if kinds == {Decimal}:
        return int
    if len(kinds) == 1 and (kind := kinds.pop()) in (str, bool, int):
        return kind  # type: ignore[no-any-return]
    return str if str in kinds else _Never  # `Struct | str`: the text as it is


def _reader(type_: Any, name: str, leniency: Leniency) -> Reader:
    union = isinstance(type_, UnionType) or get_origin(type_) is Union
    kinds = [k for k in (get_args(type_) if union else (type_,)) if k not in _NOTHING]
    if len(kinds) == 1:
        return _one(kinds[0], name, leniency)
    struct = next(k for k in kinds if _is_struct(k))  # `Struct | str` (localized text)
    text = leniency.text
    return lambda v: _fields(v, struct) if isinstance(v, dict) else text(v)


_NOTHING = (NoneType, msgspec.UnsetType)


def _one(kind: Any, name: str, leniency: Leniency) -> Reader:
    simple: dict[Any, Reader] = {
        str: leniency.text,
        bool: leniency.flag,
        int: leniency.integer,
        datetime: leniency.time,
        Decimal: leniency.money if name in leniency.money_fields else leniency.number,
    }
    if kind in simple:
        return simple[kind]
    if get_origin(kind) in (list, tuple):
        return _list_reader(get_args(kind)[0], name, leniency)
    if _is_struct(kind):
        return lambda v: _fields(v, kind) if isinstance(v, dict) else ABSENT
    return _same  # `object` / `Any`: read later, from the raw value


def _list_reader(item: Any, name: str, leniency: Leniency) -> Reader:
    if item is str:
        text = leniency.text
        return lambda v: (
            [t for t in map(text, v) if t is not ABSENT] if isinstance(v, list) else ABSENT
        )
    if not _is_struct(item):
        return lambda v: v if isinstance(v, list) else ABSENT
    skip = leniency.skipped_entries is None or name in leniency.skipped_entries
    return lambda v: _objects(v, item, skip=skip) if isinstance(v, list) else ABSENT


# -- the model base -----------------------------------------------------------------------

#: a required text field's fallback: a blank value is an error
_REQUIRED = object()


#: per model class: (text field, what a blank value becomes), the Decimal fields, and the
#: fields `_rest` checks (tuples of text, datetimes), or None when it has none
_Plan = tuple[
    tuple[tuple[str, object], ...],
    tuple[str, ...],
    tuple[tuple[str, ...], tuple[str, ...]] | None,
]
_PLANS: dict[type, _Plan] = {}
_ONE = Decimal(1)


def _plan(cls: type[Wire]) -> _Plan:
    texts: list[tuple[str, object]] = []
    lists: list[str] = []
    times: list[str] = []
    numbers: list[str] = []
    for info in msgspec.structs.fields(cls):
        kinds = set(get_args(info.type)) or {info.type}
        if datetime in kinds:
            times.append(info.name)
        elif Decimal in kinds:
            numbers.append(info.name)
        elif get_origin(info.type) is tuple and get_args(info.type)[0] is str:
            lists.append(info.name)
        elif kinds == {str, NoneType}:
            texts.append((info.name, None))
        elif kinds == {str}:
            texts.append((info.name, _REQUIRED if info.required else info.default))
    rest = (tuple(lists), tuple(times)) if lists or times else None
    plan = _PLANS[cls] = (tuple(texts), tuple(numbers), rest)
    return plan


class Wire(msgspec.Struct, frozen=True, rename="camel"):
    """Base of every wire model (see the module docstring)."""

    #: set by each provider's base model
    leniency: ClassVar[Leniency]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return decode(data, cls)

    def __post_init__(self) -> None:
        texts, numbers, rest = _PLANS.get(type(self)) or _plan(type(self))
        for name, fallback in texts:
            value = getattr(self, name)
            if value is not None and ((text := value.strip()) is not value or not text):
                if not text and fallback is _REQUIRED:
                    raise WireFormatError(f"{type(self).__name__} has no {name}")
                force_setattr(self, name, text or fallback)
        for name in numbers:  # inline: a catalog has thousands of prices
            value = getattr(self, name)
            # a whole number (most are) is neither NaN nor a whole float: one C call
            if value is not None and not value.same_quantum(_ONE):
                self._number(value)
        if rest is not None:
            _rest(self, *rest)

    def _time(self, name: str, value: datetime) -> None:
        if value.tzinfo is None:
            force_setattr(self, name, value := value.replace(tzinfo=UTC))
        elif self.leniency.to_utc and value.tzinfo is not UTC:
            force_setattr(self, name, value := value.astimezone(UTC))
        if value > self.leniency.millis_after:  # as seconds, msgspec put it in 5138 AD or later
            _odd()

    def _number(self, value: Decimal) -> None:  # not a whole number: rare
        if not value.is_finite():
            _odd()  # NaN or Infinity: the old readers took it as not a number
        elif self.leniency.whole_floats and value == value.to_integral_value():
            _odd()  # `150000.0`: maybe a whole float, which the old readers made `150000`


def _rest(model: Wire, lists: tuple[str, ...], times: tuple[str, ...]) -> None:
    for name in lists:
        values = getattr(model, name)
        if not all(v and v.strip() is v for v in values):
            force_setattr(model, name, tuple(t for v in values if (t := v.strip())))
    for name in times:
        if (value := getattr(model, name)) is not None:
            model._time(name, value)
