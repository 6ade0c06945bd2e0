"""Fixtures of the browser tests: one headless Chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import DevTools, find_chromium, launch_chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium: apt-get install -y chromium")
    return found


@pytest.fixture(scope="module")
def devtools(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    with launch_chromium(chromium, tmp_path_factory.mktemp("chromium-profile")) as tools:
        yield tools
