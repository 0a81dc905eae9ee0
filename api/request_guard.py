"""Refuses, before any route runs, what no route could read faithfully: a request line or a
header line over the limits a proxy would also apply (414, 431), and bytes that are not UTF-8,
or NUL, in the path, the query or a header (400 naming where). aiohttp's own parser refuses
lines past ``PARSER_LINE_LIMIT`` before our code runs, with its own plain-text 400; it is set
well above our limits, so that every ordinary client mistake gets the envelope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from aiohttp import web

from domain.errors import HeaderTooLarge, UriTooLong
from pipeline.validation import invalid

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_REQUEST_LINE = 8190
"""Bytes of ``METHOD target HTTP/1.1``, as nginx's and aiohttp's defaults."""
MAX_HEADER_LINE = 8190
"""Bytes of one ``Name: value`` line."""
PARSER_LINE_LIMIT = 32768
"""What aiohttp's parser is told (``Application(handler_args=...)``): beyond it, its own 400."""
PARSER_ARGS = {"max_line_size": PARSER_LINE_LIMIT, "max_field_size": PARSER_LINE_LIMIT}


def _bad_text(raw: bytes) -> str | None:
    """Why ``raw`` (already percent-decoded) cannot be read as text, or ``None``."""
    if b"\x00" in raw:
        return "NUL characters are not allowed"
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return "not UTF-8"
    return None


def _decoded(part: str) -> bytes:
    """The bytes a percent-encoded part of the target stands for (``+`` is a space in a query)."""
    return unquote_to_bytes(part.replace("+", " ").encode("utf-8", "surrogateescape"))


def check_request(request: web.Request) -> None:
    """Raise for the first thing in ``request``'s line or headers that no handler should see."""
    target = request.raw_path
    if len(request.method) + len(target) + 10 > MAX_REQUEST_LINE:
        raise UriTooLong(f"the request line is longer than {MAX_REQUEST_LINE} bytes",
                         [{"field": "path", "message": f"over {MAX_REQUEST_LINE} bytes"}])
    if not target.isascii() or "%" in target:
        path, _, query = target.partition("?")
        if (problem := _bad_text(_decoded(path))) is not None:
            raise invalid("path", problem, "encoding")
        for pair in query.split("&"):
            key, _, text = pair.partition("=")
            for part in (key, text):
                if (problem := _bad_text(_decoded(part))) is not None:
                    raise invalid(f"query.{_decoded(key).decode('utf-8', 'replace')}", problem, "encoding")
    for header, value in request.raw_headers:
        if len(header) + len(value) + 2 > MAX_HEADER_LINE:
            label = header.decode("latin-1")
            raise HeaderTooLarge(f"header {label} is longer than {MAX_HEADER_LINE} bytes",
                                 [{"field": f"header.{label}", "message": f"over {MAX_HEADER_LINE} bytes"}])
        if not value.isascii() or b"\x00" in value:
            if (problem := _bad_text(value)) is not None:
                raise invalid(f"header.{header.decode('latin-1')}", problem, "encoding")


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    check_request(request)
    return await handler(request)
