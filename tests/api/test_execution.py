"""The short execution path for attribute fields answers exactly as graphql-core does.

Each query runs twice, through Strawberry's own execution context and through ours, and
the responses (data, errors, their paths and order) must be equal: on a small schema built
to hit every fallback, and on the gateway's schema with generated catalog queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NewType

import pytest
import strawberry
from graphql import parse, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries
from strawberry import relay
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.schema import build_schema
from esim_gateway.schema.execution import AttributeFieldsExecutionContext
from tests.conftest import Gateway


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


Grade = NewType("Grade", str)
GRADE = strawberry.scalar(
    name="Grade",
    # a scalar that can serialise to null: the full path turns that into an error
    serialize=lambda value: None if value == "none" else value.upper(),
    parse_value=str,
)


@strawberry.type
class Leaf:
    number: int
    label: str | None

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return self.number + 1

    @strawberry.field
    def broken(self) -> int:
        raise ValueError("broken resolver")

    @strawberry.field
    async def broken_later(self) -> int:
        await asyncio.sleep(0)
        raise ValueError("broken async resolver")


@strawberry.type
class Thing(relay.Node):
    code: relay.NodeID[str]
    name: str


@strawberry.type
class Holder:
    number: int
    maybe_number: int | None
    colour: Colour
    amount: Decimal
    at: datetime
    leaf: Leaf
    maybe_leaf: Leaf | None
    thing: Thing
    maybe_thing: Thing | None
    tags: list[str]
    grade: Grade

    # plain methods of the type: served by the short path, judged by the full path when
    # they raise (number=None, an exception) or return what the scalar refuses
    @strawberry.field
    def doubled(self) -> int:
        return self.number * 2

    @strawberry.field
    def maybe_doubled(self) -> int | None:
        return None if self.maybe_number is None else self.maybe_number * 2

    @strawberry.field
    def shade(self) -> Colour:
        return self.colour

    @strawberry.field
    def caption(self) -> str:
        return f"{self.number} {self.colour}"


def holder(**changes: Any) -> Holder:
    values: dict[str, Any] = {
        "number": 7,
        "maybe_number": None,
        "colour": Colour.BLUE,
        "amount": Decimal("12.50"),
        "at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        "leaf": Leaf(number=1, label="one"),
        "maybe_leaf": Leaf(number=2, label=None),
        "thing": Thing(code="T1", name="first"),
        "maybe_thing": None,
        "tags": ["a", "b"],
        "grade": "a",
    }
    values.update(changes)
    return Holder(**values)


# Attribute values the full path must judge: each replaces one attribute of the holder.
BAD_VALUES: dict[str, dict[str, Any]] = {
    "valid": {},
    "null in a non-null scalar": {"number": None},
    "a string in an Int": {"number": "seven"},
    "a float in an Int": {"maybe_number": 7.5},
    "a bool in an Int": {"number": True},
    "an int in a String": {"leaf": Leaf(number=1, label=5)},  # type: ignore[arg-type]
    "an exception as a value": {"number": ValueError("an exception value")},
    "an unknown enum value": {"colour": "GREEN"},
    "null in a non-null object": {"leaf": None},
    "a wrong object for a Node": {"thing": Leaf(number=3, label=None)},
    "a wrong nullable object for a Node": {"maybe_thing": Leaf(number=3, label=None)},
    "an exception as an object": {"maybe_leaf": ValueError("an exception object")},
    "a scalar serialised to null": {"grade": "none"},
    "a scalar that cannot serialise": {"grade": 3},
}

STORE: dict[str, Holder] = {}


@strawberry.type
class Query:
    @strawberry.field
    def holder(self, case: str) -> Holder:
        return STORE[case]

    @strawberry.field
    def maybe_holder(self, case: str) -> Holder | None:
        return STORE[case]

    @strawberry.field
    async def holders(self) -> list[Holder]:
        return list(STORE.values())


QUERIES = [
    "{ holder(case: $case) { number maybeNumber colour amount at tags } }",
    "{ maybeHolder(case: $case) { number colour } }",
    "{ maybeHolder(case: $case) { leaf { number label later } maybeLeaf { label } } }",
    "{ maybeHolder(case: $case) { maybeLeaf { number broken } number } }",
    "{ maybeHolder(case: $case) { maybeLeaf { brokenLater number } leaf { later } } }",
    "{ maybeHolder(case: $case) { leaf { brokenLater } } }",
    "{ maybeHolder(case: $case) { thing { id name } maybeThing { name } } }",
    "{ maybeHolder(case: $case) { grade leaf { number } } }",
    "{ maybeHolder(case: $case) { a: number b: number number n2: maybeNumber __typename } }",
    "{ maybeHolder(case: $case) { ...F leaf { ... on Leaf { number } } } }"
    " fragment F on Holder { colour leaf { label } }",
    "{ maybeHolder(case: $case) { number @skip(if: true) colour @include(if: false) at } }",
    "{ maybeHolder(case: $case) { unknown: number leaf { number } } }",
    "{ maybeHolder(case: $case) { doubled maybeDoubled shade caption number } }",
    "{ holder(case: $case) { d: doubled shade leaf { broken } } }",
]


def schemas(**options: Any) -> tuple[strawberry.Schema, strawberry.Schema]:
    options["config"] = StrawberryConfig(scalar_map={Grade: GRADE})
    full = strawberry.Schema(
        query=Query, types=[Thing], execution_context_class=StrawberryGraphQLCoreExecutionContext,
        **options,
    )  # fmt: skip
    short = strawberry.Schema(
        query=Query, types=[Thing], execution_context_class=AttributeFieldsExecutionContext,
        **options,
    )  # fmt: skip
    return full, short


def response(result: Any) -> dict[str, Any]:
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


@pytest.fixture(autouse=True)
def _store() -> Iterator[None]:
    STORE.clear()
    STORE.update({case: holder(**changes) for case, changes in BAD_VALUES.items()})
    yield
    STORE.clear()


@pytest.mark.parametrize("case", list(BAD_VALUES))
@pytest.mark.parametrize("query", QUERIES)
async def test_every_fallback_answers_as_graphql_core(case: str, query: str) -> None:
    full, short = schemas()
    document = f"query($case: String!) {query}"
    assert not validate(full._schema, parse(document)), "the test query itself must be valid"
    expected = response(await full.execute(document, variable_values={"case": case}))
    assert response(await short.execute(document, variable_values={"case": case})) == expected


async def test_lists_of_holders_answer_as_graphql_core() -> None:
    full, short = schemas()
    document = "{ holders { number colour leaf { number later } maybeLeaf { broken } } }"
    expected = response(await full.execute(document))
    assert expected["errors"], "the fixture should make some fields fail"
    assert response(await short.execute(document)) == expected


def test_synchronous_execution_answers_as_graphql_core() -> None:
    full, short = schemas()
    document = '{ maybeHolder(case: "valid") { number maybeLeaf { label number } } }'
    expected = response(full.execute_sync(document))
    assert response(short.execute_sync(document)) == expected


@contextlib.contextmanager
def counted_resolve_infos() -> Iterator[list[str]]:
    """Names of the fields graphql-core builds a resolve info for (the full path)."""
    built: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.build_resolve_info

    def build(self: Any, field_def: Any, field_nodes: Any, parent_type: Any, path: Any) -> Any:
        built.append(f"{parent_type.name}.{field_nodes[0].name.value}")
        return original(self, field_def, field_nodes, parent_type, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StrawberryGraphQLCoreExecutionContext, "build_resolve_info", build)
        yield built


async def test_attribute_fields_skip_the_resolve_info() -> None:
    """Without this the equality tests above would pass with no short path at all."""
    _, short = schemas()
    document = (
        '{ holder(case: "valid") { number colour doubled shade caption leaf { number later }'
        " thing { name } } }"
    )
    with counted_resolve_infos() as built:
        result = await short.execute(document)
    assert not result.errors
    assert result.data is not None and result.data["holder"]["doubled"] == 14
    assert built == ["Query.holder", "Leaf.later"]


async def test_resolver_middleware_turns_the_short_path_off() -> None:
    seen: list[str] = []

    class Spy(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    _, short = schemas(extensions=[Spy])
    result = await short.execute('{ holder(case: "valid") { number leaf { label } } }')
    assert not result.errors
    assert seen == ["holder", "number", "leaf", "label"]


CATALOG_FIELDS = ["packages", "bestOffers", "countries", "regions", "catalogStatus"]


@contextlib.contextmanager
def execution_context(schema: strawberry.Schema, cls: type[Any]) -> Iterator[None]:
    previous = schema.execution_context_class
    schema.execution_context_class = cls
    try:
        yield
    finally:
        schema.execution_context_class = previous


def without_clock(value: Any) -> Any:
    """`CatalogStatus.ageSeconds` is read off the clock: it differs between two runs."""
    if isinstance(value, dict):
        return {k: "<clock>" if k == "ageSeconds" else without_clock(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


async def test_the_gateway_schema_uses_the_short_path(gateway: Gateway) -> None:
    assert gateway.app.state.schema.execution_context_class is AttributeFieldsExecutionContext


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=st.deferred(lambda: queries(build_schema().as_str(), fields=CATALOG_FIELDS)))
async def test_catalog_queries_answer_as_graphql_core(gateway: Gateway, document: str) -> None:
    schema: strawberry.Schema = gateway.app.state.schema
    services = gateway.services

    async def run(cls: type[Any]) -> dict[str, Any]:
        context = Context(
            services=services,
            principal=DEMO_PRINCIPAL,
            loaders=build_loaders(services.providers, services.ledger),
        )
        with execution_context(schema, cls):
            result = await schema.execute(document, context_value=context)
        answer: dict[str, Any] = without_clock(response(result))
        return answer

    # the first query of a fresh gateway loads the catalog while it runs: one that asks
    # for `catalogStatus` beside `packages` sees it unloaded, the next one loaded
    await run(StrawberryGraphQLCoreExecutionContext)
    assert await run(AttributeFieldsExecutionContext) == await run(
        StrawberryGraphQLCoreExecutionContext
    )
