"""Test helpers for the event streams: a real server on a port (as ``autopilot serve`` runs it),
an SSE parser working on the raw bytes, and two clients: aiohttp's, and a bare socket with a tiny
receive buffer that can stop reading, to play the slow client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from api.app import create_app
from api.keys import BUS, EVENTS, PIPELINE, TOKENS
from api.logs import AccessLogger
from api.sse import STREAMS
from config.settings import Settings
from store.records import EventRecord
from tests.api.conftest import exception_body

SECRET = "sse-secret-" + "s" * 32


@dataclass
class Message:
    """One dispatched block of the stream (an event, a ``retry:`` hint) or one comment line."""

    event: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)

    @property
    def event_id(self) -> int:
        """The ``id:`` line as the number it is (an event's global id)."""
        assert self.id is not None, "this message carries no id"
        return int(self.id)


class SseParser:
    """The text/event-stream format: lines end in LF (or CRLF); a blank line ends a block; ``data``
    lines join with LF; a line starting with ':' is a comment (reported here, ignored by browsers)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._block: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> list[Message]:
        self._buffer += chunk
        out: list[Message] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = self._buffer[:end].rstrip(b"\r").decode()
            self._buffer = self._buffer[end + 1:]
            if not line:
                if self._block:
                    out.append(Message(**self._block))
                self._block = {}
            elif line.startswith(":"):
                out.append(Message(comment=line[1:].strip()))
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    previous = self._block.get("data")
                    self._block["data"] = value if previous is None else f"{previous}\n{value}"
                elif name in ("event", "id"):
                    self._block[name] = value
                elif name == "retry" and value.isdigit():
                    self._block["retry"] = int(value)
        return out


class _Messages:
    def __init__(self) -> None:
        self.parser = SseParser()
        self.pending: deque[Message] = deque()
        self.comments: list[str] = []

    async def _chunk(self) -> bytes:
        raise NotImplementedError

    async def next(self, timeout: float = 10) -> Message:
        """The next message; a bounded wait. ``EOFError`` when the server ended the stream."""
        while not self.pending:
            chunk = await asyncio.wait_for(self._chunk(), timeout)
            if not chunk:
                raise EOFError("the stream ended")
            for message in self.parser.feed(chunk):
                if message.comment is not None:
                    self.comments.append(message.comment)
                self.pending.append(message)
        return self.pending.popleft()

    async def events(self, until_id: int, timeout: float = 30) -> list[Message]:
        """Events (messages with data) until one with an id of at least ``until_id``."""
        got: list[Message] = []
        async with asyncio.timeout(timeout):
            while not got or got[-1].id is None or int(got[-1].id) < until_id:
                message = await self.next(timeout)
                if message.data is not None:
                    got.append(message)
        return got


class Stream(_Messages):
    """An event stream read with aiohttp's client."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__()
        self.response = response

    async def _chunk(self) -> bytes:
        return await self.response.content.readany()

    def close(self) -> None:
        self.response.close()


class SlowStream(_Messages):
    """An event stream over a bare socket whose receive buffer is tiny: while the test does not
    read, the server's writes soon block, as they would for a client on a bad network."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader, self.writer = reader, writer
        self.status = 0
        self._chunk_left = 0

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str]) -> SlowStream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        stream = cls(reader, writer)
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        stream.status = int(head.split(" ", 2)[1])
        assert "transfer-encoding: chunked" in head.lower(), head
        return stream

    async def _chunk(self) -> bytes:
        """The next piece of the chunked body (``b""`` at its end)."""
        if self._chunk_left == 0:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                return b""
            self._chunk_left = size
        data = await self.reader.read(self._chunk_left)
        if not data:
            return b""
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            await self.reader.readexactly(2)  # the CRLF after each chunk's data
        return data

    def close(self) -> None:
        self.writer.close()


class LiveServer:
    """The application served on a real port by aiohttp's runner, like ``autopilot serve``
    (without handler cancellation unless asked), with a client session."""

    def __init__(self, app: web.Application, runner: web.AppRunner, session: aiohttp.ClientSession) -> None:
        self.app, self.runner, self.session = app, runner, session
        self.port = runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{self.port}"

    def token(self, tenant: str = "acme", subject: str = "ann", roles: tuple[str, ...] = ("admin",)) -> str:
        return self.app[TOKENS].mint(tenant=tenant, subject=subject, roles=list(roles), ttl=timedelta(hours=1))

    def auth(self, tenant: str = "acme", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant)}", **extra}

    async def ingest(self, tenant: str = "acme", **overrides: Any) -> str:
        async with self.session.post(f"{self.base}/api/v1/exceptions", json=exception_body(**overrides),
                                     headers=self.auth(tenant)) as response:
            body = await response.json()
            assert response.status == 202, body
            return body["run_id"]

    async def burst(self, n: int, tenant: str = "acme", workers: int = 8, **overrides: Any) -> list[str]:
        """``n`` exceptions from ``workers`` concurrent clients; the run ids in order of their 202."""
        ids: list[str] = []

        async def worker() -> None:
            while len(ids) + running[0] < n:
                running[0] += 1
                try:
                    ids.append(await self.ingest(tenant, **overrides))
                finally:
                    running[0] -= 1

        running = [0]
        await asyncio.gather(*(worker() for _ in range(workers)))
        return ids

    async def stream(self, path: str, tenant: str = "acme", headers: dict[str, str] | None = None) -> Stream:
        response = await self.session.get(self.base + path, headers={**self.auth(tenant), **(headers or {})})
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        return Stream(response)

    async def log(self, tenant: str = "acme", after: int = 0) -> list[EventRecord]:
        """The tenant's log after ``after``, read from the database."""
        events: list[EventRecord] = []
        while page := await self.app[EVENTS].after(tenant, after, limit=1000):
            events += page
            after = page[-1].id
        return events

    async def settle(self) -> None:
        await self.app[PIPELINE].drain()

    @property
    def subscribers(self) -> int:
        return self.app[BUS].subscriber_count

    @property
    def open_streams(self) -> int:
        return self.app[STREAMS].open


@asynccontextmanager
async def serve(data_dir: Path, *, handler_cancellation: bool = False, **settings: Any) -> AsyncIterator[LiveServer]:
    app = create_app(Settings(data_dir=data_dir, jwt_secret=SECRET, **settings))
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation, access_log_class=AccessLogger,
                           shutdown_timeout=30)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        yield LiveServer(app, runner, session)
    finally:
        await session.close()
        await runner.cleanup()


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
