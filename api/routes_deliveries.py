"""Deliveries: what was sent where, each attempt, and sending one again."""

from __future__ import annotations

from aiohttp import web

from api.auth import PRINCIPAL
from api.keys import WEBHOOKS
from api.routing import RouteTable, read_query, respond
from api.schemas import ErrorEnvelope
from api.webhook_schemas import AttemptOut, DeliveryAccepted, DeliveryDetail, DeliveryOut, DeliveryPage, DeliveryQuery
from store.deliveries import AttemptRecord, DeliveryRecord

routes = RouteTable()


def delivery_out(delivery: DeliveryRecord) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id, endpoint_id=delivery.endpoint_id, topic=delivery.topic, event_id=delivery.event_id,
        run_id=delivery.run_id, status=delivery.status, attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at, give_up_at=delivery.give_up_at,
        last_status_code=delivery.last_status_code, last_error=delivery.last_error,
        created_at=delivery.created_at, delivered_at=delivery.delivered_at,
    )


def attempt_out(attempt: AttemptRecord) -> AttemptOut:
    return AttemptOut(n=attempt.n, started_at=attempt.started_at, duration_ms=attempt.duration_ms,
                      status_code=attempt.status_code, error=attempt.error, response_snippet=attempt.response_snippet)


@routes.route("GET", "/api/v1/deliveries", summary="Deliveries, newest first, by endpoint, status, run and time",
              query=DeliveryQuery, responses={200: DeliveryPage}, permission="webhooks:read", tag="webhooks")
async def list_deliveries(request: web.Request) -> web.Response:
    query = read_query(request, DeliveryQuery)
    found = await request.app[WEBHOOKS].list_deliveries(request[PRINCIPAL].tenant, query.limit + 1, {
        "endpoint_id": query.endpoint_id, "status": query.status, "run_id": query.run_id,
        "created_after": query.created_after, "created_before": query.created_before, "before_id": query.cursor,
    })
    page = found[: query.limit]
    cursor = page[-1].id if len(found) > query.limit else None
    return respond(DeliveryPage(items=[delivery_out(d) for d in page], next_cursor=cursor))


@routes.route("GET", "/api/v1/deliveries/{delivery_id}", summary="One delivery with every attempt",
              responses={200: DeliveryDetail}, permission="webhooks:read", tag="webhooks")
async def get_delivery(request: web.Request) -> web.Response:
    delivery, attempts = await request.app[WEBHOOKS].delivery(request[PRINCIPAL].tenant,
                                                              request.match_info["delivery_id"])
    return respond(DeliveryDetail(**delivery_out(delivery).model_dump(),
                                  attempts_made=[attempt_out(a) for a in attempts]))


@routes.route("POST", "/api/v1/deliveries/{delivery_id}/redeliver", summary="Send a delivery again, with a new "
              "retry window", responses={202: DeliveryAccepted, 409: ErrorEnvelope}, permission="webhooks:manage",
              tag="webhooks")
async def redeliver(request: web.Request) -> web.Response:
    delivery = await request.app[WEBHOOKS].redeliver(request[PRINCIPAL].tenant, request.match_info["delivery_id"])
    return respond(DeliveryAccepted(delivery_id=delivery.id, status=delivery.status), 202)
