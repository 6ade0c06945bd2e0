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


#: a required text field's fallback: a blank value is an error
_REQUIRED = object()
#: per model class: (text field, what a blank value becomes) and datetime fields
_Plan = tuple[tuple[tuple[str, object], ...], tuple[str, ...]]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Wire]) -> _Plan:
    texts: list[tuple[str, object]] = []
    times: list[str] = []
    for info in msgspec.structs.fields(cls):
        kinds = set(get_args(info.type)) or {info.type}
        if datetime in kinds:
            times.append(info.name)
        elif kinds == {str, type(None)}:
            texts.append((info.name, None))
        elif kinds == {str}:
            texts.append((info.name, _REQUIRED if info.required else info.default))
    plan = _PLANS[cls] = (tuple(texts), tuple(times))
    return plan


class Wire(msgspec.Struct, frozen=True, rename="camel"):
    """Base of every wire model (see the module docstring)."""

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return decode(data, cls)

    def __post_init__(self) -> None:
        texts, times = _PLANS.get(type(self)) or _plan(type(self))
        for name, fallback in texts:
            value = getattr(self, name)
            if value is not None and ((text := value.strip()) is not value or not text):
                if not text and fallback is _REQUIRED:
                    raise WireFormatError(f"{type(self).__name__} has no {name}")
                force_setattr(self, name, text or fallback)
        for name in times:
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                force_setattr(self, name, value.replace(tzinfo=UTC))
