"""Validation rules that bound the work one document can ask for.

* `cost_limit_rule(max_cost)`: every field costs 1; a field returning a list multiplies
  the cost of what is selected under it by its `first` argument (connections) or by
  `DEFAULT_LIST_SIZE`. So `orders(first: 100) { edges { node { esims { ... } } } }` is
  priced as the 100 x 10 objects it may produce, not as 5 fields.
* `DirectiveLimiter(max_per_field)`: at most that many directives on one field, and
  one error per document (a flood of directives must not produce a flood of errors).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from graphql import (
    BREAK,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLOutputType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    Visitor,
    get_named_type,
    validate,
    visit,
)
from strawberry.extensions import AddValidationRules, SchemaExtension

__all__ = [
    "DEFAULT_LIST_SIZE",
    "AliasLimiter",
    "CostLimiter",
    "DepthLimiter",
    "DirectiveLimiter",
    "cost_limit_rule",
]

DEFAULT_LIST_SIZE = 10
CONNECTION_DEFAULT = 20
MAX_FIRST = 100


def _is_list(type_: GraphQLOutputType) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def cost_limit_rule(max_cost: int, variables: dict[str, Any] | None = None) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            schema = context.schema
            root = {
                "query": schema.query_type,
                "mutation": schema.mutation_type,
                "subscription": schema.subscription_type,
            }[node.operation.value]
            fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            cost = self._cost(node.selection_set, root, fragments, set(), {})
            if cost > max_cost:
                context.report_error(
                    GraphQLError(
                        f"The query is too expensive: cost {cost} exceeds the limit of"
                        f" {max_cost}. Ask for fewer objects (lower `first`) or fewer"
                        " nested lists.",
                        node,
                    )
                )

        def _first(self, field: FieldNode) -> int | None:
            for argument in field.arguments or ():
                if argument.name.value != "first":
                    continue
                if isinstance(argument.value, IntValueNode):
                    # past the cap the resolver refuses it with a precise error
                    return min(max(0, int(argument.value.value)), MAX_FIRST)
                if isinstance(argument.value, VariableNode):
                    name = argument.value.name.value
                    if variables is None or name not in variables:
                        return None  # not given: the argument's default applies
                    value = variables[name]
                    if isinstance(value, int) and not isinstance(value, bool):
                        return min(max(0, value), MAX_FIRST)
                    return MAX_FIRST  # not a number: validation will refuse it anyway
            return None

        def _cost(
            self,
            selection_set: SelectionSetNode | None,
            parent: GraphQLNamedType | None,
            fragments: dict[str, FragmentDefinitionNode],
            seen: set[str],
            memo: dict[tuple[int, str], int],
        ) -> int:
            if selection_set is None or parent is None:
                return 0
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    total += self._field_cost(selection, parent, fragments, seen, memo)
                elif isinstance(selection, InlineFragmentNode):
                    target: GraphQLNamedType | None = parent
                    if selection.type_condition is not None:
                        target = self.context.schema.get_type(selection.type_condition.name.value)
                    total += self._cost(selection.selection_set, target, fragments, seen, memo)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = fragments.get(name)
                    if fragment is None or name in seen:
                        continue
                    spread = self.context.schema.get_type(fragment.type_condition.name.value)
                    total += self._cost(
                        fragment.selection_set, spread, fragments, seen | {name}, memo
                    )
            return total

        def _field_cost(
            self,
            field: FieldNode,
            parent: GraphQLNamedType,
            fragments: dict[str, FragmentDefinitionNode],
            seen: set[str],
            memo: dict[tuple[int, str], int],
        ) -> int:
            fields = getattr(parent, "fields", None) or {}
            definition = fields.get(field.name.value)
            if definition is None:
                return 1  # __typename, or a field validation will reject anyway
            child = get_named_type(definition.type)
            inner = self._cost(field.selection_set, child, fragments, seen, memo)
            first = self._first(field)
            if parent.name.endswith("Connection") and field.name.value in ("edges", "nodes"):
                multiplier = 1  # already sized by the connection's `first`
            elif first is not None:
                multiplier = first
            elif child.name.endswith("Connection"):
                multiplier = CONNECTION_DEFAULT
            elif _is_list(definition.type):
                multiplier = DEFAULT_LIST_SIZE
            else:
                multiplier = 1
            return 1 + multiplier * inner if inner else 1

    return CostLimit


CACHE_SIZE = 1024
#: (schema, document text, integer variables, limit) -> errors: pricing walks the document
_COST_CACHE: dict[tuple[int, str, tuple[tuple[str, int], ...], int], tuple[GraphQLError, ...]] = {}
#: (document text, limit) -> the error, or None
_DIRECTIVE_CACHE: dict[tuple[str, int], GraphQLError | None] = {}


@functools.cache
def _depth_rule(max_depth: int) -> type[ValidationRule]:
    from strawberry.extensions.query_depth_limiter import create_validator

    return create_validator(max_depth, None)


@functools.cache
def _alias_rule(max_aliases: int) -> type[ValidationRule]:
    from strawberry.extensions.max_aliases import create_validator

    return create_validator(max_aliases)


class DepthLimiter(AddValidationRules):
    """strawberry's QueryDepthLimiter, with one rule class per limit for the process.

    QueryDepthLimiter builds a new rule class per instance, and extensions are built per
    request, so ValidationCache (keyed on the rule classes) would never hit.
    """

    def __init__(self, max_depth: int) -> None:
        super().__init__([_depth_rule(max_depth)])


class AliasLimiter(AddValidationRules):
    """strawberry's MaxAliasesLimiter, cache-friendly in the same way as DepthLimiter."""

    def __init__(self, max_aliases: int) -> None:
        super().__init__([_alias_rule(max_aliases)])


