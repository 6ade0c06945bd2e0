"""Execution with a short path for fields that only read an attribute.

graphql-core executes every field the same way: a resolve info, the resolver, then value
completion through several layers. For a field that reads an attribute and returns a
scalar, an enum or an object (most of a catalog page: a 20-plan page is ~280 fields) that
machinery costs several times what the field itself does. This execution context reads
such fields directly: scalars and enums are serialised with the same `coerce_output_value`
the full path uses; objects have their sub-selection executed by graphql-core's own
`collect_and_execute_subfields`, with its own error handling around it.

A scalar or enum field whose resolver is a plain synchronous method of its type (`def
status(self) -> OrderStatus`: no arguments, no info, no permissions, no field extensions)
is read the same way, calling the method: an `Order` read from the ledger is five such
fields, each ~10 us through Strawberry's resolver wrapper (issue 12, 'execution'). Such a
method only reads its object, so when it raises or returns `None` the full path calls it
again and reports what graphql-core reports.

Whatever is not plainly a value (an absent attribute, `None`, an exception, a value the
scalar refuses or that is not of the object type) takes graphql-core's full path, so its
result and its error are what graphql-core gives. Lists, unions, interfaces, fields with
arguments or other resolvers, and any execution with resolver middleware take the full
path too.
tests/api/test_execution.py checks both paths give the same responses.

graphql-core calls the methods overridden here internal; pyproject pins its minor version.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import operator
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

__all__ = ["AttributeField", "AttributeFieldsExecutionContext"]

_DEFINITION = "strawberry-definition"
_FULL_PATH: Any = object()  # "take graphql-core's full path for this field"


class AttributeField(NamedTuple):
    """A field whose value is `read(source)`: the attribute (`operator.attrgetter`), or
    the type's own method that computes it (scalars and enums only)."""

    read: Callable[[Any], Any]
    field_type: GraphQLOutputType
    leaf_type: GraphQLScalarType | GraphQLEnumType | None
    object_type: GraphQLObjectType | None
    #: the Python type the scalar returns as it is (graphql-core's String, ID, Boolean)
    unchanged: type | None = None


#: graphql-core's serialisers return values of exactly these types untouched
_UNCHANGED: dict[GraphQLScalarType, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
}

FieldsByType = dict[str, dict[str, AttributeField]]
_FIELDS: weakref.WeakKeyDictionary[GraphQLSchema, FieldsByType] = weakref.WeakKeyDictionary()


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    # graphql-core's gather_async_work, which reads nothing of its executor
    return gather_with_cancel(*values)


def _track(executor: weakref.ref[AttributeFieldsExecutionContext], values: Sequence[Any]) -> None:
    live = executor()
    if live is not None:
        live.track_async_work(values)
        return
    # its execution has ended: settle what a late resolver hands over, as the executor
    # would have (a coroutine is never left unawaited)
    awaitables = [value for value in values if inspect.isawaitable(value)]
    if awaitables:
        settling = asyncio.gather(*awaitables, return_exceptions=True)
        _SETTLING.add(settling)  # a task only weakly referenced by the loop could vanish
        settling.add_done_callback(_SETTLING.discard)


_SETTLING: set[asyncio.Future[list[Any]]] = set()


def _schema_fields(schema: GraphQLSchema) -> FieldsByType:
    by_type = _FIELDS.get(schema)
    if by_type is None:
        by_type = _FIELDS[schema] = {}
    return by_type


def _type_fields(
    by_type: FieldsByType, object_type: GraphQLObjectType
) -> dict[str, AttributeField]:
    """The fields of `object_type` the short path can serve, by field name."""
    fields = by_type.get(object_type.name)
    if fields is None:
        fields = by_type[object_type.name] = _find_attribute_fields(object_type)
    return fields


def _find_attribute_fields(object_type: GraphQLObjectType) -> dict[str, AttributeField]:
    found: dict[str, AttributeField] = {}
    for name, field in object_type.fields.items():
        attribute_field = _attribute_field(field)
        if attribute_field is not None:
            found[name] = attribute_field
    return found


def _attribute_field(field: GraphQLField) -> AttributeField | None:
    """How the short path reads `field`, or None: the full path's."""
    definition = (field.extensions or {}).get(_DEFINITION)
    named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    leaf = named if isinstance(named, GraphQLScalarType | GraphQLEnumType) else None
    unchanged = _UNCHANGED.get(leaf) if isinstance(leaf, GraphQLScalarType) else None
    getter = _getter(field, definition)
    if getter is not None:
        return None if leaf is None else AttributeField(getter, field.type, leaf, None, unchanged)
    if not (
        isinstance(definition, StrawberryField)
        # Strawberry marks the resolver it gives a field without a resolver, permission
        # classes or field extensions: it reads the attribute with the configured
        # default resolver, which must be plain getattr.
        and getattr(field.resolve, "_is_default", False)
        and definition.is_basic_field
        and getattr(definition, "default_resolver", None) is getattr
        and not field.args
    ):
        return None
    read = operator.attrgetter(definition.python_name)
    if leaf is not None:
        return AttributeField(read, field.type, leaf, None, unchanged)
    if isinstance(named, GraphQLObjectType) and _generated_type_check(named):
        return AttributeField(read, field.type, None, named)
    return None


