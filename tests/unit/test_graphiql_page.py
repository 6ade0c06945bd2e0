"""The GraphiQL page: where its assets come from, what it embeds, and how safely."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from esim_gateway.http.graphiql import (
    ASSETS,
    ASSETS_PATH,
    VERSIONS,
    graphiql_assets_dir,
    graphiql_csp,
    graphiql_html,
    graphiql_routes,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fetch-graphiql"
HOSTILE = 'query Evil { hello } # </script><script>alert("x")</script><!-- & \u2028'


class _Page(HTMLParser):
    """Scripts, stylesheets and inline texts of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}  # "config" / "script" / "style" -> inline text
        self._open: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script" and "src" not in attributes:
            self._open = "config" if attributes.get("type") == "application/json" else "script"
        elif tag == "style":
            self._open = "style"

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.texts[self._open] = self.texts.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def urls(self) -> list[str]:
        return [
            str(a.get("src") or a.get("href"))
            for tag, a in self.tags
            if (tag == "script" and "src" in a) or (tag == "link" and a.get("rel") == "stylesheet")
        ]

    def config(self) -> Any:
        return json.loads(self.texts["config"])


def _page(**kwargs: Any) -> _Page:
    kwargs.setdefault("assets_url", ASSETS_PATH)
    return _Page(graphiql_html(**kwargs))


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_with_an_assets_url_every_script_and_stylesheet_is_local() -> None:
    page = _page(assets_url="/graphiql-assets/")
    assert sorted(page.urls()) == sorted(f"/graphiql-assets/{a.name}" for a in ASSETS)
    assert "unpkg" not in graphiql_html(assets_url=ASSETS_PATH)


def test_without_an_assets_url_the_same_pinned_files_come_from_the_cdn() -> None:
    page = _page(assets_url=None)
    assert sorted(page.urls()) == sorted(a.cdn_url for a in ASSETS)
    assert "https://unpkg.com/graphiql@3.8.3/graphiql.min.js" in page.urls()
    assert "https://unpkg.com/react@18.3.1/umd/react.production.min.js" in page.urls()


def test_every_asset_carries_its_subresource_integrity_hash() -> None:
    page = _page(assets_url=None)
    integrity = {
        str(a.get("src") or a.get("href")): a.get("integrity")
        for _, a in page.tags
        if "integrity" in a
    }
    assert integrity == {asset.cdn_url: asset.integrity for asset in ASSETS}


def test_example_operations_become_tabs_with_the_auth_hint_atop_the_first() -> None:
    page = _page(
        example_operations=[("List plans", "query ListPlans { hello }"), ("Buy", "mutation B")],
        auth_hint="Send a bearer key.\nIn the Headers tab.",
    )
    assert page.config()["tabs"] == [
        {
            "query": "# Send a bearer key.\n# In the Headers tab.\n#\n"
            "# List plans\nquery ListPlans { hello }"
        },
        {"query": "# Buy\nmutation B"},
    ]


def test_an_auth_hint_without_examples_gets_a_tab_of_its_own() -> None:
    tabs = _page(auth_hint="Use a key").config()["tabs"]
    assert tabs == [{"query": "# Use a key\n#\n{\n  __typename\n}"}]
    assert _page().config()["tabs"] == []


def test_an_operation_containing_a_closing_script_tag_stays_inside_the_json_config() -> None:
    raw = graphiql_html(
        assets_url=ASSETS_PATH,
        example_operations=[("</script><b>name</b>", HOSTILE)],
        default_headers={"X-Note": "</script>"},
        auth_hint="<!-- </script> -->",
        endpoint='/graphql"></script>',
    )
    page = _Page(raw)
    # the parser saw exactly our scripts: 4 files, the JSON config and the boot script
    assert [tag for tag, _ in page.tags].count("script") == 6
    assert raw.count("</script>") == 6
    assert "<b>" not in raw and "<!-- </script>" not in raw
    config = page.config()
    assert config["tabs"][0]["query"].endswith(HOSTILE)
    assert "# </script><b>name</b>" in config["tabs"][0]["query"]
    assert json.loads(config["headers"]) == {"X-Note": "</script>"}
    assert config["endpoint"] == '/graphql"></script>'


def test_default_headers_prefill_the_headers_editor() -> None:
    config = _page(default_headers={"Authorization": "Bearer demo"}).config()
    assert json.loads(config["headers"]) == {"Authorization": "Bearer demo"}
    assert _page().config()["headers"] == ""


def test_the_page_runs_one_constant_inline_script_and_no_inline_handlers() -> None:
    first = _page(example_operations=[("a", "{ a }")])
    second = _page(endpoint="/other", auth_hint="b")
    assert first.texts["script"] == second.texts["script"]
    assert not any(name.startswith("on") for _, a in first.tags for name in a)