class CostLimiter(SchemaExtension):
    """Runs the cost rule with the request's variables (`first: $n` priced at its value).

    Registered after ValidationCache; only documents that passed validation are priced.
    """

    def __init__(self, max_cost: int = 10_000) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            variables = tuple(
                sorted(
                    (k, v)
                    for k, v in (context.variables or {}).items()
                    if isinstance(v, int) and not isinstance(v, bool)
                )
            )
            key = (id(context.schema), context.query or "", variables, self.max_cost)
            errors = _COST_CACHE.get(key)
            if errors is None:
                errors = tuple(
                    validate(
                        context.schema._schema,
                        document,
                        [cost_limit_rule(self.max_cost, dict(variables))],
                    )
                )
                if len(_COST_CACHE) >= CACHE_SIZE:
                    _COST_CACHE.pop(next(iter(_COST_CACHE)))
                _COST_CACHE[key] = errors
            if errors:
                context.pre_execution_errors = list(errors)
        yield


class DirectiveLimiter(SchemaExtension):
    """At most `max_per_field` directives on one field, answered with ONE error.

    A validation rule cannot do this: the standard rules would still add an error per
    unknown directive, so a flood of directives would produce a flood of errors.
    """

    def __init__(self, max_per_field: int = 5) -> None:
        self.max_per_field = max_per_field

    def _violation(self) -> GraphQLError | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        limit = self.max_per_field

        class Finder(Visitor):
            found: FieldNode | None = None

            def enter_field(self, node: FieldNode, *_: Any) -> Any:
                if len(node.directives or ()) > limit:
                    self.found = node
                    return BREAK
                return None

        finder = Finder()
        visit(document, finder)
        if finder.found is None:
            return None
        return GraphQLError(f"At most {limit} directives may be used on one field.", finder.found)

    def on_validate(self) -> Iterator[None]:
        # Registered after ValidationCache, so this replaces whatever it reported.
        key = (self.execution_context.query or "", self.max_per_field)
        if key in _DIRECTIVE_CACHE:
            error = _DIRECTIVE_CACHE[key]
        else:
            error = self._violation()
            if len(_DIRECTIVE_CACHE) >= CACHE_SIZE:
                _DIRECTIVE_CACHE.pop(next(iter(_DIRECTIVE_CACHE)))
            _DIRECTIVE_CACHE[key] = error
        if error is not None:
            self.execution_context.pre_execution_errors = [error]
        yield
