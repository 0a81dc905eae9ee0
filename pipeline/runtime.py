"""The pipeline's background services, started and stopped together: the engine, the job runner,
the launcher over both, and the schedules. The app, the tests and the benchmarks open it the
same way, so each starts what the service runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from agents.llm_triage import TriageAdvisor
from config.catalog import Catalog
from config.settings import Settings
from delivery.address_guard import networks
from delivery.webhooks import WebhookService
from delivery.worker import DeliveryWorker, WorkerSettings
from eventbus.bus import EventBus
from pipeline.clock import Clock, IdFactory, utc_now
from pipeline.engine import PipelineEngine
from pipeline.executor import Executor
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobKind, JobRunner
from pipeline.launcher import Launcher
from pipeline.schedule_alarm import uniform_jitter
from pipeline.scheduler import ScheduleService
from store.deliveries import DeliveryRepository
from store.leader_lock import leader_lock
from store.outbox import OutboxPolicy
from store.schedules import ScheduleRepository
from store.webhook_endpoints import EndpointRepository

SCHEDULER_LOCK = "autopilot.scheduler"


@dataclass(frozen=True)
class Runtime:
    engine: PipelineEngine
    jobs: JobRunner
    launcher: Launcher
    schedules: ScheduleService
    webhooks: WebhookService


class Service(Protocol):
    def start(self) -> Awaitable[Any]: ...

    def stop(self) -> Awaitable[None]: ...


@asynccontextmanager
async def open_runtime(
    db: AsyncEngine,
    bus: EventBus,
    catalog: Catalog,
    settings: Settings,
    *,
    clock: Clock = utc_now,
    ids: IdFactory | None = None,
    job_kinds: Mapping[str, JobKind] = JOB_KINDS,
    jitter: Callable[[float], float] = uniform_jitter,
) -> AsyncIterator[Runtime]:
    """Start the engine (recovering unfinished runs), the job runner (re-running interrupted
    jobs), then the schedules (declared ones loaded, missed fires caught up; the alarm on when
    ``settings.scheduler_enabled``; on PostgreSQL only in the process that leads). On leaving,
    or when one of them fails to start, those started are stopped in reverse order."""
    async with AsyncExitStack() as stack:
        ids = ids or IdFactory()
        deliveries = DeliveryRepository(db)
        executor = Executor(db, clock, ids, lease=settings.executor_lease_seconds,
                            heartbeat=settings.executor_heartbeat_seconds)
        worker = DeliveryWorker(deliveries, executor.id, clock, WorkerSettings.from_settings(settings),
                                catalog.channels)
        wake = worker.wake if settings.delivery_enabled else _nothing
        retry_window = timedelta(seconds=settings.delivery_retry_seconds)
        engine = PipelineEngine(
            db, bus, catalog, clock=clock, ids=ids, workers=settings.engine_workers,
            max_batch=settings.commit_batch_max, triage_advisor=TriageAdvisor.from_settings(settings),
            executor=executor, outbox=OutboxPolicy(retry_window, wake, catalog.channels.subscriptions()),
        )
        await _started(stack, engine)
        jobs = JobRunner(
            engine, db, catalog, dict(job_kinds), data_dir=settings.data_dir, clock=clock, executor=engine.executor
        )
        await _started(stack, jobs)
        launcher = Launcher(engine, jobs, catalog)
        schedules = ScheduleService(
            ScheduleRepository(db), launcher, clock=clock, declared=catalog.schedules.schedules,
            alarm=settings.scheduler_enabled, jitter=jitter, lock=leader_lock(db, SCHEDULER_LOCK),
            retry_seconds=settings.scheduler_leader_retry_seconds, poll_seconds=settings.scheduler_poll_seconds,
        )
        await _started(stack, schedules)
        if settings.delivery_enabled:
            await _started(stack, worker)
        webhooks = WebhookService(
            EndpointRepository(db), deliveries, clock=clock, new_id=ids,
            allowed=networks(settings.delivery_allowed_addresses), retry_window=retry_window, wake=wake,
        )
        yield Runtime(engine, jobs, launcher, schedules, webhooks)


def _nothing() -> None:
    return None


async def _started(stack: AsyncExitStack, service: Service) -> None:
    """Start ``service`` with its stop already on ``stack``: a start that fails half-way (the
    engine's committer running, its recovery query failing) is undone too. Each ``stop`` is
    safe on a service that never started."""
    stack.push_async_callback(service.stop)
    await service.start()
