"""LLM-assisted triage through the engine: the model classifies what the rules cannot (source and
confidence recorded), is not asked when the rules are sure, and any failure of it leaves the
rules' result with the error recorded. Off unless enabled. The model is a scripted
OpenAI-compatible server on 127.0.0.1, so the advisor's own HTTP transport (aiohttp under the
SDK) is the one exercised."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.llm_triage import TriageAdvisor
from config.catalog import Catalog
from config.settings import Settings
from domain.state_codec import as_payload
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.start_request import StartRequest
from store.events import EventRepository

LLM = "http://llm.test/v1"
"""Where the model is said to be when no test server stands behind it (the advisor is never built)."""


def settings(tmp_path: Path, base_url: str = LLM, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, llm_base_url=base_url, llm_model="triage-model", llm_max_retries=0,
                    llm_timeout_seconds=0.5, triage_llm_enabled=True, **overrides)


def classification(**fields: Any) -> web.Response:
    answer = {"domain": "warehouse", "type": "robot.jammed", "severity": "high", "confidence": 0.82,
              "rationale": "a jammed picking robot blocks outbound orders", **fields}
    return web.json_response({
        "id": "c", "object": "chat.completion", "created": 0, "model": "triage-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(answer)}}],
    })


def slow(seconds: float) -> Callable[[], Any]:
    async def answer() -> web.Response:
        await asyncio.sleep(seconds)
        return classification()
    return answer


class ScriptedModel:
    """An OpenAI-compatible chat endpoint answering from a script; keeps each request's JSON body."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        answer = self.script.pop(0)
        answer = answer() if callable(answer) else answer
        return await answer if asyncio.iscoroutine(answer) else answer


@pytest.fixture
async def model(aiohttp_server: Any) -> ScriptedModel:
    scripted = ScriptedModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", scripted.handle)
    server = await aiohttp_server(app)
    scripted.base_url = str(server.make_url("/v1"))
    return scripted


def unusual(clock: Any, **overrides: Any) -> dict[str, Any]:
    return {"source": "wms", "source_id": "r-7", "domain": "warehouse", "type": "robot.jammed", "code": "E42",
            "sla_deadline": (clock.now + timedelta(hours=6)).isoformat(), "context": {}, **overrides}


@pytest.fixture
async def engine_with(sqlite_db: AsyncEngine, catalog: Catalog, clock: Any) -> AsyncIterator[Callable[..., Any]]:
    started: list[PipelineEngine] = []

    async def make(advisor: TriageAdvisor | None) -> PipelineEngine:
        started.append(PipelineEngine(sqlite_db, InProcessBus(), catalog, clock=clock, workers=2,
                                      triage_advisor=advisor))
        await started[-1].start()
        return started[-1]

    yield make
    for engine in started:
        await engine.stop()


async def triage_event(engine: PipelineEngine, run_id: str) -> dict[str, Any]:
    log = await EventRepository(engine.db).for_run("acme", run_id)
    return next(e.payload for e in log if e.topic == "triage.completed")


async def test_the_model_classifies_what_the_rules_cannot(engine_with, model, tmp_path, clock):
    model.script = [classification()]
    engine = await engine_with(TriageAdvisor.from_settings(settings(tmp_path, model.base_url)))
    run = await engine.start_run(StartRequest("acme", "exception_pipeline", unusual(clock), actor="user:ann",
                                              trigger_type="api"))
    [sent] = model.requests
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["model"] == "triage-model" and sent["response_format"]["type"] == "json_schema"
    assert "robot.jammed" in sent["messages"][1]["content"]
    triage = run.state.triage
    assert triage.source == "llm" and triage.llm_confidence == 0.82 and triage.confidence == 0.82
    assert triage.rules_confidence == 0.3 and triage.severity == "high" and triage.llm_error is None
    assert triage.reasons[-1] == "model: a jammed picking robot blocks outbound orders"
    assert await triage_event(engine, run.id) == as_payload(triage)


async def test_confident_rules_do_not_ask_the_model(engine_with, model, tmp_path, clock):
    card = unusual(clock, domain="payments", type="payment.failed", code="card_declined", amount="10.00",
                   currency="USD")
    model.script = [classification()]
    engine = await engine_with(TriageAdvisor.from_settings(settings(tmp_path, model.base_url)))
    run = await engine.start_run(StartRequest("acme", "exception_pipeline", card, actor="user:ann",
                                              trigger_type="api"))
    assert model.requests == []
    assert run.state.triage.source == "rules" and run.state.triage.llm_confidence is None


@pytest.mark.parametrize(("failure", "error"), [
    (lambda: web.json_response({"error": {"message": "down"}}, status=500), "InternalServerError"),
    (slow(3), "APITimeoutError"),
    (lambda: classification(severity="apocalyptic"), "ValidationError"),
    (lambda: web.json_response({"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": None,
                                                           "refusal": "I cannot help with that"}}]}),
     "I cannot help with that"),
])
async def test_any_model_failure_falls_back_to_the_rules(engine_with, model, tmp_path, clock, failure, error):
    model.script = [failure]
    engine = await engine_with(TriageAdvisor.from_settings(settings(tmp_path, model.base_url)))
    run = await engine.start_run(StartRequest("acme", "exception_pipeline", unusual(clock), actor="user:ann",
                                              trigger_type="api"))
    triage = run.state.triage
    assert len(model.requests) == 1 and error in triage.llm_error
    assert triage.source == "rules" and triage.confidence == 0.3 and triage.llm_error
    assert run.status != "failed"
    assert (await triage_event(engine, run.id))["llm_error"] == triage.llm_error


def test_it_is_off_unless_enabled_and_configured(tmp_path):
    assert TriageAdvisor.from_settings(Settings(data_dir=tmp_path, llm_base_url=LLM, llm_model="m")) is None
    assert TriageAdvisor.from_settings(Settings(data_dir=tmp_path, triage_llm_enabled=True)) is None
    assert TriageAdvisor.from_settings(settings(tmp_path)) is not None
