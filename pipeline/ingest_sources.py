"""Reading a declared ingest source as batches of parsed items.

JSON-lines files are read line by line (in a thread, a batch at a time, so a big file neither
fills memory nor blocks the loop); an HTTP source is one GET whose answer is a JSON list. A line
that is not JSON is an item with an ``error``, for the job to reject; a source that cannot be
read at all raises ``SourceError``. A file source whose path is missing or whose folder is empty
has nothing to read, which is not an error: an inbox is often empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
import structlog

from config.sources import HttpSource, JsonlSource

log = structlog.get_logger(__name__)
MAX_LINE_BYTES = 1 << 20
"""A longer line is rejected (and skipped) rather than read into memory."""
MAX_BODY_BYTES = 64 << 20
"""An HTTP answer larger than this fails the job."""


class SourceError(Exception):
    """The source cannot be read (a file that cannot be opened, a refused request, an answer that
    is not JSON)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One item as read: where it came from (``file`` relative to the source's path, or None for
    HTTP; ``line``, or the position in the answer's list, from 1) and its JSON, or why not."""

    file: str | None
    line: int
    data: Any = None
    error: str | None = None


async def read_batches(
    source: JsonlSource | HttpSource, data_dir: Path, batch: int = 200
) -> AsyncGenerator[list[Item], None]:
    if isinstance(source, HttpSource):
        items = await _fetch(source)
        for start in range(0, len(items), batch):
            yield [Item(None, start + i + 1, data) for i, data in enumerate(items[start : start + batch])]
        return
    root, files = _files(source, data_dir)
    for path in files:
        name = path.relative_to(root).as_posix() if path != root else path.name
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise SourceError(f"source {source.id}: cannot open {name}: {exc.strerror}") from exc
        with handle:
            line = 0
            while True:
                lines = await asyncio.to_thread(_read_lines, handle, batch)
                if not lines:
                    break
                items = []
                for raw in lines:
                    line += 1
                    item = _parse(name, line, raw)
                    if item is not None:
                        items.append(item)
                if items:
                    yield items


def _files(source: JsonlSource, data_dir: Path) -> tuple[Path, list[Path]]:
    """The source's root and the files to read, in name order. A path not there yet has nothing
    to read: a folder (a name without a suffix, like ``inbox/acme``) is created, so there is
    somewhere to drop files; a file (``events.jsonl``) is left for its writer to create."""
    root = Path(source.path)
    if not root.is_absolute():
        root = data_dir / root
    if root.is_file():
        return root, [root]
    if root.is_dir():
        return root, sorted((p for p in root.glob(source.pattern) if p.is_file()), key=lambda p: p.name)
    if root.exists() or root.is_symlink():  # a socket, a device, a link to nothing
        raise SourceError(f"source {source.id}: {source.path} is neither a file nor a directory")
    if not root.suffix:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"source {source.id}: cannot create the folder {source.path}: {exc.strerror}") from exc
        log.info("created a missing source folder", source=source.id, path=str(root))
    return root, []


def _read_lines(handle: IO[bytes], count: int) -> list[bytes | None]:
    """Up to ``count`` lines; ``None`` stands for one over ``MAX_LINE_BYTES`` (skipped to its end)."""
    lines: list[bytes | None] = []
    while len(lines) < count:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            lines.append(None)
        else:
            lines.append(raw)
    return lines


def _parse(name: str, line: int, raw: bytes | None) -> Item | None:
    if raw is None:
        return Item(name, line, error=f"the line is longer than {MAX_LINE_BYTES} bytes")
    if not raw.strip():
        return None
    try:
        return Item(name, line, orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        return Item(name, line, error=f"not JSON: {exc}")


async def _fetch(source: HttpSource) -> list[Any]:
    """GET the source's URL; its JSON answer must be a list, or hold one at ``items_field``.
    Redirects are not followed: the declared URL is the only one the service may read."""
    where = f"source {source.id}: GET {source.url}"
    timeout = aiohttp.ClientTimeout(total=source.timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(source.url, headers=source.headers, allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    raise SourceError(f"{where} answered {response.status} {response.reason or ''}".rstrip())
                body = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise SourceError(f"{where}: the answer is larger than {MAX_BODY_BYTES} bytes")
    except TimeoutError as exc:
        raise SourceError(f"{where}: no answer within {source.timeout_seconds:g}s") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(f"{where} failed: {exc}") from exc
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{where}: the answer is not JSON: {exc}") from exc
    if source.items_field is not None:
        if not isinstance(answer, dict) or not isinstance(answer.get(source.items_field), list):
            raise SourceError(f"{where}: the answer has no list at {source.items_field!r}")
        return answer[source.items_field]
    if not isinstance(answer, list):
        raise SourceError(f"{where}: the answer is not a list (set items_field to the key holding it)")
    return answer
