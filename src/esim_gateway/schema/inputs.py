"""Building flat input objects (every field a scalar or an enum) straight from their names.

Strawberry converts an input value field by field and resolves each field's type and
GraphQL name again on every request: ~150 us for the catalog's eight-field filter, a
sixth of a whole catalog query. For a field that is a scalar or an enum, graphql-core has
already coerced the value and Strawberry's conversion hands it over unchanged, so an input
made only of such fields can be built from a table of names made once. Strawberry's
`from_input` hook (meant for integrations that build their own inputs) is where that goes;
inputs with lists, nested inputs, `Maybe` or global ids keep Strawberry's conversion.
tests/unit/test_inputs.py checks both build the same values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

__all__ = ["build_flat_inputs"]


def build_flat_inputs(schema: strawberry.Schema) -> list[str]:
    """Give every flat input type of `schema` the direct builder; returns their names."""
    converter = schema.schema_converter
    done = []
    for name, concrete in converter.type_map.items():
        definition = concrete.definition
        if (
            isinstance(definition, StrawberryObjectDefinition)
            and definition.is_input
            and definition.from_input is None
            and all(_is_flat(f.type, converter.scalar_registry) for f in definition.fields)
        ):
            names = [
                (converter.config.name_converter.from_field(f), f.python_name)
                for f in definition.fields
            ]
            definition.from_input = _FlatInput(
                names,
                [
                    f.python_name
                    for f in definition.fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ],
            )
            done.append(name)
    return done


def _is_flat(type_: StrawberryType | type | Any, scalars: Mapping[object, Any]) -> bool:
    if isinstance(type_, StrawberryMaybe):
        return False  # Strawberry wraps those values in Some(); keep its conversion
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if type_ is GlobalID or has_object_definition(type_):
        return False
    return (
        isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
        or (_hashable(type_) and type_ in scalars)
    )


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class _FlatInput:
    """`from_input` for a flat input: Strawberry's result, without its per-field work."""

    def __init__(self, names: list[tuple[str, str]], without_default: list[str]) -> None:
        self.names = names
        # As Strawberry does: a nullable field without a default is None when omitted.
        self.omitted = dict.fromkeys(without_default)

    def __call__(self, cls: type, value: Mapping[str, Any], _context: InputContext) -> Any:
        kwargs = dict(self.omitted)
        for graphql_name, python_name in self.names:
            if graphql_name in value:
                kwargs[python_name] = value[graphql_name]
        return cls(**kwargs)
