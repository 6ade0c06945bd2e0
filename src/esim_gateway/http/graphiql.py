"""GraphiQL that works air-gapped and under a strict Content-Security-Policy.

Strawberry's built-in IDE page loads React and GraphiQL from unpkg. This page loads the same
kind of browser bundles from `/graphiql-assets` when `scripts/fetch-graphiql` has copied them
from the npm registry into `var/graphiql`, and from unpkg (pinned, with Subresource
Integrity) otherwise. Every file is pinned to the hashes below, so a local copy that differs
from the npm tarball is refused by the browser as a tampered CDN file would be.

The page runs one constant inline script (its hash is in `graphiql_csp()`); everything that
varies (endpoint, tabs, headers) travels in a `<script type="application/json">` element.
Subscriptions use graphql-transport-ws on the same endpoint (`ws:`/`wss:` from the page's
location); GraphiQL sends the Headers tab as the `connection_init` payload, so
`{"Authorization": "Bearer <key>"}` authenticates both HTTP and WebSocket operations.

Versions: GraphiQL 3.8.3 (the one Strawberry pins; its UMD bundle includes graphql-ws, which
the 3.9/4.x UMD bundles leave out, and 5.x has no browser bundle), React 18.3.1 (the last
React with UMD builds), @graphiql/plugin-explorer 3.2.5 (built for GraphiQL 3.8's
@graphiql/react 0.28).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

__all__ = [
    "ASSETS",
    "ASSETS_PATH",
    "VERSIONS",
    "Asset",
    "graphiql_assets_dir",
    "graphiql_csp",
    "graphiql_html",
    "graphiql_routes",
]

#: where `graphiql_routes()` mounts the local assets; pass it as `assets_url`
ASSETS_PATH = "/graphiql-assets"
CDN = "https://unpkg.com"

#: npm package -> version; the same pins as `scripts/fetch-graphiql` (a unit test checks)
VERSIONS: Mapping[str, str] = {
    "graphiql": "3.8.3",
    "react": "18.3.1",
    "react-dom": "18.3.1",
    "@graphiql/plugin-explorer": "3.2.5",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One browser file: its name in the assets folder, its npm origin and SRI hash."""

    name: str
    package: str
    path: str  # inside the npm tarball's `package/` folder, as unpkg serves it
    integrity: str

    @property
    def cdn_url(self) -> str:
        return f"{CDN}/{self.package}@{VERSIONS[self.package]}/{self.path}"


