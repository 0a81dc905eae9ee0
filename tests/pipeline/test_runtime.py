"""The runtime starts the engine, the job runner and the schedules together, and whatever it
started is stopped again: on leaving, and when a later service fails to start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from config.catalog import Catalog
from config.settings import Settings
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.jobs import JobRunner
from pipeline.runtime import open_runtime
from pipeline.scheduler import ScheduleService
from store.schedules import ScheduleRepository

ENGINE_TASKS = ("pipeline-worker-", "group-committer")


def engine_tasks() -> list[str]:
    """The engine's background tasks still running."""
    return sorted(t.get_name() for t in asyncio.all_tasks() if not t.done() and t.get_name().startswith(ENGINE_TASKS))


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", engine_workers=2, scheduler_enabled=False)


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services stopped, in order (each still stops for real)."""
    stopped: list[str] = []
    for name, service in (("engine", PipelineEngine), ("jobs", JobRunner), ("schedules", ScheduleService)):
        def recording(real: Any, name: str = name) -> Any:
            async def stop(self: Any) -> None:
                stopped.append(name)
                await real(self)
            return stop
        monkeypatch.setattr(service, "stop", recording(service.stop))
    return stopped


async def test_the_runtime_runs_every_service_until_it_is_left(sqlite_db, catalog: Catalog, clock, tmp_path,
                                                               stops) -> None:
    async with open_runtime(sqlite_db, InProcessBus(), catalog, settings(tmp_path), clock=clock) as runtime:
        assert len(engine_tasks()) == 3  # two workers and the committer
        declared = sorted(s.id for s in catalog.schedules.schedules if s.tenant == "acme")
        assert [r.id for r in await runtime.schedules.repo.list_for("acme")] == declared
        assert stops == []
    assert stops == ["schedules", "jobs", "engine"]
    assert engine_tasks() == []


async def test_when_the_schedules_fail_to_start_the_jobs_and_the_engine_are_stopped(
    sqlite_db, catalog: Catalog, clock, tmp_path, stops, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def store_gone(self: ScheduleRepository) -> None:
        raise ConnectionError("the schedule store went away")

    monkeypatch.setattr(ScheduleRepository, "every", store_gone)  # after the declared ones are seeded
    with pytest.raises(ConnectionError):
        async with open_runtime(sqlite_db, InProcessBus(), catalog, settings(tmp_path), clock=clock):
            pytest.fail("the runtime must not open")
    assert stops == ["schedules", "jobs", "engine"]
    assert engine_tasks() == []


async def test_when_the_job_runner_fails_to_start_the_engine_is_stopped_and_no_schedule_starts(
    sqlite_db, catalog: Catalog, clock, tmp_path, stops, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuses(self: JobRunner) -> int:
        raise RuntimeError("the job runner could not start")

    monkeypatch.setattr(JobRunner, "start", refuses)
    with pytest.raises(RuntimeError, match="job runner"):
        async with open_runtime(sqlite_db, InProcessBus(), catalog, settings(tmp_path), clock=clock):
            pytest.fail("the runtime must not open")
    assert stops == ["jobs", "engine"]
    assert engine_tasks() == []
    assert await ScheduleRepository(sqlite_db).every() == []  # the declared schedules were never loaded
