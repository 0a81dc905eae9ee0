"""The ingest job: declared sources only, one run per item however often or concurrently the
source is read, bad items rejected with their line while good ones still start."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from config.sources import SourceFile
from eventbus import InProcessBus
from pipeline import ingest as ingest_module
from pipeline import ingest_sources
from pipeline.engine import PipelineEngine
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobRunner
from pipeline.start_request import StartRequest
from store.events import EventRepository
from store.records import RunRecord
from store.tables import ingested_items


def exception(source_id: str | None, amount: str = "42.50", **extra: Any) -> dict[str, Any]:
    item = {"source": "stripe", "domain": "payments", "type": "payment.failed", "code": "card_declined",
            "amount": amount, "currency": "USD", "context": {"customer_email": "maria@example.com"}, **extra}
    if source_id is not None:
        item["source_id"] = source_id
    return item


def jsonl(path: Path, *lines: Any) -> Path:
    """Write ``lines`` (dicts as JSON, strings as they are) as a JSON-lines file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


class Harness:
    def __init__(self, db: AsyncEngine, engine: PipelineEngine, runner: JobRunner) -> None:
        self.db, self.engine, self.runner = db, engine, runner

    async def ingest(self, params: dict[str, Any], tenant: str = "acme") -> RunRecord:
        request = StartRequest(tenant, "ingest", params, actor="system:test", trigger_type="manual")
        run = await self.runner.launch(request, "ingest")
        final = await asyncio.wait_for(self.runner.wait(run.id), timeout=30)
        await asyncio.wait_for(self.engine.drain(), timeout=30)
        assert final is not None
        return final

    async def events(self, run: RunRecord, topic: str) -> list[dict[str, Any]]:
        log = await EventRepository(self.db).for_run(run.tenant_id, run.id, limit=5000)
        return [e.payload for e in log if e.topic == topic]

    async def pipeline_runs(self, tenant: str = "acme") -> list[RunRecord]:
        return await self.engine.runs.list_for(tenant, workflow_id="exception_pipeline", limit=1000)

    async def ingested_count(self) -> int:
        async with self.db.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(ingested_items))).scalar_one()


@pytest.fixture
async def harness(catalog: Catalog, clock: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Harness] = []

    async def make(db: AsyncEngine, sources: list[dict[str, Any]] | None = None) -> Harness:
        cat = catalog if sources is None else dataclasses.replace(
            catalog, sources=SourceFile.model_validate({"sources": sources}))
        engine = PipelineEngine(db, InProcessBus(), cat, clock=clock, workers=4)
        await engine.start()
        jobs = JobRunner(engine, db, cat, JOB_KINDS, data_dir=tmp_path, clock=clock, executor=engine.executor)
        h = Harness(db, engine, jobs)
        started.append(h)
        return h

    yield make
    for h in started:
        await h.runner.stop()
        await h.engine.stop()


async def test_a_file_read_twice_starts_each_run_once(db: AsyncEngine, harness, tmp_path: Path) -> None:
    h = await harness(db)  # the shipped acme_inbox: <data_dir>/inbox/acme
    inbox = jsonl(tmp_path / "inbox" / "acme" / "stripe.jsonl", exception("ch_1"), exception("ch_2"), exception(None))
    first = await h.ingest({"source": "acme_inbox"})
    assert first.status == "completed", first.state.error
    summary = first.state.summary
    assert {k: summary[k] for k in ("source", "items_read", "started", "duplicates", "rejected", "keyed_by_hash",
                                    "truncated")} == {
        "source": "acme_inbox", "items_read": 3, "started": 3, "duplicates": 0, "rejected": 0, "keyed_by_hash": 1,
        "truncated": False}
    runs = {r.trigger_ref: r for r in await h.pipeline_runs()}
    hashed = next(ref for ref in runs if ref.startswith("acme_inbox:sha256:"))
    assert set(runs) == {"acme_inbox:ch_1", "acme_inbox:ch_2", hashed}
    assert all(r.trigger_type == "ingest" and r.status == "completed" for r in runs.values())
    started = await h.events(first, "ingest.item_started")
    assert {s["run_id"] for s in started} == {r.id for r in runs.values()}
    received = await h.events(runs["acme_inbox:ch_2"], "ingest.item_received")
    assert received == [{"ingest_run_id": first.id, "source": "acme_inbox", "item_key": "ch_2",
                         "file": "stripe.jsonl", "line": 2}]

    second = await h.ingest({"source": "acme_inbox"})
    assert (second.state.summary["started"], second.state.summary["duplicates"]) == (0, 3)
    assert await h.events(second, "ingest.item_started") == []
    assert len(await h.pipeline_runs()) == 3 and await h.ingested_count() == 3

    with inbox.open("a") as f:  # a new item appended to the file: only it starts
        f.write(json.dumps(exception("ch_3")) + "\n")
    third = await h.ingest({"source": "acme_inbox"})
    assert (third.state.summary["started"], third.state.summary["duplicates"]) == (1, 3)
    assert len(await h.pipeline_runs()) == 4