ASSETS: tuple[Asset, ...] = (
    Asset(
        "react.production.min.js",
        "react",
        "umd/react.production.min.js",
        "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    ),
    Asset(
        "react-dom.production.min.js",
        "react-dom",
        "umd/react-dom.production.min.js",
        "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    ),
    Asset(
        "graphiql.min.js",
        "graphiql",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        "graphiql.min.css",
        "graphiql",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        "plugin-explorer.umd.js",
        "@graphiql/plugin-explorer",
        "dist/index.umd.js",
        "sha384-5p6hGdlOTvUy6Wf0GauxCz+xM9YB/YYvcGG+bf9msr2eyd+KVIxgRkepHgUijedJ",
    ),
    Asset(
        "plugin-explorer.css",
        "@graphiql/plugin-explorer",
        "dist/style.css",
        "sha384-YN9MumWidbWKuNj8VfH5ggrFvm9YqAoIOMnKYpeGL3dr7Eg1qnQ+SAqSthdNZCjz",
    ),
)
_BY_NAME = {asset.name: asset for asset in ASSETS}

# Constant, so its CSP hash is constant. Reads the JSON config; never interpolated.
_BOOT_JS = """
(function () {
  "use strict";
  var mount = document.getElementById("graphiql");
  if (typeof GraphiQL === "undefined" || typeof ReactDOM === "undefined") {
    mount.textContent = "GraphiQL's scripts did not load. With no internet access, run " +
      "scripts/fetch-graphiql on the server and restart it.";
    return;
  }
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var http = new URL(config.endpoint, window.location.href);
  var ws = new URL(http.href);
  ws.protocol = http.protocol === "https:" ? "wss:" : "ws:";
  var plugins = [];
  if (typeof GraphiQLPluginExplorer !== "undefined") {
    plugins.push(GraphiQLPluginExplorer.explorerPlugin());
  }
  ReactDOM.createRoot(mount).render(React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({
      url: http.href,
      subscriptionUrl: ws.href,
      headers: config.fetchHeaders
    }),
    defaultTabs: config.tabs,
    defaultHeaders: config.headers,
    plugins: plugins
  }));
})();
"""
_STYLE = "html, body, #graphiql { height: 100%; margin: 0; }"


def graphiql_assets_dir(root: Path | None = None) -> Path | None:
    """The folder of fetched assets, or None.

    A folder counts when its `manifest.json` names exactly the pinned `VERSIONS` and every
    asset file is there. An explicit `root` is the only candidate; otherwise
    `$PWD/var/graphiql`, then the repository's `var/graphiql`.
    """
    if root is not None:
        candidates = [root]
    else:
        candidates = [
            Path.cwd() / "var" / "graphiql",
            Path(__file__).resolve().parents[3] / "var" / "graphiql",
        ]
    for folder in candidates:
        if _valid_assets(folder):
            return folder
    return None


def _valid_assets(folder: Path) -> bool:
    try:
        manifest: Any = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("versions") != dict(VERSIONS):
        return False
    files = manifest.get("files")
    if not isinstance(files, list) or not set(_BY_NAME) <= set(files):
        return False
    return all((folder / name).is_file() for name in _BY_NAME)


def graphiql_routes(assets_dir: Path | None) -> list[BaseRoute]:
    """`Mount(ASSETS_PATH, StaticFiles(...))` when the assets were fetched, else nothing."""
    if assets_dir is None:
        return []
    return [Mount(ASSETS_PATH, app=StaticFiles(directory=assets_dir), name="graphiql-assets")]


def graphiql_html(
    *,
    endpoint: str = "/graphql",
    assets_url: str | None,
    example_operations: Sequence[tuple[str, str]] = (),
    default_headers: Mapping[str, str] | None = None,
    auth_hint: str | None = None,
) -> str:
    """The IDE page.

    `assets_url` is where `graphiql_routes()` serves the local copies (`ASSETS_PATH`), or
    None to load the same files from unpkg. Each `(name, document)` in `example_operations`
    becomes a tab headed by `# name`; `auth_hint` is a comment at the top of the first tab.
    """
    tabs = [{"query": _comment(name) + "\n" + document} for name, document in example_operations]
    if auth_hint:
        first = tabs[0]["query"] if tabs else "{\n  __typename\n}"
        tabs[:1] = [{"query": _comment(auth_hint) + "\n#\n" + first}]
    config = {
        "endpoint": endpoint,
        "tabs": tabs,
        "headers": json.dumps(dict(default_headers), indent=2) if default_headers else "",
        # the gateway accepts GET queries only with a CSRF header; harmless on POST
        "fetchHeaders": {"x-graphql-csrf": "1"},
    }

    def tag(name: str) -> str:
        asset = _BY_NAME[name]
        url = html.escape(_asset_url(asset, assets_url), quote=True)
        sri = f'integrity="{asset.integrity}" crossorigin="anonymous"'
        if name.endswith(".css"):
            return f'<link rel="stylesheet" href="{url}" {sri}>'
        return f'<script src="{url}" {sri}></script>'

    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>esim-gateway GraphiQL</title>
  <link rel="icon" href="data:,">
  {tag("graphiql.min.css")}
  {tag("plugin-explorer.css")}
  <style>{_STYLE}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <noscript>GraphiQL needs JavaScript.</noscript>
  {tag("react.production.min.js")}
  {tag("react-dom.production.min.js")}
  {tag("graphiql.min.js")}
  {tag("plugin-explorer.umd.js")}
  <script id="graphiql-config" type="application/json">{_script_json(config)}</script>
  <script>{_BOOT_JS}</script>
</body>
</html>
"""


def graphiql_csp(*, assets_url: str | None) -> str:
    """A Content-Security-Policy under which the page from `graphiql_html()` works.

    Scripts and styles only from the assets' origin ('self' for a path) plus the page's one
    inline script and style, by hash; fonts are data: URLs inside the CSS; requests and
    WebSockets only to the page's own origin.
    """
    source = _origin(CDN) if assets_url is None else _origin(assets_url) or "'self'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {source} '{_sha256(_BOOT_JS)}'",
            f"style-src {source} '{_sha256(_STYLE)}'",
            "font-src data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _asset_url(asset: Asset, assets_url: str | None) -> str:
    return asset.cdn_url if assets_url is None else f"{assets_url.rstrip('/')}/{asset.name}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _comment(text: str) -> str:
    """`text` as GraphQL comment lines."""
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines() or [""])


def _script_json(value: object) -> str:
    """JSON that cannot end its `<script>` element or open an HTML comment in it."""
    return (
        json.dumps(value, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
