"""Bearer tokens guard /api/v1; health, readiness and the OpenAPI document are public."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.app import route_specs
from api.schemas import ErrorEnvelope

SECRET = "test-secret-" + "x" * 32


def forged(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims(**overrides):
    base = {"sub": "ann", "tenant": "acme", "roles": ["admin"], "exp": datetime.now(UTC) + timedelta(hours=1)}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Token abc",
        "Bearer ",
        "Bearer not-a-jwt",
        f"Bearer {forged(claims(), key='another-secret-' + 'y' * 32)}",
        f"Bearer {forged(claims(exp=datetime.now(UTC) - timedelta(hours=1)))}",
        f"Bearer {forged(claims(tenant=None))}",
        f"Bearer {forged(claims(roles=None))}",
        f"Bearer {forged(claims(exp=None))}",
        f"Bearer {jwt.encode(claims(), '', algorithm='none')}",
    ],
)
async def test_requests_without_a_valid_token_get_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/api/v1/runs", headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_health_and_readiness_need_no_token(client):
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200
    assert body["status"] == "ready" and body["migrations"]["current"] == body["migrations"]["head"]


async def test_openapi_documents_every_route_with_its_models(client):
    response = await client.get("/openapi.json")
    document = await response.json()
    for spec in route_specs():
        operation = document["paths"][spec.path][spec.method.lower()]
        assert operation["responses"], spec.path
        if spec.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
    schemas = document["components"]["schemas"]
    for name in ("PendingRunItem", "ResumeRunRequest", "ResumeRunResponse", "TriggerWorkflowRequest",
                 "TriggerWorkflowResponse", "ErrorEnvelope", "ExceptionIn"):
        assert name in schemas
    resume = document["paths"]["/api/v1/workflows/{workflow_id}/runs/{run_id}/resume"]["post"]
    assert "409" in resume["responses"] and "Idempotency-Key" in [p["name"] for p in resume["parameters"]]


async def test_every_protected_operation_documents_401_and_403_with_its_error_body(client):
    document = await (await client.get("/openapi.json")).json()
    protected = [spec for spec in route_specs() if spec.permission is not None]
    assert len(protected) > 10
    for spec in route_specs():
        responses = document["paths"][spec.path][spec.method.lower()]["responses"]
        if spec.permission is None:
            assert "401" not in responses and "403" not in responses, spec.path
            continue
        error_body = (spec.errors.model if spec.errors else ErrorEnvelope).__name__
        for status in ("401", "403"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{error_body}"}, (spec.method, spec.path, status)
        assert spec.permission in responses["403"]["description"]


async def test_openapi_shows_run_next_step_as_its_contract_sends_it(client):
    document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/api/v1/runs/{run_id}/run-next-step"]["post"]
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunNextStepError")
    required = set(schemas["RunNextStepError"]["required"])
    assert {"schemaVersion", "requestId", "timestamp", "error", "request_id"} <= required
    answer = schemas["RunNextStepResponse"]
    assert "stepExecuted" not in answer["required"]
    assert answer["properties"]["stepExecuted"] == {"$ref": "#/components/schemas/StepExecuted"}
    assert answer["properties"]["message"]["type"] == "string"


async def test_metrics_count_requests_per_route_and_the_pipeline_commits(api, client, ingest):
    await ingest()
    await api.settle()
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    ingested = 'method="POST",route="/api/v1/exceptions",status="202"'
    assert f"autopilot_http_request_duration_seconds_count{{{ingested}}} 1.0" in text
    assert 'autopilot_run_writes_by_status_total{status="completed"} 1.0' in text
    assert "autopilot_events_committed_total 11.0" in text
    assert "autopilot_runs_taken_over_total 0.0" in text  # nothing was left by a dead process
    assert "autopilot_executor_heartbeat_age_seconds " in text
