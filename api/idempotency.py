"""``Idempotency-Key``: a retried request gets the first answer (status and body) and starts
nothing new; the same key with a different request answers 422. Only successful answers are
kept, in the same transaction as the effect they describe."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from api.keys import IDEMPOTENCY
from domain.errors import IdempotencyKeyReused, ValidationFailed
from pipeline.start_request import IdempotencySpec
from store.records import RunRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


class IdempotentRequest:
    def __init__(self, request: web.Request, tenant_id: str, canonical_body: bytes) -> None:
        self.request = request
        self.tenant_id = tenant_id
        self.key = request.headers.get(HEADER)
        if self.key is not None and not (1 <= len(self.key) <= 255):
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 255 characters",
                [{"field": f"header.{HEADER}", "message": "1 to 255 characters"}],
            )
        digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + canonical_body)
        self.fingerprint = digest.hexdigest()

    async def replay(self) -> web.Response | None:
        """The first answer, if this key was already used for the same request."""
        if self.key is None:
            return None
        stored = await self.request.app[IDEMPOTENCY].get(self.tenant_id, self.key)
        if stored is None:
            return None
        if stored.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request",
                {"key": self.key},
            )
        return web.Response(
            status=stored.status_code,
            body=stored.response,
            content_type="application/json",
            headers={REPLAYED: "true"},
        )

    async def answer_once(
        self, effect: Callable[[], Awaitable[web.Response]], lost_race: tuple[type[Exception], ...]
    ) -> web.Response:
        """Replay the first answer if there is one; else run ``effect``. If ``effect`` fails with
        one of ``lost_race`` (a concurrent request with this key committed first), replay that."""
        if (replay := await self.replay()) is not None:
            return replay
        try:
            return await effect()
        except lost_race:
            if (replay := await self.replay()) is not None:
                return replay
            raise

    def spec(self, status: int, answer: Callable[[RunRecord], BaseModel]) -> IdempotencySpec | None:
        """What the engine needs to store this request's answer (``answer(run)`` with ``status``)
        in the same write as its effect; ``None`` without a key."""
        if self.key is None:
            return None
        return IdempotencySpec(self.tenant_id, self.key, self.fingerprint, status,
                               lambda run: answer(run).model_dump_json())
