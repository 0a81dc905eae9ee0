"""``/metrics`` for Prometheus: HTTP latency per route, and the pipeline's counters read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.keys import BUS, PIPELINE
from api.sse import STREAMS

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
HTTP_LATENCY = web.AppKey("http_latency", Histogram)


class PipelineCollector(Collector):
    """Reads the engine's own counters when scraped, so the hot path does no metric work."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        engine = self._app.get(PIPELINE)
        if engine is None:
            return
        committer = engine.committer
        yield CounterMetricFamily("autopilot_commit_batches", "Group commits", value=committer.batches)
        yield CounterMetricFamily("autopilot_commit_writes", "Run writes committed", value=committer.writes)
        yield CounterMetricFamily("autopilot_events_committed", "Events appended to the log", value=committer.events)
        transitions = CounterMetricFamily(
            "autopilot_run_writes_by_status", "Committed run writes by the status they left", labels=["status"]
        )
        for status, count in sorted(committer.statuses.items()):
            transitions.add_metric([status], count)
        yield transitions
        yield GaugeMetricFamily("autopilot_runs_queued", "Runs waiting for a pipeline worker", value=engine.queued)
        yield CounterMetricFamily("autopilot_runs_taken_over", "Active runs this process claimed from a stopped "
                                  "or dead process (at start, or when a heartbeat expired)",
                                  value=engine.executor.taken_over)
        yield GaugeMetricFamily("autopilot_executor_heartbeat_age_seconds", "Seconds since this process last "
                                "recorded its heartbeat (another takes its runs over past the lease)",
                                value=engine.executor.heartbeat_age)
        yield GaugeMetricFamily("autopilot_bus_subscribers", "Live bus subscriptions",
                                value=self._app[BUS].subscriber_count)


class StreamCollector(Collector):
    """The live event streams (``api/sse.py``): how many are open, and how often one fell behind."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        streams = self._app.get(STREAMS)
        if streams is None:
            return
        yield GaugeMetricFamily("autopilot_sse_streams_open", "Open event streams", value=streams.open)
        yield GaugeMetricFamily("autopilot_sse_pace_seconds", "Time between a stream's writes now (longer while "
                                "the event loop is late)", value=streams.pace)
        yield CounterMetricFamily("autopilot_sse_streams", "Event streams opened", value=streams.opened)
        yield CounterMetricFamily("autopilot_sse_catchups", "Streams caught up from the log after their inbox "
                                  "overflowed", value=streams.catchups)
        yield CounterMetricFamily("autopilot_sse_overflow_ends", "Streams ended with stream.overflow",
                                  value=streams.overflow_ends)
        yield GaugeMetricFamily("autopilot_sse_write_peak_bytes", "The largest single write to a stream "
                                "(what one stream can add to its socket's buffer at once)", value=streams.peak_write)
        yield CounterMetricFamily("autopilot_sse_write_timeouts", "Streams dropped because the client took "
                                  "nothing in", value=streams.write_timeouts)


def install_metrics(app: web.Application) -> None:
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[HTTP_LATENCY] = Histogram(
        "autopilot_http_request_duration_seconds", "HTTP requests by route", ["method", "route", "status"],
        registry=registry,
    )
    registry.register(PipelineCollector(app))
    registry.register(StreamCollector(app))
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    request.app[HTTP_LATENCY].labels(request.method, name, str(response.status)).observe(
        time.perf_counter() - started
    )
    return response
