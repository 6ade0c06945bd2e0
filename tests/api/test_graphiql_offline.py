"""GraphiQL in a real headless Chromium with every non-local host unreachable.

Self-contained: a tiny Strawberry schema behind uvicorn on 127.0.0.1 serves
`graphiql_html(assets_url=ASSETS_PATH)` under `graphiql_csp()`, and the assets fetched by
`scripts/fetch-graphiql`. Chromium resolves no host name (`--host-resolver-rules`), and the
test records every request the page makes, so passing proves the IDE needs no internet.
Driven over the DevTools protocol with the `websockets` client (a uvicorn[standard] dependency).

Needs `apt-get install -y chromium` and `scripts/fetch-graphiql`; skipped otherwise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL

from esim_gateway.http.graphiql import (
    ASSETS_PATH,
    graphiql_assets_dir,
    graphiql_csp,
    graphiql_html,
    graphiql_routes,
)
from tests.browser import DevTools, Page, fresh_page
from tests.conftest import serve_in_thread

pytestmark = pytest.mark.browser

GREETING = "Hello from an air-gapped GraphiQL"
AUTH_HINT = 'Send {"Authorization": "Bearer <key>"} in the Headers tab.'


# --- the server under test --------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return GREETING


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self, to: int) -> AsyncIterator[int]:
        for i in range(1, to + 1):
            yield i


class _View(GraphQL[None, None]):
    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(
            graphiql_html(
                endpoint=request.url.path,
                assets_url=ASSETS_PATH,
                example_operations=[
                    ("Say hello", "query Hello {\n  hello\n}"),
                    ("Count to three", "subscription Count {\n  count(to: 3)\n}"),
                ],
                auth_hint=AUTH_HINT,
            ),
            headers={"Content-Security-Policy": graphiql_csp(assets_url=ASSETS_PATH)},
        )


def _app(assets: Path) -> Starlette:
    view = _View(strawberry.Schema(query=Query, subscription=Subscription))
    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            *graphiql_routes(assets),
        ]
    )


@pytest.fixture(scope="module")
def assets() -> Path:
    found = graphiql_assets_dir()
    if found is None:
        pytest.skip("GraphiQL assets not fetched: run scripts/fetch-graphiql (needs npm)")
    return found


@pytest.fixture(scope="module")
def base_url(assets: Path) -> Iterator[str]:
    with serve_in_thread(_app(assets), "off") as url:
        yield url


@pytest.fixture
def page(devtools: DevTools, base_url: str) -> Iterator[Page]:
    """A fresh browser context (empty localStorage) showing GraphiQL, editor rendered."""
    with fresh_page(devtools) as tab:
        tab.send("Page.navigate", url=f"{base_url}/graphql")
        tab.wait_for(
            "!!document.querySelector('.graphiql-query-editor .CodeMirror')"
            " && !!document.querySelector('.graphiql-execute-button')",
            "the GraphiQL query editor",
        )
        yield tab


QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESPONSE = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
TAB_TITLES = "[...document.querySelectorAll('.graphiql-tab-button')].map(t => t.textContent)"
ACTIVE_TAB = "document.querySelector('.graphiql-tab-active .graphiql-tab-button').textContent"


def _run_and_wait(page: Page, expected: str) -> Any:
    """Click the run button; the decoded response once it contains `expected`."""
    page.click(".graphiql-execute-button")
    text = page.wait_for(f"{RESPONSE}.includes({json.dumps(expected)}) && {RESPONSE}", expected)
    return json.loads(text)


def _not_local(urls: list[str], base_url: str) -> list[str]:
    ws_url = base_url.replace("http://", "ws://", 1)
    return [u for u in urls if not u.startswith((base_url + "/", ws_url + "/", "data:"))]


def test_graphiql_runs_a_typed_query_with_only_local_assets_under_its_csp(
    page: Page, base_url: str, tmp_path: Path
) -> None:
    assert page.eval(TAB_TITLES) == ["Hello", "Count"]
    first_tab = page.eval(f"{QUERY_EDITOR}.getValue()")
    assert first_tab.startswith(f"# {AUTH_HINT}\n#\n# Say hello\nquery Hello")

    page.eval(f"{QUERY_EDITOR}.setValue('query Typed {{ hello }}')")
    page.wait_for(f"{ACTIVE_TAB} === 'Typed'", "GraphiQL to take the edit")
    assert _run_and_wait(page, GREETING) == {"data": {"hello": GREETING}}

    shot = page.send("Page.captureScreenshot", format="png")["data"]
    (tmp_path / "graphiql.png").write_bytes(base64.b64decode(shot))
    urls = page.requested_urls()
    assert f"{base_url}{ASSETS_PATH}/graphiql.min.js" in urls
    assert f"{base_url}/graphql" in urls
    assert _not_local(urls, base_url) == []
    assert page.problems() == []


def test_the_subscription_tab_streams_over_graphql_transport_ws_on_the_same_endpoint(
    page: Page, base_url: str
) -> None:
    page.click(".graphiql-tab:nth-child(2) .graphiql-tab-button")
    page.wait_for(f"{ACTIVE_TAB} === 'Count'", "the second example tab")
    assert page.eval(f"{QUERY_EDITOR}.getValue()").startswith("# Count to three\n")
    # Right after a tab switch GraphiQL's operation name can lag behind the editor (a run
    # then posts the previous tab's name: "Unknown operation", 400). An edit, as a user's
    # typing, is parsed at once; the tab's title shows when it is.
    page.eval(f"{QUERY_EDITOR}.setValue('subscription CountToThree {{ count(to: 3) }}')")
    page.wait_for(f"{ACTIVE_TAB} === 'CountToThree'", "GraphiQL to take the edit")

    assert _run_and_wait(page, "3") == {"data": {"count": 3}}
    sockets = [e["url"] for e in page.events("Network.webSocketCreated")]
    assert sockets == [f"{base_url.replace('http://', 'ws://', 1)}/graphql"]
    assert _not_local(page.requested_urls(), base_url) == []
    assert page.problems() == []


# --- the real gateway ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_url(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app (sandbox mode, its own ledger) on a loopback socket."""
    from esim_gateway.app import create_app
    from esim_gateway.config import Settings

    ledger = tmp_path_factory.mktemp("gateway") / "ledger.db"
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{ledger}"), catalog_refresh=False)
    with serve_in_thread(app, "on") as url:
        yield url


def test_the_gateways_own_graphiql_lists_sandbox_plans_offline(
    devtools: DevTools, gateway_url: str
) -> None:
    with fresh_page(devtools) as tab:
        tab.send("Page.navigate", url=f"{gateway_url}/graphql")
        tab.wait_for(
            "!!document.querySelector('.graphiql-query-editor .CodeMirror')"
            " && !!document.querySelector('.graphiql-execute-button')",
            "the GraphiQL query editor",
        )
        titles = tab.eval(TAB_TITLES)
        assert "ListPlans" in titles or "List plans" in " ".join(titles)
        tab.eval(
            f"{QUERY_EDITOR}.setValue('query Count {{ packages(first: 1) {{ totalCount }} }}')"
        )
        tab.wait_for(f"{ACTIVE_TAB} === 'Count'", "GraphiQL to take the edit")
        result = _run_and_wait(tab, "totalCount")
        assert result["data"]["packages"]["totalCount"] > 1000
        assert _not_local(tab.requested_urls(), gateway_url) == []
        assert tab.problems() == []
