"""Engines started by the pipeline tests, as the service would be, once or again after a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from eventbus import EventBus, InProcessBus
from pipeline.engine import PipelineEngine


class Engines:
    """Starts engines on a database (a second one on the same database is the service after a
    restart) and remembers how many unfinished runs each picked up at start."""

    def __init__(self, catalog: Catalog, clock: Any, workers: int) -> None:
        self.catalog, self.clock, self.workers = catalog, clock, workers
        self.started: list[PipelineEngine] = []
        self.recovered: dict[PipelineEngine, int] = {}

    async def __call__(self, db: AsyncEngine, bus: EventBus | None = None) -> PipelineEngine:
        engine = PipelineEngine(db, bus or InProcessBus(), self.catalog, clock=self.clock, workers=self.workers)
        self.started.append(engine)
        self.recovered[engine] = await engine.start()
        return engine
