"""Running the npm-based client tests of this folder: node, its packages, a live gateway."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def node_or_skip() -> str:
    """The node binary, once `npm ci` has installed this folder's locked packages."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the npm client tests need node and npm (CI has them)")
    if not (HERE / "node_modules" / ".package-lock.json").is_file():
        pytest.skip("tests/clients/node_modules is missing: run `npm ci --prefix tests/clients`")
    return node