async def test_a_directory_is_read_in_name_order_and_max_items_truncates(sqlite_db, harness, tmp_path: Path) -> None:
    h = await harness(sqlite_db)
    inbox = tmp_path / "inbox" / "acme"
    jsonl(inbox / "b.jsonl", exception("b1"), exception("b2"))
    jsonl(inbox / "a.jsonl", exception("a1"))
    jsonl(inbox / "c.txt", exception("not-read"))
    jsonl(inbox / "sub" / "d.jsonl", exception("not-read-either"))
    run = await h.ingest({"source": "acme_inbox", "max_items": 2})
    assert run.state.summary["items_read"] == 2 and run.state.summary["truncated"] is True
    assert {r.trigger_ref for r in await h.pipeline_runs()} == {"acme_inbox:a1", "acme_inbox:b1"}

    rest = await h.ingest({"source": "acme_inbox"})
    summary = rest.state.summary
    assert (summary["items_read"], summary["started"], summary["duplicates"], summary["truncated"]) == (3, 1, 2, False)
    assert {r.trigger_ref for r in await h.pipeline_runs()} == {"acme_inbox:a1", "acme_inbox:b1", "acme_inbox:b2"}

    exactly = await h.ingest({"source": "acme_inbox", "max_items": 3})  # nothing left: not truncated
    assert exactly.state.summary["truncated"] is False


async def test_bad_lines_are_rejected_with_their_line_and_good_ones_still_start(sqlite_db, harness, tmp_path) -> None:
    h = await harness(sqlite_db)
    jsonl(
        tmp_path / "inbox" / "acme" / "mixed.jsonl",
        exception("ok_1"),
        "{not json",
        {k: v for k, v in exception("no_domain").items() if k != "domain"},
        "",
        exception("no_currency", currency=None),
        [1, 2],
        exception("ok_2"),
        exception("odd_id") | {"source_id": 7 * "x" * 40},
    )
    run = await h.ingest({"source": "acme_inbox"})
    assert run.status == "completed"
    summary = run.state.summary
    assert (summary["items_read"], summary["started"], summary["rejected"]) == (7, 2, 5)
    rejected = {(r["file"], r["line"]): (r["error_field"], r["message"])
                for r in await h.events(run, "ingest.item_rejected")}
    assert set(rejected) == {("mixed.jsonl", n) for n in (2, 3, 5, 6, 8)}
    assert rejected["mixed.jsonl", 2][0] is None and rejected["mixed.jsonl", 2][1].startswith("not JSON")
    assert rejected["mixed.jsonl", 3] == ("domain", "Field required")
    assert rejected["mixed.jsonl", 5] == (None, "Value error, currency is required when amount is given")
    assert rejected["mixed.jsonl", 6][0] is None
    assert rejected["mixed.jsonl", 8][0] == "source_id"
    assert {r.trigger_ref for r in await h.pipeline_runs()} == {"acme_inbox:ok_1", "acme_inbox:ok_2"}


