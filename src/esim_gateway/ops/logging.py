"""Structured JSON logs (structlog, also formatting the stdlib loggers) with the request
id, principal and operation bound per request; every event passes `redact_event`, which
drops credential-named keys and masks credential-looking text.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

from esim_gateway.errors import redact

__all__ = ["AccessLineWriter", "configure_logging", "redact_event"]

_ACCESS_LOG = logging.getLogger("esim_gateway.access")

_SENSITIVE = {
    "authorization",
    "token",
    "secret",
    "password",
    "apikey",
    "secretkey",
    "checksumkey",
    "xapikey",
    "xsignature",
    "signature",
    "activationcode",
    "lpa",
    "lpacode",
    "lpastring",
    "qrcodecontent",
    "pin",
    "puk",
    "roamifytoken",
    "jwt",
    "webhooksecret",
}


_NOT_LETTER = re.compile(r"[^a-z]")


@functools.lru_cache(maxsize=4096)
def _normal(key: str) -> str:
    # cached: log events use the same few keys over and over
    return _NOT_LETTER.sub("", key.lower())


def _render_json(event: Mapping[str, Any], default: Any = repr, **_: Any) -> str:
    # orjson: a fraction of the stdlib encoder's cost on every log line
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson cannot encode (an int past 64 bits): the stdlib can
        return json.dumps(event, default=default)


#: values that cannot hold a credential: returned as they are, before the (slower) checks
#: for mappings and sequences; most of an access line's values are these
_PLAIN = frozenset({int, float, bool, type(None)})


def _scrub(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            k: "[redacted]" if _normal(str(k)) in _SENSITIVE else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_event(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no credential leaves the process in a log line."""
    for key in list(event):
        if _normal(key) in _SENSITIVE:
            event[key] = "[redacted]"
        else:
            event[key] = _scrub(event[key])
    return event


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = True,
    handler: bool = True,
    library_access_logs: bool | None = None,
) -> None:
    """JSON lines on stderr for structlog and stdlib loggers alike.

    `handler=False` routes structlog into stdlib logging without installing a stderr
    handler (tests: pytest's own log capture then sees every record).
    `library_access_logs` lets httpx write its INFO line per provider call (our access
    line already counts and times them); None: only at DEBUG. uvicorn's access line is
    the server's to switch (`server_options`).
    """
    if library_access_logs is None:
        library_access_logs = level.upper() == "DEBUG"
    # Our lines carry no source file, thread or process fields: the logging HOWTO's
    # "Optimization" switches spare every record a stack walk and three lookups (~35 us a
    # line here, issue 12 'logging and metrics')
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.NOTSET if library_access_logs else logging.WARNING)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
        redact_event,
        # after the redaction: our clock, level and logger name carry no request text, and
        # scanning them cost ~5 us per line (issue 12, 'logging and metrics')
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_render_json)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        # drop records under the level before any processor (redaction walks values)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.setLevel(level)
    if handler:
        root.handlers[:] = [stream]
    _access_writer.install(AccessLineWriter([*shared, renderer], stream) if handler else None)


class AccessLineWriter:
    """The access line, through the same processors and onto the same stream as any
    structlog line, without the stdlib round trip.

    Budget line "logging and metrics" (issue 12): a structlog event routed through stdlib
    logging builds a bound-logger proxy, a LogRecord, runs the level filter and the
    handler chain, and ProcessorFormatter copies the record before rendering (~35 us of
    the ~45 us a line costs in a tight loop, more in the server). The access line is
    written once per request, so it takes the short way while the logging configuration
    is still the one `configure_logging` installed: the access logger and the root have
    no other handler or filter. Otherwise (pytest's capture, a handler added by a user) it
    is logged as any other event.
    """

    def __init__(self, processors: list[Any], handler: logging.StreamHandler[Any]) -> None:
        self._processors = processors
        self._handler = handler

    def applies(self) -> bool:
        root = _ACCESS_LOG.root
        return (
            len(root.handlers) == 1
            and root.handlers[0] is self._handler
            and not root.filters
            and not self._handler.filters
            and not _ACCESS_LOG.handlers
            and not _ACCESS_LOG.filters
            and _ACCESS_LOG.propagate
            and self._handler.level <= logging.INFO
        )

    def write(self, event: dict[str, Any]) -> None:
        line: Any = event
        for processor in self._processors:
            line = processor(_ACCESS_LOG, "info", line)
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except Exception:  # as StreamHandler.emit: a failed write is reported, not raised
            handler.handleError(logging.makeLogRecord({"msg": line}))
        finally:
            handler.release()


class _Installed:
    """The access line's writer for the logging configuration in force (process-wide,
    as logging's own configuration is); None when configure_logging installed no handler."""

    writer: AccessLineWriter | None = None

    def install(self, writer: AccessLineWriter | None) -> None:
        self.writer = writer


_access_writer = _Installed()
