"""Webhook endpoints: create (the secret shown once), list, read, change, delete, rotate the
secret, send a test message, send every dead delivery again."""

from __future__ import annotations

from aiohttp import web

from api.auth import PRINCIPAL
from api.keys import WEBHOOKS
from api.routing import RouteTable, read_body, respond
from api.schemas import ErrorEnvelope
from api.webhook_schemas import (
    DeliveryAccepted,
    Redelivered,
    RotateSecret,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from delivery.webhooks import WebhookService
from store.webhook_endpoints import EndpointRecord

routes = RouteTable()
ONE = "/api/v1/webhooks/{endpoint_id}"


def webhook_out(endpoint: EndpointRecord) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id, url=endpoint.url, topics=endpoint.topics, description=endpoint.description,
        enabled=endpoint.enabled, disabled_reason=endpoint.disabled_reason,
        consecutive_failures=endpoint.consecutive_failures, previous_secret_until=endpoint.previous_secret_until,
        version=endpoint.version, created_at=endpoint.created_at, created_by=endpoint.created_by,
        updated_at=endpoint.updated_at,
    )


def _ids(request: web.Request) -> tuple[WebhookService, str, str]:
    return request.app[WEBHOOKS], request[PRINCIPAL].tenant, request.match_info.get("endpoint_id", "")


@routes.route("GET", "/api/v1/webhooks", summary="The tenant's webhook endpoints",
              responses={200: WebhookList}, permission="webhooks:read", tag="webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    service, tenant, _ = _ids(request)
    return respond(WebhookList(items=[webhook_out(e) for e in await service.endpoints.list_for(tenant)]))


@routes.route("POST", "/api/v1/webhooks", summary="Subscribe an endpoint to topics; its secret is shown once",
              body=WebhookCreate, responses={201: WebhookCreated}, permission="webhooks:manage", tag="webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    service, tenant, _ = _ids(request)
    body, _ = await read_body(request, WebhookCreate)
    endpoint = await service.create(tenant, request[PRINCIPAL].actor, url=str(body.url), topics=body.topics,
                                    description=body.description, enabled=body.enabled)
    created = WebhookCreated(**webhook_out(endpoint).model_dump(), secret=endpoint.secret)
    return respond(created, 201, headers={"Location": f"/api/v1/webhooks/{endpoint.id}"})


@routes.route("GET", ONE, summary="One webhook endpoint (never its secret)", responses={200: WebhookOut},
              permission="webhooks:read", tag="webhooks")
async def get_webhook(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    return respond(webhook_out(await service.get(tenant, endpoint_id)))


@routes.route("PATCH", ONE, summary="Change an endpoint's address, topics, description, or enable it",
              body=WebhookPatch, responses={200: WebhookOut, 409: ErrorEnvelope}, permission="webhooks:manage",
              tag="webhooks")
async def change_webhook(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    body, _ = await read_body(request, WebhookPatch)
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        changes["url"] = str(body.url)
    return respond(webhook_out(await service.change(tenant, endpoint_id, changes)))


@routes.route("DELETE", ONE, summary="Remove an endpoint; its deliveries still waiting are cancelled",
              responses={204: None}, permission="webhooks:manage", tag="webhooks")
async def delete_webhook(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    await service.delete(tenant, endpoint_id)
    return web.Response(status=204)


@routes.route("POST", f"{ONE}/rotate-secret", summary="A new signing secret, shown once; the old one keeps "
              "signing beside it for the overlap", body=RotateSecret, responses={200: SecretRotated},
              permission="webhooks:manage", tag="webhooks")
async def rotate_secret(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    body, _ = await read_body(request, RotateSecret)
    endpoint = await service.rotate(tenant, endpoint_id, body.overlap_seconds)
    return respond(SecretRotated(secret=endpoint.secret, previous_secret_until=endpoint.previous_secret_until))


@routes.route("POST", f"{ONE}/test", summary="Send the endpoint a signed test message (topic webhook.test)",
              responses={202: DeliveryAccepted}, permission="webhooks:manage", tag="webhooks")
async def test_webhook(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    delivery = await service.send_test(tenant, endpoint_id, request[PRINCIPAL].actor)
    return respond(DeliveryAccepted(delivery_id=delivery.id, status=delivery.status), 202,
                   headers={"Location": f"/api/v1/deliveries/{delivery.id}"})


@routes.route("POST", f"{ONE}/redeliver-dead", summary="Send every dead-lettered delivery of the endpoint again",
              responses={202: Redelivered}, permission="webhooks:manage", tag="webhooks")
async def redeliver_dead(request: web.Request) -> web.Response:
    service, tenant, endpoint_id = _ids(request)
    return respond(Redelivered(redelivered=await service.redeliver_dead(tenant, endpoint_id)), 202)