async def test_a_line_too_long_is_rejected_and_reading_goes_on(sqlite_db, harness, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ingest_sources, "MAX_LINE_BYTES", 400)
    h = await harness(sqlite_db)
    big = exception("big", context={"note": "x" * 2000})
    jsonl(tmp_path / "inbox" / "acme" / "a.jsonl", big, exception("after"))
    run = await h.ingest({"source": "acme_inbox"})
    [rejected] = await h.events(run, "ingest.item_rejected")
    assert (rejected["line"], rejected["message"]) == (1, "the line is longer than 400 bytes")
    assert [r.trigger_ref for r in await h.pipeline_runs()] == ["acme_inbox:after"]


async def test_another_tenants_source_is_refused_like_an_unknown_one(sqlite_db, harness, tmp_path) -> None:
    h = await harness(sqlite_db)
    jsonl(tmp_path / "inbox" / "acme" / "a.jsonl", exception("ch_1"))
    other = await h.ingest({"source": "acme_inbox"}, tenant="globex")
    unknown = await h.ingest({"source": "no_such"}, tenant="globex")
    assert other.status == unknown.status == "failed"
    assert "acme_inbox" in other.state.error
    assert other.state.error.replace("acme_inbox", "?") == unknown.state.error.replace("no_such", "?")
    assert await h.pipeline_runs("globex") == [] and await h.pipeline_runs("acme") == []
    assert await h.ingested_count() == 0


def counts(run: RunRecord) -> tuple[int, int, int]:
    summary = run.state.summary
    assert summary is not None, run.state.error
    return summary["items_read"], summary["started"], summary["rejected"]


async def test_a_missing_inbox_folder_is_created_and_reads_nothing(db: AsyncEngine, harness, tmp_path) -> None:
    """A fresh data directory has no ``inbox/acme``: the shipped ``inbox`` schedule failed every
    minute (``inbox/acme is neither a file nor a directory``) until it paused itself. Nothing to
    read is not a failure, and the folder is made so there is somewhere to drop files."""
    h = await harness(db)  # the shipped acme_inbox: <data_dir>/inbox/acme
    inbox = tmp_path / "inbox" / "acme"
    assert not (tmp_path / "inbox").exists()
    first = await h.ingest({"source": "acme_inbox"})
    assert first.status == "completed", first.state.error
    assert counts(first) == (0, 0, 0) and first.state.summary["truncated"] is False
    assert inbox.is_dir() and list(inbox.iterdir()) == []

    empty = await h.ingest({"source": "acme_inbox"})  # the folder is there now, still empty
    assert empty.status == "completed", empty.state.error
    assert counts(empty) == (0, 0, 0)

    jsonl(inbox / "a.jsonl", exception("ch_1"))  # what is dropped in afterwards is read
    dropped = await h.ingest({"source": "acme_inbox"})
    assert counts(dropped) == (1, 1, 0)
    assert [r.trigger_ref for r in await h.pipeline_runs()] == ["acme_inbox:ch_1"]


async def test_a_missing_file_reads_nothing_and_is_not_made_a_folder(sqlite_db, harness, tmp_path) -> None:
    h = await harness(sqlite_db, [{"id": "events", "tenant": "acme", "kind": "jsonl", "path": "exports/events.jsonl"}])
    run = await h.ingest({"source": "events"})
    assert run.status == "completed", run.state.error
    assert counts(run) == (0, 0, 0)
    assert not (tmp_path / "exports" / "events.jsonl").exists()  # its writer creates it, as a file


