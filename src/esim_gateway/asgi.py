"""ASGI entry point for `uvicorn --workers N` (and other servers): a factory, so that
each worker reads its settings and builds its own app when it starts, not at import."""

from __future__ import annotations

from starlette.applications import Starlette

from esim_gateway.app import create_app
from esim_gateway.config import Settings


def create() -> Starlette:
    return create_app(Settings.from_env(), freeze_heap=True)
