"""Calling the tools of ``call_tool`` steps: HTTP through aiohttp's client, or a Python callable
from the ``autopilot.tools`` entry points, with a timeout and retries with doubling backoff."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import entry_points
from typing import Any

import aiohttp

from config.tools import ENTRY_POINT_GROUP, HttpTool, PythonTool, ToolRegistry


class ToolFailed(Exception):
    """Every attempt failed; ``attempts`` says how many were made."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class ToolClient:
    def __init__(self, tools: ToolRegistry) -> None:
        self._tools = tools
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, name: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> tuple[dict[str, Any], int]:
        """The tool's answer as a JSON object (a bare value comes back as ``{"result": value}``),
        and how many attempts it took."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolFailed(f"tool {name!r} is not registered", 0)
        last = "no attempt made"
        for attempt in range(1, tool.retries + 2):
            try:
                async with asyncio.timeout(tool.timeout_seconds):
                    answer = await self._once(tool, payload, idempotency_key)
                return (answer if isinstance(answer, dict) else {"result": answer}), attempt
            except TimeoutError:
                last = f"timed out after {tool.timeout_seconds} s"
            except _Permanent as exc:
                raise ToolFailed(f"tool {name}: {exc}", attempt) from exc
            except Exception as exc:  # a transient failure: retry
                last = str(exc) or exc.__class__.__name__
            if attempt <= tool.retries:
                await asyncio.sleep(tool.backoff_seconds * 2 ** (attempt - 1))
        raise ToolFailed(f"tool {name} failed after {tool.retries + 1} attempt(s): {last}", tool.retries + 1)

    async def _once(self, tool: HttpTool | PythonTool, payload: dict[str, Any], key: str) -> Any:
        if isinstance(tool, PythonTool):
            return await _call_python(tool, payload)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {**tool.headers, "Idempotency-Key": key}
        options: dict[str, Any] = {"params": payload} if tool.method == "GET" else {"json": payload}
        async with self._session.request(tool.method, tool.url, headers=headers, **options) as response:
            if 400 <= response.status < 500 and response.status not in (408, 429):
                raise _Permanent(f"HTTP {response.status}: {(await response.text())[:200]}")
            response.raise_for_status()
            return await response.json(content_type=None)


class _Permanent(Exception):
    """A refusal that another attempt would not change (a 4xx other than 408 and 429)."""


async def _call_python(tool: PythonTool, payload: dict[str, Any]) -> Any:
    found = entry_points(group=ENTRY_POINT_GROUP, name=tool.entry_point)
    if not found:
        raise _Permanent(f"no entry point {tool.entry_point!r} in group {ENTRY_POINT_GROUP}")
    function = next(iter(found)).load()
    if inspect.iscoroutinefunction(function):
        return await function(payload)
    return await asyncio.to_thread(function, payload)
