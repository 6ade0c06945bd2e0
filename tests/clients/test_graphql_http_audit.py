"""The GraphQL-over-HTTP spec audit of npm's `graphql-http`, against a live gateway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from esim_gateway.app import create_app
from tests.clients.node import HERE, node_or_skip
from tests.conftest import gateway_settings, serve_in_thread


def test_the_graphql_http_audit_finds_no_error_and_no_warning(tmp_path: Path) -> None:
    node = node_or_skip()
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    app = create_app(settings, catalog_refresh=False, reconcile_interval=3600)
    with serve_in_thread(app) as url:
        run = subprocess.run(  # noqa: S603 - our own script, our own node
            [node, str(HERE / "audit.mjs"), f"{url}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert report["error"] == 0 and report["warn"] == 0
    assert report["ok"] >= 60  # the audit ran in full (61 checks in graphql-http 1.23)
