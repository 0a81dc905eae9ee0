"""The ``bus`` fixture: every test asking for it runs once per backend of the ``EventBus``
protocol. A new backend joins the conformance suite by adding its factory to ``BACKENDS``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from eventbus import EventBus, InProcessBus


@asynccontextmanager
async def in_process() -> AsyncIterator[EventBus]:
    yield InProcessBus()


BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[EventBus]]] = {"in_process": in_process}


@pytest.fixture(params=list(BACKENDS))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    async with BACKENDS[request.param]() as made:
        yield made
