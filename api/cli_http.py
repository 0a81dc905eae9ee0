"""How a CLI verb talks to a running server: which server and token (``--url``, ``--token`` or the
environment), one request with the bearer token, and the error envelope turned into lines a person
reads. Verbs go through the public API, so the CLI can do nothing a ``curl`` with the same token
could not, and needs neither the database nor the server's keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from config.settings import Settings

TOKEN_ENV = "AUTOPILOT_TOKEN"
URL_ENV = "AUTOPILOT_URL"


class CliFailure(Exception):
    """What a verb says on stderr before exiting with ``exit_code`` (2: the command itself is wrong)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Server:
    url: str
    token: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        """The envelope's ``error`` (code, message, details), or what a non-JSON answer said."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {}

    def failure(self) -> CliFailure:
        """The status, code and message, and one line per field a ``400`` names."""
        error = self.error
        status = f"{self.status} {error['code']}" if error.get("code") else str(self.status)
        lines = [f"{status}: {error.get('message', '')}"]
        details = error.get("details")
        if isinstance(details, list):
            lines += [f"  {d.get('field', '?')}: {d.get('message', '')}" for d in details if isinstance(d, dict)]
        return CliFailure("\n".join(lines))


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the server (also {URL_ENV}; default: this host and port from the settings)")
    parser.add_argument("--token", help=f"a bearer token (also {TOKEN_ENV})")


def server_of(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> Server:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise CliFailure(f"give --token or set {TOKEN_ENV} (mint one with: autopilot token ...)", exit_code=2)
    url = args.url or os.environ.get(URL_ENV)
    if not url:
        settings = settings_of(args)
        url = f"http://{settings.host}:{settings.port}"
    return Server(url.rstrip("/"), token)


async def _call(server: Server, method: str, path: str, body: Any, headers: dict[str, str],
                timeout: float) -> Answer:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.request(method, server.url + path, json=body,
                                   headers={"Authorization": f"Bearer {server.token}", **headers}) as response:
            if response.content_type != "application/json":
                return Answer(response.status, {"error": {"message": (await response.text())[:500]}})
            return Answer(response.status, await response.json())


def request(server: Server, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> Answer:
    """One request in an event loop of its own; a server that cannot be reached is a ``CliFailure``
    that says which URL was tried and how to start one."""
    try:
        return asyncio.run(_call(server, method, path, body, headers or {}, timeout))
    except aiohttp.ClientConnectorError as exc:
        why = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else exc.strerror or str(exc)
        raise CliFailure(f"cannot reach {server.url} ({why}); start the server with `autopilot serve`, "
                         f"or point --url or {URL_ENV} at a running one") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CliFailure(f"cannot reach {server.url}: {exc or type(exc).__name__}") from exc


def guarded(verb: str, action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The verb's exit code; a ``CliFailure`` is printed as ``autopilot <verb>: message``."""

    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except CliFailure as failure:
            print(f"autopilot {verb}: {failure}", file=sys.stderr)
            return failure.exit_code

    return run
