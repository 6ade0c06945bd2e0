"""The Docker image: live by default, a small build context, GraphiQL's assets inside,
and a HEALTHCHECK that follows the configured port."""

from __future__ import annotations

import fnmatch
import re
import socket
from pathlib import Path

import pytest

from esim_gateway import cli
from esim_gateway.app import create_app
from esim_gateway.config import Settings
from tests.conftest import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The Dockerfile's `name` instructions, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_the_image_runs_live_mode_unless_told_otherwise() -> None:
    env = " ".join(instructions("ENV"))
    assert "ESIM_GATEWAY_MODE=live" in env
    assert instructions("CMD")[-1] == 'CMD ["esim-gateway", "serve"]'


def test_the_healthcheck_asks_the_configured_port() -> None:
    (check,) = instructions("HEALTHCHECK")
    assert '["esim-gateway", "healthcheck"]' in check and "8000" not in check


def test_the_image_carries_graphiqls_assets_where_the_gateway_looks() -> None:
    assert any("fetch-graphiql" in run for run in instructions("RUN"))
    workdir = instructions("WORKDIR")[-1].split()[1]
    copies = [c for c in instructions("COPY") if "--from=graphiql" in c]
    assert copies and copies[0].split()[-1] == f"{workdir}/var/graphiql"


def test_the_image_installs_the_versions_make_installs() -> None:
    (install,) = [run for run in instructions("RUN") if "pip install" in run]
    assert "-c constraints.txt" in install
    assert any("constraints.txt" in copy.split()[1:-1] for copy in instructions("COPY"))
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(
    "path",
    [
        ".venv/lib/python3.11/site-packages/x.py",
        ".git/HEAD",
        "esim_gateway.db",
        "esim_gateway.sandbox.json",
        ".env",
        "var/graphiql/graphiql.min.js",
        "src/esim_gateway/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".venv-compat/bin/python",
    ],
)
def test_the_build_context_leaves_out_what_the_image_does_not_need(path: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(candidate: str) -> bool:
        parts = candidate.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
            or fnmatch.fnmatch(prefix.split("/")[-1], pattern.removeprefix("**/"))
            for prefix in prefixes
            for pattern in patterns
        )

    assert ignored(path)
    for needed in (
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "src/esim_gateway/app.py",
        "scripts/fetch-graphiql",
    ):
        assert not ignored(needed), needed


def test_healthcheck_follows_the_port_setting(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    monkeypatch = clean_environment
    app = create_app(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"),
        catalog_refresh=False,
    )
    with serve_in_thread(app) as url:
        monkeypatch.setenv("ESIM_GATEWAY_PORT", url.rsplit(":", 1)[1])
        assert cli.main(["healthcheck"]) == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ESIM_GATEWAY_PORT", str(unused.getsockname()[1]))
    assert cli.main(["healthcheck", "--timeout", "0.5"]) == 1
