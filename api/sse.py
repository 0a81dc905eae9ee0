"""Server-sent events: one client's stream of its tenant's events, from the log, then live.

Why it is shaped like this: the bus subscription is opened *before* the log is read, so an
event committed during the replay is in the page read, in the inbox, or in both; event ids are
allocated in commit order and the bus hands events over in that order, so sending only ids
above the last one sent leaves no gap and no duplicate. A slow client fills only its own
bounded inbox, which then leaves the bus (the publisher never waits for a socket); the stream
subscribes again and catches up from the log, or, when that is too far behind, says so with a
final ``stream.overflow`` event and ends."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import cast

import orjson
import structlog
from aiohttp import web

from api.views import event_out
from config.settings import Settings
from eventbus import Batch, EventBus, Subscription, SubscriptionFilter
from store.events import EventRepository
from store.records import EventRecord

log = structlog.get_logger(__name__)

EVENT_STREAM = "text/event-stream"
HEARTBEAT = b": heartbeat\n\n"
CATCHING_UP = b": overflow: catching up from the log\n\n"
OVERFLOW_TOPIC = "stream.overflow"
PAGE = 500
IDLE_CHECK_SECONDS = 1.0
"""How often an idle stream is woken to look whether its client is still there (aiohttp does not
cancel the handler of a client that left unless the server runs with ``handler_cancellation``,
and an idle stream writes nothing that could fail) or a heartbeat is due."""
MAX_PACE_SECONDS = 0.25
"""The longest the pacer stretches its ticks to while the loop is late."""
WRITE_SLICE = 1 << 16
"""The most a stream writes at once. A write this large, or one onto a non-empty send buffer,
may wait for the client: only those pay for a timeout."""


def frame(event: EventRecord) -> bytes:
    """One message: ``id`` the global id, ``event`` the topic, ``data`` the event exactly as
    ``GET /api/v1/runs/{run_id}/events`` shows it (one line of JSON)."""
    model = event_out(event)
    data = model.__pydantic_serializer__.to_json(model)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.topic.encode(), data)


class Frames:
    """Each event is formatted once for every stream that sends it (the newest few thousand kept)."""

    def __init__(self, kept: int = 8192) -> None:
        self._frames: dict[int, bytes] = {}
        self._kept = kept

    def __call__(self, event: EventRecord) -> bytes:
        cached = self._frames.get(event.id)
        if cached is None:
            cached = self._frames[event.id] = frame(event)
            if len(self._frames) > self._kept:
                del self._frames[next(iter(self._frames))]
        return cached


class Streams:
    """What the application's streams share: settings, formatted frames, the limit on streams
    reading the log at once, the open streams (ended on shutdown) and counts for ``/metrics``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.frames = Frames()
        self.log_readers = asyncio.Semaphore(settings.sse_log_readers)
        self.active: set[EventStream] = set()
        self.closing = False
        self.opened = self.catchups = self.overflow_ends = self.write_timeouts = 0
        self.peak_write = 0
        """The largest single write (what one stream can add to its socket's buffer at once)."""
        self._pacer: asyncio.Task[None] | None = None
        self.pace = settings.sse_flush_seconds
        """Seconds between the pacer's ticks now: ``sse_flush_seconds``, longer while the loop is late."""

    @property
    def open(self) -> int:
        return len(self.active)

    def add(self, stream: EventStream) -> None:
        self.active.add(stream)
        self.opened += 1
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.create_task(self._pace(), name="sse-pacer")

    async def _pace(self) -> None:
        """One timer for every stream, instead of one per stream and write: each tick lets the
        streams that wrote since the last one write again, and now and then wakes idle streams to
        send a heartbeat or notice that their client left. A tick that comes late means the loop
        has more work than time: the ticks then stretch (up to ``MAX_PACE_SECONDS``), so streams
        write less often in bigger chunks and the pipeline keeps its share; they shrink back once
        the loop keeps up."""
        loop = asyncio.get_running_loop()
        check_every = min(IDLE_CHECK_SECONDS, self.settings.sse_heartbeat_seconds)
        flush = self.settings.sse_flush_seconds
        base = self.pace = min(flush or check_every, check_every)
        next_check = loop.time() + check_every
        while self.active and not self.closing:
            asked, started = self.pace, loop.time()
            await asyncio.sleep(asked)
            now = loop.time()
            late = now - started - asked
            if flush and late > asked:
                self.pace = min(asked * 2, max(MAX_PACE_SECONDS, base))
            elif flush and late < asked / 2:
                self.pace = max(base, asked / 2)
            check = now >= next_check
            if check:
                next_check = now + check_every
            for stream in list(self.active):
                stream.tick(now, check)

    async def shutdown(self, _app: web.Application | None = None) -> None:
        """``on_shutdown``: end every stream, so stopping the server does not wait for them."""
        self.closing = True
        for stream in list(self.active):
            stream.stop(abort_if_blocked=True)


