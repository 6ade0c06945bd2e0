"""ASGI entry point for `uvicorn --workers N` (and other servers): a factory, so that
each worker reads its settings, sets up its logging and builds its own app when it
starts, not at import (a worker process inherits none of its parent's logging set-up)."""

from __future__ import annotations

from starlette.applications import Starlette

from esim_gateway.app import create_app
from esim_gateway.config import Settings
from esim_gateway.ops.logging import configure_logging


def create() -> Starlette:
    settings = Settings.from_env()
    configure_logging(settings.log_level, library_access_logs=settings.library_access_logs_enabled)
    return create_app(settings, freeze_heap=True)
