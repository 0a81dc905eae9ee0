"""The delivery worker: claims due deliveries, sends them, records what happened.

It keeps up to ``max_in_flight`` sends going; each finished try is handed to a recorder that
writes the finished ones together (attempts, statuses, endpoint failure counts) in one
transaction. It wakes when a commit wrote deliveries (``wake``, called by the group committer)
and otherwise polls every ``poll_seconds``, which is also how it sees deliveries another process
wrote and retries that came due. A claim lasts the send's timeout plus a margin; a process that
dies with claims leaves them to lapse, and a live worker (in any process) takes them over, so a
delivery is sent at least once, and more than once only after such a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import structlog

from config.channels import ChannelFile
from config.settings import Settings
from delivery.address_guard import GuardedResolver, Network, networks
from delivery.channels import send_on_channel
from delivery.http_send import Attempt, post
from delivery.messages import webhook_body
from delivery.retry_policy import RetryPolicy, retry_after_seconds
from delivery.signing import signed_headers
from store.deliveries import AttemptRecord, Claimed, DeliveryRepository, Outcome

log = structlog.get_logger(__name__)
GATHER_SECONDS = 0.01
"""How long the worker lets work gather before a claim (after a commit woke it) and before
recording finished tries: each is a write transaction beside the group commit's."""


@dataclass(frozen=True)
class WorkerSettings:
    timeout_seconds: float = 10.0
    max_in_flight: int = 64
    poll_seconds: float = 1.0
    disable_after: int = 50
    allowed: tuple[Network, ...] = ()
    public_url: str | None = None
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerSettings:
        return cls(
            timeout_seconds=settings.delivery_timeout_seconds, max_in_flight=settings.delivery_max_in_flight,
            poll_seconds=settings.delivery_poll_seconds, disable_after=settings.delivery_disable_after,
            allowed=networks(settings.delivery_allowed_addresses), public_url=settings.public_url,
            retry=RetryPolicy(first_seconds=settings.delivery_retry_first_seconds,
                              window_seconds=settings.delivery_retry_seconds),
        )


class DeliveryWorker:
    def __init__(self, repo: DeliveryRepository, worker_id: str, clock: Callable[[], datetime],
                 settings: WorkerSettings, channels: ChannelFile | None = None) -> None:
        self._repo = repo
        self._channels = channels or ChannelFile()
        self._worker_id = worker_id
        self._clock = clock
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._finished: list[Outcome] = []
        self._recorded = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def now(self) -> datetime:
        return self._clock()

    def wake(self) -> None:
        """Look for due deliveries now (a commit just wrote some)."""
        self._wakeup.set()

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._settings.allowed), limit=0)
        self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "autopilot-webhooks"})
        self._tasks = [asyncio.create_task(self._claiming(), name="delivery-claims"),
                       asyncio.create_task(self._recording(), name="delivery-records")]

    async def stop(self) -> None:
        """Stop claiming, let the sends in flight end, record them, close the session."""
        if not self._tasks:
            return
        self._tasks[0].cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.timeout_seconds + 1)
        self._tasks[1].cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush()
        if self._session is not None:
            await self._session.close()

    # --- claiming and sending ----------------------------------------------------------------

    async def _claiming(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.poll_seconds)
                await asyncio.sleep(GATHER_SECONDS)  # the next commits' deliveries join this claim
            self._wakeup.clear()
            try:
                await self._claim_and_send()
            except Exception as exc:  # the database may be away for a while; try again later
                log.warning("delivery claim failed", error=str(exc))

    async def _claim_and_send(self) -> None:
        """Claim as many as there are free slots, until fewer are due than were asked for. With
        every slot taken, wait until a quarter are free again: claiming one delivery per finished
        send made a transaction per delivery, and the claims are writes."""
        capacity = self._settings.max_in_flight
        batch = max(1, capacity // 4)
        while True:
            free = capacity - len(self._in_flight)
            if free < batch:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            now = self.now()
            lease = now + timedelta(seconds=self._settings.timeout_seconds + 30)
            claimed = await self._repo.claim_due(self._worker_id, now, lease, free)
            for item in claimed:
                task = asyncio.create_task(self._send(item))
                self._in_flight.add(task)
                task.add_done_callback(self._sent)
            if len(claimed) < free:
                return

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()

    async def _send(self, claimed: Claimed) -> None:
        try:
            started = self.now()
            try:
                attempt = await self._try(claimed, started)
            except Exception as exc:  # a fault of ours: recorded as a failed try, retried like any other
                log.exception("delivery attempt failed", delivery_id=claimed.delivery.id)
                attempt = Attempt(False, None, 0, f"internal error: {type(exc).__name__}: {exc}")
            self._finished.append(self._outcome(claimed, attempt, started))
            self._recorded.set()
        except Exception:
            log.exception("recording a delivery attempt failed", delivery_id=claimed.delivery.id)

    async def _try(self, claimed: Claimed, now: datetime) -> Attempt:
        assert self._session is not None
        endpoint, delivery, settings = claimed.endpoint, claimed.delivery, self._settings
        if endpoint is None:
            return await send_on_channel(claimed, self._channels, self._session, now=now,
                                         timeout=settings.timeout_seconds, allowed=settings.allowed,
                                         public_url=settings.public_url)
        body = webhook_body(claimed, settings.public_url, now)
        headers = signed_headers(endpoint.secrets_at(now), delivery.id, int(now.timestamp()), body)
        return await post(self._session, endpoint.url, body, headers,
                          timeout=settings.timeout_seconds, allowed=settings.allowed)

    def _outcome(self, claimed: Claimed, attempt: Attempt, started: datetime) -> Outcome:
        delivery = claimed.delivery
        n = delivery.attempts + 1
        record = AttemptRecord(delivery.id, n, delivery.tenant_id, started, attempt.duration_ms,
                               attempt.status_code, (attempt.error or "")[:500] or None, attempt.response_snippet)
        if attempt.ok:
            return Outcome(delivery, record, "delivered", None)
        now = self.now()
        wait = retry_after_seconds(attempt.retry_after, now) if attempt.status_code in (429, 503) else None
        retry_at = None if attempt.refused else self._settings.retry.next_try(now, n, delivery.give_up_at, wait)
        return Outcome(delivery, record, "pending" if retry_at else "dead", retry_at)

    # --- recording ----------------------------------------------------------------------------

    async def _recording(self) -> None:
        while True:
            await self._recorded.wait()
            await asyncio.sleep(GATHER_SECONDS)  # tries ending meanwhile share the transaction
            self._recorded.clear()
            try:
                await self._flush()
            except Exception as exc:  # the outcomes stay queued; the claims lapse if this never succeeds
                log.warning("recording deliveries failed", error=str(exc))
                await asyncio.sleep(self._settings.poll_seconds)
                self._recorded.set()

    async def _flush(self) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        try:
            disabled = await self._repo.record(self._worker_id, batch, self.now(), self._settings.disable_after)
        except Exception:
            self._finished[:0] = batch
            raise
        for endpoint in disabled:
            log.warning("webhook endpoint disabled", endpoint_id=endpoint, after=self._settings.disable_after)