async def test_a_source_that_cannot_be_read_still_fails_the_job_saying_why(sqlite_db, harness, tmp_path,
                                                                          monkeypatch) -> None:
    h = await harness(sqlite_db, [
        {"id": "dangling", "tenant": "acme", "kind": "jsonl", "path": "dangling"},
        {"id": "under_a_file", "tenant": "acme", "kind": "jsonl", "path": "taken/inbox"},
        {"id": "locked", "tenant": "acme", "kind": "jsonl", "path": "locked"},
    ])
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "taken").write_text("a file where the folder's parent should be\n")
    locked = jsonl(tmp_path / "locked" / "a.jsonl", exception("ch_1"))
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:  # chmod 000 does not stop root
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    expected = {
        "dangling": "source dangling: dangling is neither a file nor a directory",
        "under_a_file": "source under_a_file: cannot create the folder taken/inbox: ",
        "locked": "source locked: cannot open a.jsonl: Permission denied",
    }
    for source, error in expected.items():
        run = await h.ingest({"source": source})
        assert run.status == "failed", source
        assert error in run.state.error
    assert await h.pipeline_runs() == []


async def test_concurrent_ingests_of_one_file_start_each_run_once(db: AsyncEngine, harness, tmp_path) -> None:
    h = await harness(db)
    jsonl(tmp_path / "inbox" / "acme" / "a.jsonl", *(exception(f"ch_{i}") for i in range(60)))
    request = StartRequest("acme", "ingest", {"source": "acme_inbox"}, actor="system:test", trigger_type="manual")
    launched = [await h.runner.launch(request, "ingest") for _ in range(2)]
    finals = await asyncio.wait_for(asyncio.gather(*(h.runner.wait(r.id) for r in launched)), timeout=60)
    await h.engine.drain()
    assert [f.status for f in finals] == ["completed", "completed"]
    assert sum(f.state.summary["started"] for f in finals) == 60
    assert sum(f.state.summary["duplicates"] for f in finals) == 60
    assert len(await h.pipeline_runs()) == 60 and await h.ingested_count() == 60


async def test_an_item_ingested_meanwhile_is_a_duplicate_not_an_error(db: AsyncEngine, harness, tmp_path,
                                                                      monkeypatch) -> None:
    """The lookup said new, but another ingest won the write: the conflict counts as a duplicate."""
    h = await harness(db)
    jsonl(tmp_path / "inbox" / "acme" / "a.jsonl", exception("ch_1"), exception("ch_1"), exception("ch_2"))
    first = await h.ingest({"source": "acme_inbox"})
    assert (first.state.summary["started"], first.state.summary["duplicates"]) == (2, 1)  # repeated in file

    async def sees_nothing(self: Any, keys: list[str]) -> list[str]:
        return []

    monkeypatch.setattr(ingest_module._Ingest, "_already_ingested", sees_nothing)
    second = await h.ingest({"source": "acme_inbox"})
    assert second.status == "completed", second.state.error
    assert (second.state.summary["started"], second.state.summary["duplicates"]) == (0, 3)
    assert len(await h.pipeline_runs()) == 2 and await h.ingested_count() == 2


async def test_a_custom_id_field_may_be_a_path_into_the_item(sqlite_db, harness, tmp_path) -> None:
    h = await harness(sqlite_db, [{"id": "events", "tenant": "acme", "kind": "jsonl", "path": "events.jsonl",
                                    "id_field": "context.event_id"}])
    jsonl(tmp_path / "events.jsonl", exception(None, context={"event_id": "ev_9"}), exception(None),
          exception(None, context={"event_id": {"not": "a key"}}))
    run = await h.ingest({"source": "events"})
    assert (run.state.summary["keyed_by_hash"], run.state.summary["rejected"]) == (1, 1)
    [rejected] = await h.events(run, "ingest.item_rejected")
    assert (rejected["line"], rejected["error_field"]) == (3, "context.event_id")
    refs = sorted(r.trigger_ref for r in await h.pipeline_runs())
    assert refs[0] == "events:ev_9" and refs[1].startswith("events:sha256:")


