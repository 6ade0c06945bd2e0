"""Flat inputs built from their names equal what Strawberry's own conversion builds."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition, StrawberryOptional

from esim_gateway.schema import build_schema
from esim_gateway.schema.inputs import build_flat_inputs

SCHEMA = build_schema()
FLAT = {
    name: concrete.definition
    for name, concrete in SCHEMA.schema_converter.type_map.items()
    if isinstance(concrete.definition, StrawberryObjectDefinition)
    and concrete.definition.from_input is not None
}


def test_the_flat_inputs_are_the_ones_without_lists_or_nested_inputs() -> None:
    assert set(FLAT) == {
        "OrderFilter",
        "PackageFilter",
        "TopupInput",
        "CancelRefundInput",
        "CancelOrderInput",
        "OrderLineInput",
    }
    assert build_flat_inputs(SCHEMA) == []  # once only


def sample(type_: Any) -> Any:
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    definition = getattr(type_, "__strawberry_definition__", type_)
    wrapped = getattr(definition, "wrapped_cls", None)
    if isinstance(wrapped, type) and issubclass(wrapped, enum.Enum):
        return next(iter(wrapped))
    return {str: "JP", int: 7, bool: True, date: date(2026, 12, 1)}.get(type_, "an-id")


def values(definition: StrawberryObjectDefinition) -> Iterator[dict[str, Any]]:
    names = [SCHEMA.config.name_converter.from_field(f) for f in definition.fields]
    yield {}
    yield dict.fromkeys(names)
    yield {n: sample(f.type) for n, f in zip(names, definition.fields, strict=True)}
    for n, f in zip(names, definition.fields, strict=True):
        yield {n: sample(f.type)}


@contextlib.contextmanager
def strawberry_conversion(definition: StrawberryObjectDefinition) -> Iterator[None]:
    hook = definition.from_input
    definition.from_input = None
    try:
        yield
    finally:
        definition.from_input = hook


@pytest.mark.parametrize("name", sorted(FLAT))
def test_a_flat_input_is_built_as_strawberry_builds_it(name: str) -> None:
    definition = FLAT[name]
    registry = SCHEMA.schema_converter.scalar_registry
    for value in values(definition):
        try:
            ours: Any = convert_argument(value, definition.origin, registry, SCHEMA.config)
        except TypeError as error:  # a required field left out: both must refuse it
            ours = repr(error)
        with strawberry_conversion(definition):
            try:
                theirs: Any = convert_argument(value, definition.origin, registry, SCHEMA.config)
            except TypeError as error:
                theirs = repr(error)
        assert ours == theirs, value


@strawberry.input
class Line:
    sku: str


@strawberry.input
class Basket:
    lines: list[Line]
    note: str | None = None


@strawberry.type
class BasketQuery:
    @strawberry.field
    def total(self, basket: Basket) -> int:
        return len(basket.lines)


def test_inputs_with_lists_or_nested_inputs_keep_strawberrys_conversion() -> None:
    schema = strawberry.Schema(query=BasketQuery)
    assert build_flat_inputs(schema) == ["Line"]
    result = schema.execute_sync('{ total(basket: {lines: [{sku: "a"}, {sku: "b"}]}) }')
    assert result.data == {"total": 2}