@pytest.mark.parametrize("assets_url", [ASSETS_PATH, None])
def test_the_csp_allows_exactly_the_pages_inline_script_and_style(assets_url: str | None) -> None:
    page = _page(assets_url=assets_url)
    directives = graphiql_csp(assets_url=assets_url).split("; ")
    policy = dict(d.split(" ", 1) for d in directives)
    source = "'self'" if assets_url else "https://unpkg.com"
    assert policy["script-src"] == f"{source} '{_sha256(page.texts['script'])}'"
    assert policy["style-src"] == f"{source} '{_sha256(page.texts['style'])}'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"


def test_the_csp_names_the_origin_of_absolute_asset_urls() -> None:
    policy = graphiql_csp(assets_url="https://static.example.com/graphiql")
    assert "script-src https://static.example.com 'sha256-" in policy


# --- the assets folder ------------------------------------------------------------------


def _fake_assets(folder: Path, versions: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        (folder / asset.name).write_text(f"/* {asset.name} */")
    manifest = {"versions": versions or dict(VERSIONS), "files": [a.name for a in ASSETS]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_folder_with_the_pinned_manifest_and_every_file_is_found(tmp_path: Path) -> None:
    folder = _fake_assets(tmp_path / "assets")
    assert graphiql_assets_dir(folder) == folder


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: (d / "graphiql.min.js").unlink(),
        lambda d: (d / "manifest.json").unlink(),
        lambda d: (d / "manifest.json").write_text("{not json"),
        lambda d: (d / "manifest.json").write_text("[]"),
        lambda d: (d / "manifest.json").write_text(json.dumps({"versions": dict(VERSIONS)})),
        lambda d: _fake_assets(d, {**VERSIONS, "graphiql": "3.8.2"}),
    ],
    ids=["a file missing", "no manifest", "bad json", "not an object", "no files", "old pins"],
)
def test_an_incomplete_or_stale_folder_is_not_used(tmp_path: Path, spoil: Any) -> None:
    folder = _fake_assets(tmp_path / "assets")
    spoil(folder)
    assert graphiql_assets_dir(folder) is None


def test_the_working_directory_var_graphiql_is_found_and_an_explicit_root_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _fake_assets(tmp_path / "var" / "graphiql")
    monkeypatch.chdir(tmp_path)
    assert graphiql_assets_dir() == here
    assert graphiql_assets_dir(tmp_path / "elsewhere") is None


async def test_the_routes_serve_the_folder_under_the_assets_path(tmp_path: Path) -> None:
    assert graphiql_routes(None) == []
    app = Starlette(routes=graphiql_routes(_fake_assets(tmp_path / "assets")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://gateway.test"
    ) as client:
        response = await client.get(f"{ASSETS_PATH}/graphiql.min.css")
        missing = await client.get(f"{ASSETS_PATH}/nope.js")
    assert response.status_code == 200 and response.text == "/* graphiql.min.css */"
    assert missing.status_code == 404


def test_the_fetched_files_match_the_pinned_integrity_hashes() -> None:
    folder = graphiql_assets_dir()
    if folder is None:
        pytest.skip("GraphiQL assets not fetched: run scripts/fetch-graphiql (needs npm)")
    for asset in ASSETS:
        digest = hashlib.sha384((folder / asset.name).read_bytes()).digest()
        assert asset.integrity == "sha384-" + base64.b64encode(digest).decode(), asset.name


# --- scripts/fetch-graphiql, without the network ------------------------------------------


def test_the_fetch_script_pins_the_same_versions_as_the_module() -> None:
    text = SCRIPT.read_text()
    pins = dict(re.findall(r"^(GRAPHIQL|REACT|EXPLORER)=(\S+)$", text, re.MULTILINE))
    assert pins == {
        "GRAPHIQL": VERSIONS["graphiql"],
        "REACT": VERSIONS["react"],
        "EXPLORER": VERSIONS["@graphiql/plugin-explorer"],
    }
    assert VERSIONS["react-dom"] == VERSIONS["react"]
    for asset in ASSETS:
        assert asset.name in text


def _run_script(dest: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The script with a PATH that has no npm (only the tools it needs before npm)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("dirname", "grep"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [bash, str(SCRIPT), str(dest)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_the_fetch_script_without_npm_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = _run_script(tmp_path / "dest", tmp_path)
    assert result.returncode == 1
    assert "npm is not installed" in result.stderr
    assert not (tmp_path / "dest").exists()


def test_the_fetch_script_does_nothing_when_the_manifest_already_matches(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    for asset in ASSETS:
        (dest / asset.name).write_text("x")
    versions = ", ".join(f'"{k}": "{v}"' for k, v in VERSIONS.items())
    (dest / "manifest.json").write_text(f'{{\n  "versions": {{{versions}}},\n  "files": []\n}}')
    result = _run_script(dest, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already in" in result.stderr


def test_every_saved_graphiql_tab_is_a_valid_operation_of_the_schema() -> None:
    from graphql import parse, validate

    from esim_gateway.http.view import EXAMPLE_OPERATIONS
    from esim_gateway.schema import build_schema

    schema = build_schema()._schema
    for name, document in EXAMPLE_OPERATIONS:
        assert validate(schema, parse(document)) == [], name
