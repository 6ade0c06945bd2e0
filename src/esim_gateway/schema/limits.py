"""Validation rules that bound the work one document can ask for.

* `cost_limit_rule(max_cost)`: every field costs 1; a field returning a list multiplies
  the cost of what is selected under it by its `first` argument (connections) or by
  `DEFAULT_LIST_SIZE`. So `orders(first: 100) { edges { node { esims { ... } } } }` is
  priced as the 100 x 10 objects it may produce, not as 5 fields.
* `DocumentGate`: parsing with the token limit, validation with depth and alias limits
  (and no introspection in live mode), at most so many directives on one field, then
  the cost limit with the request's variables; each result cached by the document's text.
* `DocumentChecks`: the schema extension that runs a gate for each operation.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    Visitor,
    get_named_type,
    parse,
    validate,
    visit,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from esim_gateway.schema.errors import ErrorCode

__all__ = [
    "DEFAULT_LIST_SIZE",
    "DocumentChecks",
    "DocumentGate",
    "cost_limit_rule",
    "document_cost",
]

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_LIST_SIZE = 10
CONNECTION_DEFAULT = 20
MAX_FIRST = 100


def _is_list(type_: GraphQLOutputType) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class CostLimit(ValidationRule):
    """Refuses an operation whose estimated cost (objects it may return: each list field
    multiplied by its `first`, or a default size) exceeds `max_cost`. Configured per
    document by `cost_limit_rule`, which fills the class attributes."""

    max_cost: int = 0
    #: the request's variables: a `first` given as a variable is sized by its value
    variables: dict[str, Any] | None = None
    #: when a list, receives the cost of every operation of the document
    observed: list[int] | None = None

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
        if self.observed is not None:
            self.observed.append(cost)
        if cost > self.max_cost:
            context.report_error(
                GraphQLError(
                    f"The query is too expensive: cost {cost} exceeds the limit of"
                    f" {self.max_cost}. Ask for fewer objects (lower `first`) or fewer"
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
                if self.variables is None or name not in self.variables:
                    return None  # not given: the argument's default applies
                value = self.variables[name]
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
                total += self._cost(fragment.selection_set, spread, fragments, seen | {name}, memo)
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


def cost_limit_rule(
    max_cost: int, variables: dict[str, Any] | None = None, observed: list[int] | None = None
) -> type[ValidationRule]:
    """`observed`, when given, receives the cost of every operation of the document."""
    attributes = {"max_cost": max_cost, "variables": variables, "observed": observed}
    return type("CostLimit", (CostLimit,), attributes)


def document_cost(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None
) -> int:
    """What the costliest operation of `document` is priced at (the cost limit's pricing);
    a batch adds these up against the same limit."""
    costs: list[int] = []
    validate(schema, document, [cost_limit_rule(sys.maxsize, variables, costs)])
    return max(costs, default=0)


@functools.cache
def _depth_rule(max_depth: int) -> type[ValidationRule]:
    from strawberry.extensions.query_depth_limiter import create_validator

    return create_validator(max_depth, None)


@functools.cache
def _alias_rule(max_aliases: int) -> type[ValidationRule]:
    from strawberry.extensions.max_aliases import create_validator

    return create_validator(max_aliases)


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


def _fragments_defined(document: DocumentNode) -> bool:
    """True when every fragment spread names a fragment the document defines."""
    defined = {d.name.value for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    class Spreads(Visitor):
        unknown = False

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> Any:
            if node.name.value not in defined:
                self.unknown = True
                return BREAK
            return None

    spreads = Spreads()
    visit(document, spreads)
    return not spreads.unknown


def _refusals(errors: list[GraphQLError]) -> tuple[GraphQLError, ...]:
    """Validation errors, so coded: whatever rule found them (a graphql-core rule, a
    limit, no introspection), a client that sent this document sees the same code."""
    for error in errors:
        error.extensions = {**(error.extensions or {}), "code": ErrorCode.GRAPHQL_VALIDATION_FAILED}
    return tuple(errors)


def _remember(cache: dict[K, V], key: K, value: V, size: int) -> V:
    if size <= 0:
        return value
    if len(cache) >= size:
        cache.pop(next(iter(cache)))  # the oldest entry: dicts keep insertion order
    cache[key] = value
    return value


class DocumentGate:
    """Everything decided about a document before it runs, decided once per text.

    * parsing, with the token limit;
    * validation: graphql-core's and Strawberry's rules, depth and alias limits, and no
      introspection in live mode;
    * at most `max_directives_per_field` directives on one field, with ONE error, which
      a validation rule cannot do: the standard rules would still add an error per
      unknown directive, so a flood of directives would produce a flood of errors;
    * the cost limit, with the request's integer variables (`first: $n` is priced at
      its value), for documents that passed the rest.

    Each depends only on the text (and those variables), so each is cached by it. One
    gate per schema: the caches assume one schema and these rules.
    """

    def __init__(
        self,
        *,
        max_depth: int,
        max_aliases: int,
        max_tokens: int,
        max_cost: int,
        max_directives_per_field: int,
        introspection: bool = True,
        cache_size: int = 512,
    ) -> None:
        rules: list[type[ASTValidationRule]] = [_depth_rule(max_depth), _alias_rule(max_aliases)]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules = tuple(rules)
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.max_directives_per_field = max_directives_per_field
        self.cache_size = cache_size
        self.parse: Callable[[str], DocumentNode] = functools.lru_cache(maxsize=cache_size)(
            functools.partial(parse, max_tokens=max_tokens)
        )
        self._checked: dict[str, tuple[GraphQLError, ...]] = {}
        self._priced: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[GraphQLError, ...]] = {}

    def errors(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        base_rules: tuple[type[ASTValidationRule], ...],
        variables: dict[str, Any] | None,
    ) -> list[GraphQLError]:
        """What stops this document from running: [] when nothing does."""
        errors = self._checked.get(query)
        if errors is None:
            errors = _remember(
                self._checked, query, self._check(schema, document, base_rules), self.cache_size
            )
        if errors:
            return list(errors)
        numbers = tuple(
            sorted(
                (name, value)
                for name, value in (variables or {}).items()
                if isinstance(value, int) and not isinstance(value, bool)
            )
        )
        costs = self._priced.get((query, numbers))
        if costs is None:
            rule = cost_limit_rule(self.max_cost, dict(numbers))
            costs = _remember(
                self._priced,
                (query, numbers),
                _refusals(validate(schema, document, [rule])),
                self.cache_size,
            )
        return list(costs)

    def _check(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        base_rules: tuple[type[ASTValidationRule], ...],
    ) -> tuple[GraphQLError, ...]:
        directives = _directive_violation(document, self.max_directives_per_field)
        if directives is not None:
            return _refusals([directives])
        # Strawberry's depth rule raises KeyError on a spread of an unknown fragment:
        # such a document is refused by graphql-core's own rule, so ours can wait
        rules = self.rules if _fragments_defined(document) else ()
        return _refusals(validate_document(schema, document, (*base_rules, *rules)))


class DocumentChecks(SchemaExtension):
    """Runs a `DocumentGate` for the operation: its parse, then its checks.

    One extension for all the document's limits, on purpose: Strawberry builds every
    extension per request and wraps each of its hooks, so each extension costs every
    operation, even a cached `{ __typename }`.
    """

    def __init__(self, gate: DocumentGate) -> None:
        self.gate = gate

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = self.gate.parse(context.query)
            except GraphQLError:
                # Strawberry runs this hook outside its own error handling: raised here, a
                # syntax error ended a WebSocket subscription with no answer (and a stack
                # quoting the document in the log). Left to Strawberry's parse, with the
                # same token limit, it is the operation's error.
                context.parse_options = {
                    **context.parse_options,
                    "max_tokens": self.gate.max_tokens,
                }
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.query:
            context.pre_execution_errors = self.gate.errors(
                context.schema._schema,
                context.query,
                document,
                context.validation_rules,
                context.variables,
            )
        yield
