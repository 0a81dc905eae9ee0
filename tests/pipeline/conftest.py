"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.pipeline.carrier_tool import Carrier


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
