"""One HTTP delivery attempt: a POST with a timeout, no redirects followed, and the answer read
only up to a limit, whatever the receiver sends back."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from delivery.address_guard import AddressRefused, Network, literal_refusal

SNIPPET_BYTES = 1024
"""How much of an answer an attempt keeps, to show the operator."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one try saw: a status when an answer came back, else the error."""

    ok: bool
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_snippet: str | None = None
    retry_after: str | None = None
    refused: bool = False
    """The destination may not be reached (``address_guard``): retrying would not help."""


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], *,
               timeout: float, allowed: tuple[Network, ...], read_limit: int = 64 * 1024) -> Attempt:
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    host = URL(url).host or ""
    if (why := literal_refusal(host, allowed)) is not None:
        return Attempt(False, None, 0, f"refused: {why}", refused=True)
    try:
        async with session.post(
            url, data=body, headers={"Content-Type": "application/json", **headers},
            allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            answer = await response.content.read(read_limit)
            snippet = answer[:SNIPPET_BYTES].decode("utf-8", "replace")
            ok = 200 <= response.status < 300
            error = None if ok else (
                f"redirect to {response.headers.get('Location', '?')} not followed" if 300 <= response.status < 400
                else f"answered {response.status}")
            return Attempt(ok, response.status, took(), error, snippet, response.headers.get("Retry-After"))
    except AddressRefused as exc:
        return Attempt(False, None, took(), f"refused: {exc}", refused=True)
    except TimeoutError:
        return Attempt(False, None, took(), f"no answer within {timeout:g} s")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressRefused):
            return Attempt(False, None, took(), f"refused: {exc.os_error}", refused=True)
        return Attempt(False, None, took(), f"could not connect: {exc.os_error or exc}")
    except aiohttp.ClientError as exc:
        return Attempt(False, None, took(), f"{type(exc).__name__}: {exc}")
