"""Structured logs (structlog): readable on a console, JSON lines in production; and the HTTP
access log, which never prints a token."""

from __future__ import annotations

import logging
import sys

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from structlog.typing import Processor

STREAM_SUFFIX = "/events/stream"


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    renderer = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=shared,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def loggable_target(request: web.BaseRequest) -> str:
    """The request target as the access log shows it: without the query string on the event
    streams (their ``?access_token=`` is a bearer token), and with any ``access_token`` masked
    elsewhere, where it is refused but may still have been sent."""
    url = request.rel_url
    if url.path.endswith(STREAM_SUFFIX):
        return url.path
    if "access_token" in url.query:
        url = url.update_query(access_token="redacted")
    return str(url)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log line (``%a "%r" %s %b %Tf "%{User-Agent}i"``) with ``loggable_target``
    in place of the raw request line."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"', request.remote, request.method, loggable_target(request),
            request.version.major, request.version.minor, response.status, response.body_length, time,
            request.headers.get("User-Agent", "-"),
        )