STREAMS = web.AppKey("streams", Streams)


class _Gone(Exception):
    """The client left: end quietly."""


class EventStream:
    def __init__(
        self, request: web.Request, response: web.StreamResponse, bus: EventBus, events: EventRepository,
        streams: Streams, wanted: SubscriptionFilter,
    ) -> None:
        """``wanted`` is what the stream sends, from the bus and from the log alike; its tenant comes
        from the caller's token, never the query."""
        self._request, self._response, self._bus, self._log = request, response, bus, events
        self._streams, self._settings, self._filter = streams, streams.settings, wanted
        self._loop = asyncio.get_running_loop()
        self._sub: Subscription | None = None
        self._last_write = self._loop.time()
        self._resting = False
        """Wrote since the pacer's last tick: events queue without waking it until the next."""
        self.cursor: int | None = None
        """The highest id sent or passed over; the inbox's copies of anything up to it are dropped."""

    async def run(self, last_event_id: int | None) -> None:
        """Replay after ``last_event_id`` (when given), then live events, until the client leaves."""
        self._streams.add(self)
        self.cursor = last_event_id
        self._subscribe()
        self._limit_send_buffer()
        try:
            await self._write(b"retry: %d\n\n" % self._settings.sse_retry_ms)
            if self.cursor is not None:
                await self._read_log(bound=None)
            await self._live()
        except (_Gone, ConnectionError):
            pass
        except TimeoutError:  # the client took nothing in for sse_write_timeout_seconds
            self._streams.write_timeouts += 1
            if self._request.transport is not None:
                self._request.transport.abort()
        except Exception:  # the response is under way: no error answer is possible any more
            log.exception("event stream failed", tenant=self._filter.tenant_id)
        finally:
            self.stop()
            self._streams.active.discard(self)

    def _limit_send_buffer(self) -> None:
        size = self._settings.sse_send_buffer_bytes
        sock = self._request.transport.get_extra_info("socket") if self._request.transport else None
        if size and sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def stop(self, *, abort_if_blocked: bool = False) -> None:
        """End the stream; with ``abort_if_blocked``, drop the connection of a client that is not
        reading, which would otherwise hold a shutdown until its write times out."""
        if self._sub is not None:
            self._sub.close()
        transport = self._request.transport
        if abort_if_blocked and transport is not None and transport.get_write_buffer_size():
            transport.abort()

    def _subscribe(self) -> None:
        self._resting = False
        self._sub = self._bus.subscribe(
            self._filter.patterns, tenant_id=self._filter.tenant_id, run_id=self._filter.run_id,
            maxsize=self._settings.sse_queue_max,
        )

    def tick(self, now: float, check: bool) -> None:
        """The pacer's tick: a resting stream may write again; an idle one is woken to look after
        its client (``check``) when it is time."""
        if self._sub is None:
            return
        if self._resting:
            self._resting = False
            self._sub.release()
        elif check and (self._gone() or now - self._last_write >= self._settings.sse_heartbeat_seconds):
            self._sub.poke()

    async def _live(self) -> None:
        heartbeat, flush = self._settings.sse_heartbeat_seconds, self._settings.sse_flush_seconds
        while True:
            sub = self._sub
            assert sub is not None
            batches = await sub.next_batches()
            if batches is None:  # closed on shutdown, or overflowed and dropped by the bus
                if self._streams.closing or not sub.overflowed or not await self._catch_up():
                    return
            elif batches:
                await self._send_live(batches)
                if flush:  # what arrives until the next tick goes out in one write
                    self._resting = True
                    sub.hold()
            elif self._gone():
                return
            elif self._loop.time() - self._last_write >= heartbeat:
                await self._write(HEARTBEAT)

    async def _catch_up(self) -> bool:
        """After an overflow: subscribe again first, then send what the log holds after the cursor.
        False (after the final ``stream.overflow`` event) if that is more than the bound."""
        self._streams.catchups += 1
        self._subscribe()
        if self.cursor is not None:
            await self._write(CATCHING_UP)
            if await self._read_log(bound=self._settings.sse_catchup_max):
                return True
        self._streams.overflow_ends += 1
        data = orjson.dumps({
            "reason": "the client fell too far behind; reconnect with Last-Event-ID to resume from the log",
            "last_event_id": self.cursor,
        })
        await self._write(b"event: %s\ndata: %s\n\n" % (OVERFLOW_TOPIC.encode(), data))
        return False

    async def _read_log(self, bound: int | None) -> bool:
        """Send the log after the cursor, page by page, until a page comes back short: everything
        committed after that read is in the inbox. False if ``bound`` events were read and the
        log still had more."""
        read = 0
        while not self._streams.closing:
            after, limit = self.cursor or 0, PAGE if bound is None else min(PAGE, bound - read)
            async with self._streams.log_readers:
                page = await self._log.after(self._filter.tenant_id, after, run_id=self._filter.run_id, limit=limit)
            if page:
                await self._send(self._filter.select(page))
                self.cursor = max(after, page[-1].id)
            read += len(page)
            if len(page) < limit:
                return True
            if bound is not None and read >= bound:
                return False
        return True

    async def _send_live(self, batches: list[Batch]) -> None:
        """Write the batches' events above the cursor. A batch is shared by every stream with
        this filter, so its bytes are joined once, for all of them (``memo``)."""
        cursor, frames, parts, last = self.cursor, self._streams.frames, [], None
        for batch in batches:
            events = cast(Sequence[EventRecord], batch.events)  # what the store publishes; the bus knows Envelopes
            if cursor is not None and events[-1].id <= cursor:
                continue  # sent already, by the replay
            if cursor is None or events[0].id > cursor:
                if batch.memo is None:
                    batch.memo = b"".join([frames(e) for e in events])
                parts.append(batch.memo)
            else:
                parts.append(b"".join([frames(e) for e in events if e.id > cursor]))
            last = events[-1].id
        if parts:
            await self._write_all(parts)
            self.cursor = last

    async def _send(self, events: Sequence[EventRecord]) -> None:
        """Write the events above the cursor (a page of the log, in id order)."""
        cursor = self.cursor
        fresh = [e for e in events if cursor is None or e.id > cursor]
        if fresh:
            frames = self._streams.frames
            await self._write_all([frames(e) for e in fresh])
            self.cursor = fresh[-1].id

    def _gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

    async def _write_all(self, parts: list[bytes]) -> None:
        """Write ``parts`` in order, at most ``WRITE_SLICE`` bytes at a time: a stream's backlog is
        never copied whole into its socket's buffer (a thousand such copies were gigabytes)."""
        group: list[bytes] = []
        size = 0
        for part in parts:
            if group and size + len(part) > WRITE_SLICE:
                await self._write(b"".join(group))
                group, size = [], 0
            if len(part) > WRITE_SLICE:
                view = memoryview(part)
                for start in range(0, len(view), WRITE_SLICE):
                    await self._write(view[start:start + WRITE_SLICE])
            else:
                group.append(part)
                size += len(part)
        if group:
            await self._write(group[0] if len(group) == 1 else b"".join(group))

    async def _write(self, data: bytes | memoryview) -> None:
        transport = self._request.transport
        if transport is None or transport.is_closing():
            raise _Gone
        if transport.get_write_buffer_size() or len(data) >= WRITE_SLICE:
            async with asyncio.timeout(self._settings.sse_write_timeout_seconds):
                await self._response.write(data)
        else:
            await self._response.write(data)
        self._last_write = self._loop.time()
        if len(data) > self._streams.peak_write:
            self._streams.peak_write = len(data)


async def serve(
    request: web.Request, bus: EventBus, events: EventRepository, wanted: SubscriptionFilter,
    last_event_id: int | None,
) -> web.StreamResponse:
    """Answer ``request`` with the stream; returns when the client leaves or the stream ends."""
    response = web.StreamResponse(headers={
        "Content-Type": f"{EVENT_STREAM}; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    await EventStream(request, response, bus, events, request.app[STREAMS], wanted).run(last_event_id)
    return response
