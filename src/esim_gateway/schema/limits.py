"""Validation rules that bound the work one document can ask for.

* `cost_limit_rule(max_cost)`: every field costs 1; a field returning a list multiplies
  the cost of what is selected under it by its `first` argument (connections) or by
  `DEFAULT_LIST_SIZE`. So `orders(first: 100) { edges { node { esims { ... } } } }` is
  priced as the 100 x 10 objects it may produce, not as 5 fields.
* `DocumentLimits(max_per_field, max_cost)`: at most that many directives on one field,
  one error per document (a flood of directives must not produce a flood of errors),
  then the cost limit with the request's variables.
* `LimitRules`: depth and alias limits (and no introspection in live mode).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from graphql import (
    BREAK,
    DocumentNode,
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
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension

__all__ = [
    "DEFAULT_LIST_SIZE",
    "DocumentLimits",
    "LimitRules",
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


class LimitRules(AddValidationRules):
    """Depth and alias limits (and, in live mode, no introspection) as validation rules.

    One extension for all three: Strawberry builds every extension per request and
    wraps each of its hooks, so fewer extensions is measurably less work per request.
    The rule classes are built once per limit for the process (strawberry's own
    limiters build a new class per instance), so ValidationCache, keyed on the rule
    classes, hits.
    """

    def __init__(self, max_depth: int, max_aliases: int, *, introspection: bool = True) -> None:
        rules: list[type[ASTValidationRule]] = [_depth_rule(max_depth), _alias_rule(max_aliases)]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        super().__init__(rules)


def _directive_violation(document: DocumentNode, limit: int) -> GraphQLError | None:
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


class DocumentLimits(SchemaExtension):
    """At most `max_per_field` directives on one field, then the cost limit.

    The directive limit answers with ONE error, which a validation rule cannot do: the
    standard rules would still add an error per unknown directive, so a flood of
    directives would produce a flood of errors. The cost rule runs with the request's
    variables (`first: $n` priced at its value). Registered after ValidationCache, so
    what it finds replaces whatever that reported; both results are cached per document.
    """

    def __init__(self, max_per_field: int = 5, max_cost: int = 10_000) -> None:
        self.max_per_field = max_per_field
        self.max_cost = max_cost

    def _directive_error(self) -> GraphQLError | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        key = (self.execution_context.query or "", self.max_per_field)
        if key in _DIRECTIVE_CACHE:
            return _DIRECTIVE_CACHE[key]
        error = _directive_violation(document, self.max_per_field)
        if len(_DIRECTIVE_CACHE) >= CACHE_SIZE:
            _DIRECTIVE_CACHE.pop(next(iter(_DIRECTIVE_CACHE)))
        _DIRECTIVE_CACHE[key] = error
        return error

    def _cost_errors(self) -> tuple[GraphQLError, ...]:
        context = self.execution_context
        document = context.graphql_document
        if document is None or context.pre_execution_errors:
            return ()  # only documents that passed validation are priced
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
        return errors

    def on_validate(self) -> Iterator[None]:
        error = self._directive_error()
        if error is not None:
            self.execution_context.pre_execution_errors = [error]
        else:
            errors = self._cost_errors()
            if errors:
                self.execution_context.pre_execution_errors = list(errors)
        yield
