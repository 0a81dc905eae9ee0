"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.catalog import Catalog
from tests.pipeline.carrier_tool import Carrier
from tests.pipeline.engines import Engines


@pytest.fixture
async def engines_for(clock: Any) -> AsyncIterator[Callable[..., Engines]]:
    """``engines_for(catalog, workers=...)``; every engine started is stopped at the end."""
    made: list[Engines] = []

    def make(catalog: Catalog, *, workers: int = 4) -> Engines:
        made.append(Engines(catalog, clock, workers))
        return made[-1]

    yield make
    for engines in made:
        for engine in engines.started:
            await engine.stop()  # stopping twice is harmless


@pytest.fixture
async def carrier() -> AsyncIterator[tuple[Carrier, str]]:
    tool = Carrier()
    app = web.Application()
    app.router.add_post("/claims", tool.handle)
    server = TestServer(app)
    await server.start_server()
    yield tool, str(server.make_url("/claims"))
    if tool.hang is not None:
        tool.hang.set()
    await server.close()
