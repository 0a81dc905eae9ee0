"""The ``ingest`` job: read a declared source and start a pipeline run for each new exception.

An item is keyed by the source's own id for it (``id_field``), or by the hash of its canonical
JSON when it has none; the run and the ``ingested_items`` row for that key commit together, so
a re-read of the source, a restarted job or a second job racing this one never starts a second
run for the same item. Items already ingested are skipped by one query per batch, without a
write; a bad item is recorded and counted, never fatal."""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import aclosing
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.exception_input import ExceptionIn
from config.sources import HttpSource, JsonlSource
from domain.topics import Topic
from pipeline.ingest_sources import Item, read_batches
from pipeline.jobs import JobContext
from pipeline.start_request import StartRequest
from store.tables import ingested_items
from store.writer import WriteConflict

READ_BATCH = 200
"""Items read, checked and looked up in ``ingested_items`` together."""
CONCURRENT_STARTS = 50
MAX_KEY = 255


class IngestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=64, description="A source declared in config/sources.yaml")
    max_items: int = Field(10000, ge=1, le=100000, description="Stop after reading this many items")


class IngestFailed(Exception):
    """The job cannot go on: an unknown source, or one whose workflow cannot take exceptions."""


def item_key(data: dict[str, Any], id_field: str) -> tuple[str, bool]:
    """The item's key, and whether it is a hash (the item had no id of its own). ``id_field``
    may be a dotted path into the item (``context.event_id``)."""
    value: Any = data
    for part in id_field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "sha256:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest(), True
    if isinstance(value, bool) or not isinstance(value, str | int) or not 0 < len(str(value)) <= MAX_KEY:
        raise ValueError(f"must be a non-empty string of at most {MAX_KEY} characters")
    return str(value), False


def _nul_in(value: Any, path: str) -> str | None:
    """Where a NUL character hides in an item (keys included), as the API refuses it in a body:
    PostgreSQL's JSON cannot keep one, so its write would fail the whole job, again at every read."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for name, inner in value.items():
            if "\x00" in name:
                return path
            if (found := _nul_in(inner, f"{path}.{name}" if path else name)) is not None:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            if (found := _nul_in(inner, f"{path}[{index}]")) is not None:
                return found
    return None


class _Ingest:
    """One pass over a source; counts what happened to every item."""

    def __init__(self, ctx: JobContext, source: JsonlSource | HttpSource) -> None:
        self.ctx, self.source = ctx, source
        self.db: AsyncEngine = ctx.db
        self.counts = dict(items_read=0, started=0, duplicates=0, rejected=0, keyed_by_hash=0)
        self.truncated = False
        self.seen: set[str] = set()

    async def run(self) -> dict[str, Any]:
        limit = self.ctx.params.max_items
        async with aclosing(read_batches(self.source, self.ctx.data_dir, READ_BATCH)) as batches:
            async for items in batches:
                room = limit - self.counts["items_read"]
                if len(items) > room:
                    items, self.truncated = items[:room], True
                self.counts["items_read"] += len(items)
                await self._batch(items)
                if self.truncated:
                    break
                if self.counts["items_read"] == limit:  # full: truncated only if anything is left
                    self.truncated = await anext(batches, None) is not None
                    break
        return {"source": self.source.id, **self.counts, "truncated": self.truncated}

    async def _batch(self, items: list[Item]) -> None:
        fresh: dict[str, tuple[Item, dict[str, Any]]] = {}
        for item in items:
            checked = self._check(item)
            if checked is None:
                continue
            key, exception = checked
            if key in self.seen:
                self.counts["duplicates"] += 1
                continue
            self.seen.add(key)
            fresh[key] = (item, exception)
        for key in await self._already_ingested(list(fresh)):
            del fresh[key]
            self.counts["duplicates"] += 1
        pending = list(fresh.items())
        for start in range(0, len(pending), CONCURRENT_STARTS):
            chunk = pending[start : start + CONCURRENT_STARTS]
            outcomes = await asyncio.gather(*(self._start(k, i, e) for k, (i, e) in chunk), return_exceptions=True)
            failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failure is not None:
                raise failure

    def _check(self, item: Item) -> tuple[str, dict[str, Any]] | None:
        """The item's key and its exception as the pipeline takes it, or None once rejected."""
        if item.error is not None:
            self._reject(item, None, item.error)
            return None
        try:
            exception = ExceptionIn.model_validate(item.data).model_dump(mode="json")
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_context=False, include_input=False)[0]
            field = ".".join(str(part) for part in error["loc"]) or None
            self._reject(item, field, error["msg"])
            return None
        if (where := _nul_in(item.data, "")) is not None:
            self._reject(item, where or None, "a NUL character cannot be stored")
            return None
        try:
            key, hashed = item_key(item.data, self.source.id_field)
        except ValueError as exc:
            self._reject(item, self.source.id_field, str(exc))
            return None
        self.counts["keyed_by_hash"] += hashed
        return key, exception

    def _reject(self, item: Item, field: str | None, message: str) -> None:
        self.counts["rejected"] += 1
        self.ctx.record(Topic.INGEST_ITEM_REJECTED, {
            "file": item.file, "line": item.line, "error_field": field, "message": message[:500],
        })

    async def _already_ingested(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        query = select(ingested_items.c.item_key).where(
            ingested_items.c.tenant_id == self.ctx.run.tenant_id,
            ingested_items.c.source_id == self.source.id,
            ingested_items.c.item_key.in_(keys),
        )
        async with self.db.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def _start(self, key: str, item: Item, exception: dict[str, Any]) -> None:
        ctx, source = self.ctx, self.source
        received = {
            "ingest_run_id": ctx.run.id, "source": source.id, "item_key": key, "file": item.file, "line": item.line,
        }
        try:
            run = await ctx.writer.start_run(StartRequest(
                ctx.run.tenant_id, source.workflow, exception, actor=ctx.actor, trigger_type="ingest",
                trigger_ref=f"{source.id}:{key}"[:128], ingested=(source.id, key),
                extra_events=((Topic.INGEST_ITEM_RECEIVED, received),),
            ))
        except WriteConflict:  # ingested meanwhile by someone else
            self.counts["duplicates"] += 1
            return
        self.counts["started"] += 1
        ctx.record(Topic.INGEST_ITEM_STARTED, {"item_key": key, "run_id": run.id})


async def ingest(ctx: JobContext) -> dict[str, Any]:
    """Start a run for every new item of the source; return what happened to the items."""
    params: IngestParams = ctx.params
    source = ctx.catalog.sources.get(ctx.run.tenant_id, params.source)
    if source is None:  # another tenant's source is not told apart from one that does not exist
        raise IngestFailed(f"no source {params.source!r} is declared for this tenant in config/sources.yaml")
    workflow = ctx.catalog.workflows.get(source.workflow)
    if workflow is None or workflow.kind != "exception_pipeline":
        raise IngestFailed(f"source {source.id!r} names workflow {source.workflow!r}, which cannot take exceptions")
    return await _Ingest(ctx, source).run()