def _getter(field: GraphQLField, definition: object) -> Callable[[Any], Any] | None:
    """The resolver of a field that is a plain method of its type, `def name(self)`."""
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    resolver = definition.base_resolver
    if (
        resolver is None
        or resolver.is_async
        or definition.permission_classes
        or definition.extensions
        or resolver.self_parameter is None
        or not callable(resolver.wrapped_func)
        or len(inspect.signature(resolver.wrapped_func).parameters) != 1
    ):
        return None
    getter: Callable[[Any], Any] = resolver.wrapped_func
    return getter


def _generated_type_check(object_type: GraphQLObjectType) -> bool:
    """Whether the type's `is_type_of` (if any) is Strawberry's, which ignores its info
    argument: the short path has no info to give it."""
    definition = (object_type.extensions or {}).get(_DEFINITION)
    return isinstance(definition, StrawberryObjectDefinition) and definition.is_type_of is None


class AttributeFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fields_by_type = _schema_fields(self.schema)
        # Strawberry hands every execution a manager; it only matters with middleware in it
        manager = self.middleware_manager
        self._with_middleware = bool(manager is not None and manager.middlewares)
        # graphql-core's helpers are two bound methods of the executor, kept on the
        # executor: a reference cycle holding the request's whole execution state (its
        # context, loaders, results: ~85 objects) until the cyclic collector runs. Those
        # leftovers were what filled the young generation: a collection every ~8 requests,
        # ~10 % of an `order(id)`'s CPU (issue 12, 'execution'). Without the cycle,
        # reference counting frees each request's state when it ends.
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_gather, track=functools.partial(_track, weakref.ref(self))
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        fields = self._fields_by_type.get(parent_type.name)
        if fields is None:
            fields = _type_fields(self._fields_by_type, parent_type)
        if not fields or self._with_middleware:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        # From here on, graphql-core's execute_fields with a branch for attribute fields.
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for response_name, field_details_list in grouped_field_set.items():
                field = fields.get(field_details_list[0].node.name.value)
                result = _FULL_PATH
                if field is not None:
                    try:
                        value = field.read(source_value)
                    except Exception:  # the full path reads it again and reports it
                        value = None
                    if type(value) is field.unchanged:  # never None: NoneType is not listed
                        results[response_name] = value
                        continue
                    result = self._short_result(
                        field, value, field_details_list, path, response_name,
                        parent_type, position_context,
                    )  # fmt: skip
                if result is _FULL_PATH:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                    if result is Undefined:
                        continue
                results[response_name] = result
                if is_awaitable(result):
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gather_fields(results, awaitable_fields)

    def _short_result(
        self,
        field: AttributeField,
        value: Any,
        field_details_list: FieldDetailsList,
        path: Path | None,
        response_name: str,
        parent_type: GraphQLObjectType,
        position_context: Any,
    ) -> Any:
        """The field's completed value, or `_FULL_PATH` for what is not plainly a value.
        One call per field that needs more than its value (a leaf to serialise, an object
        to descend into): leaves and objects are both completed here."""
        if value is None or isinstance(value, Exception):
            return _FULL_PATH
        leaf_type = field.leaf_type
        if leaf_type is not None:
            try:
                coerced = leaf_type.coerce_output_value(value)
            except Exception:  # the full path reports it
                return _FULL_PATH
            return _FULL_PATH if coerced is None or coerced is Undefined else coerced
        object_type = field.object_type
        assert object_type is not None
        if object_type.is_type_of is not None:
            try:
                # Strawberry's own check (the only kind let in here) ignores its info
                if object_type.is_type_of(value, None) is not True:  # type: ignore[arg-type]
                    return _FULL_PATH
            except Exception:  # the full path reports it
                return _FULL_PATH
        field_path = Path(path, response_name, parent_type.name)
        try:
            completed = self.collect_and_execute_subfields(
                object_type, field_details_list, field_path, value, position_context
            )
        except Exception as error:
            self.handle_field_error(error, field.field_type, field_details_list, field_path)
            return None
        if self.is_awaitable(completed):
            return self._await_object(completed, field, field_details_list, field_path)
        return completed

    async def _await_object(
        self,
        completed: Awaitable[Any],
        field: AttributeField,
        field_details_list: FieldDetailsList,
        field_path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as error:
            self.handle_field_error(error, field.field_type, field_details_list, field_path)
            return None


async def _gather_fields(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        name = awaitable_fields[0]
        results[name] = await results[name]
    else:
        awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
