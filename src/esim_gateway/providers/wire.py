"""What the providers' wire models share: a msgspec `Wire` base and `decode`.

A model is a frozen `msgspec.Struct` whose fields name the JSON keys (`rename`, or
`msgspec.field(name=...)`); `decode` converts an already-decoded JSON value into it with
msgspec's lax coercions (`strict=False`: numbers and booleans sent as strings, integral
floats as ints, Unix seconds or ISO 8601 as datetimes). Unknown keys are ignored. After
msgspec, `Wire.__post_init__` applies the rules the providers need everywhere:

* text is stripped, and an empty string is absent (both providers send `""` for it): None,
  the field's default, or for a required field a `WireFormatError`;
* a datetime without an offset is UTC.

A value msgspec cannot coerce, or a missing required key, is a `WireFormatError` naming
the field (never its value); the clients turn it into `ProviderUnavailable`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self, TypeVar, get_args

import msgspec
from msgspec.structs import force_setattr

__all__ = ["Wire", "WireFormatError", "decode", "force_setattr"]

T = TypeVar("T")


class WireFormatError(ValueError):
    """A 2xx body that lacks what the documented shape promises."""


def decode(data: Any, type_: type[T]) -> T:
    try:
        return msgspec.convert(data, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise WireFormatError(str(exc)) from exc


#: per model class: (optional text, required text, (text, its default), datetimes)
_Plan = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Wire]) -> _Plan:
    optional: list[str] = []
    required: list[str] = []
    defaulted: list[tuple[str, str]] = []
    times: list[str] = []
    for info in msgspec.structs.fields(cls):
        kinds = set(get_args(info.type)) or {info.type}
        if datetime in kinds:
            times.append(info.name)
        elif kinds == {str, type(None)}:
            optional.append(info.name)
        elif kinds == {str} and info.required:
            required.append(info.name)
        elif kinds == {str}:
            defaulted.append((info.name, info.default))
    plan = _PLANS[cls] = (tuple(optional), tuple(required), tuple(defaulted), tuple(times))
    return plan


class Wire(msgspec.Struct, frozen=True, rename="camel"):
    """Base of every wire model (see the module docstring)."""

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return decode(data, cls)

    def __post_init__(self) -> None:
        optional, required, defaulted, times = _PLANS.get(type(self)) or _plan(type(self))
        for name in optional:
            value = getattr(self, name)
            if value is not None and ((text := value.strip()) is not value or not text):
                force_setattr(self, name, text or None)
        for name in required:
            value = getattr(self, name)
            if (text := value.strip()) is not value or not text:
                if not text:
                    raise WireFormatError(f"{type(self).__name__} has no {name}")
                force_setattr(self, name, text)
        for name, default in defaulted:
            value = getattr(self, name)
            if (text := value.strip()) is not value or not text:
                force_setattr(self, name, text or default)
        for name in times:
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                force_setattr(self, name, value.replace(tzinfo=UTC))
