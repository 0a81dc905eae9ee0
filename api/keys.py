"""Typed application state: what the handlers are given, under ``web.AppKey``s."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from api.tokens import TokenService
from config.catalog import Catalog
from config.settings import Settings
from delivery.webhooks import WebhookService
from eventbus import EventBus
from pipeline.clock import Clock
from pipeline.engine import PipelineEngine
from pipeline.jobs import JobRunner
from pipeline.launcher import Launcher
from pipeline.scheduler import ScheduleService
from store.events import EventRepository
from store.idempotency import IdempotencyRepository
from store.runs import RunRepository

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", Catalog)
TOKENS = web.AppKey("tokens", TokenService)
CLOCK = web.AppKey[Clock]("clock")
BUS = web.AppKey[EventBus]("bus")  # the contract, not a backend: see eventbus/bus.py
DB = web.AppKey("db", AsyncEngine)
PIPELINE = web.AppKey("pipeline", PipelineEngine)
RUNS = web.AppKey("runs", RunRepository)
EVENTS = web.AppKey("events", EventRepository)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyRepository)
JOBS = web.AppKey("jobs", JobRunner)
LAUNCHER = web.AppKey("launcher", Launcher)
SCHEDULES = web.AppKey("schedules", ScheduleService)
WEBHOOKS = web.AppKey("webhooks", WebhookService)