def answer(make: Callable[[], web.Response]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return make()

    return handler


@pytest.fixture
async def feed(aiohttp_server) -> Any:
    """A local HTTP source: lists, a wrapped list, refusals, a redirect and a slow answer."""
    items = [exception("h_1"), exception("h_2"), {"source": "stripe"}]

    async def plain(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.json_response({"error": "who are you"}, status=401)
        return web.json_response(items)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/items")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/items", plain)
    app.router.add_get("/wrapped", answer(lambda: web.json_response({"data": items[:1], "next": None})))
    app.router.add_get("/broken", answer(lambda: web.Response(status=503, text="down")))
    app.router.add_get("/text", answer(lambda: web.Response(text="<html>hello</html>")))
    app.router.add_get("/moved", moved)
    app.router.add_get("/slow", slow)
    return await aiohttp_server(app)


def http_source(server: Any, name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"id": name, "tenant": "acme", "kind": "http", "url": str(server.make_url(path)), **extra}


async def test_an_http_source_starts_its_items_once(sqlite_db, harness, feed) -> None:
    auth = {"headers": {"Authorization": "Bearer s3cret"}}
    h = await harness(sqlite_db, [
        http_source(feed, "feed", "/items", **auth), http_source(feed, "wrapped", "/wrapped", items_field="data"),
        http_source(feed, "anonymous", "/items"),
    ])
    run = await h.ingest({"source": "feed"})
    assert run.status == "completed", run.state.error
    summary = run.state.summary
    assert (summary["items_read"], summary["started"], summary["rejected"]) == (3, 2, 1)
    [rejected] = await h.events(run, "ingest.item_rejected")
    assert (rejected["file"], rejected["line"], rejected["error_field"]) == (None, 3, "domain")
    again = await h.ingest({"source": "feed"})
    assert (again.state.summary["started"], again.state.summary["duplicates"]) == (0, 2)
    wrapped = await h.ingest({"source": "wrapped"})
    assert (wrapped.state.summary["items_read"], wrapped.state.summary["started"]) == (1, 1)
    assert sorted(r.trigger_ref for r in await h.pipeline_runs()) == ["feed:h_1", "feed:h_2", "wrapped:h_1"]
    refused = await h.ingest({"source": "anonymous"})
    assert refused.status == "failed" and "answered 401" in refused.state.error


@pytest.mark.parametrize(("path", "extra", "expected"), [
    ("/broken", {}, "answered 503 Service Unavailable"),
    ("/text", {}, "the answer is not JSON"),
    ("/items", {"items_field": "data", "headers": {"Authorization": "Bearer s3cret"}}, "no list at 'data'"),
    ("/wrapped", {}, "the answer is not a list"),
    ("/moved", {}, "answered 302"),
    ("/slow", {"timeout_seconds": 0.2}, "no answer within 0.2s"),
])
async def test_an_http_source_that_cannot_be_read_fails_the_job(sqlite_db, harness, feed, path, extra,
                                                                expected) -> None:
    h = await harness(sqlite_db, [http_source(feed, "feed", path, **extra)])
    run = await h.ingest({"source": "feed"})
    assert run.status == "failed"
    assert f"source feed: GET {feed.make_url(path)}" in run.state.error and expected in run.state.error
    assert await h.pipeline_runs() == []


async def test_an_item_the_store_cannot_keep_is_rejected_and_the_others_start(db: AsyncEngine, harness,
                                                                               tmp_path: Path) -> None:
    """A NUL character (PostgreSQL's JSON refuses it) made the item's write fail, which failed the
    whole job, and every later read of the source failed at the same item."""
    h = await harness(db)
    jsonl(tmp_path / "inbox" / "acme" / "nul.jsonl", exception("ch_1"),
          exception("ch_2", context={"note": "a\u0000b"}), exception("ch_3", context={"k\u0000": 1}),
          exception("ch_4"))
    job = await h.ingest({"source": "acme_inbox"})
    assert job.status == "completed", job.state.error
    assert (job.state.summary["started"], job.state.summary["rejected"]) == (2, 2)
    rejected = await h.events(job, "ingest.item_rejected")
    assert [(r["line"], r["error_field"]) for r in rejected] == [(2, "context.note"), (3, "context")]
    assert {r.trigger_ref for r in await h.pipeline_runs()} == {"acme_inbox:ch_1", "acme_inbox:ch_4"}
