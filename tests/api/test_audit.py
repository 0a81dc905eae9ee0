"""The audit trail replays who approved, rejected and completed what, with filters and a cursor."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with


async def test_the_audit_replays_a_runs_approval_and_step_completion(tmp_path):
    config = config_with(tmp_path / "config", {"test-review.yaml": REVIEW_PLAYBOOK}, [ACCOUNT_FLAGGED_RULE])
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="a" * 40))
    async with TestClient(TestServer(app)) as client:
        def as_user(subject: str, *roles: str, tenant: str = "globex") -> Api:
            return Api(client, app, app[TOKENS].mint(tenant=tenant, subject=subject, roles=list(roles),
                                                     ttl=timedelta(hours=1), queues=["kyc-analysts"]))

        ops, lead, viewer = as_user("olga", "operator"), as_user("lee", "approver"), as_user("vic", "viewer")
        flagged = exception_body(domain="accounts", type="account.flagged", amount=None, currency=None)
        _, big, _ = await ops.call("POST", "/api/v1/exceptions", json=flagged | {"amount": "99000", "currency": "USD"})
        assert big["status"] == "paused"
        resume = f"/api/v1/workflows/exception_pipeline/runs/{big['run_id']}/resume"
        decision = {"payload": {"decision": "approve", "reason": "known client"}}
        status, _, _ = await lead.call("POST", resume, json=decision)
        assert status == 202
        complete = f"/api/v1/playbook-runs/{big['run_id']}/complete-step/review"
        status, _, _ = await ops.call("POST", complete, json={"outputs": {"decision": "clear", "risk_score": 0.3}})
        assert status == 200
        await ops.call("POST", "/api/v1/exceptions", json=flagged)

        status, page, _ = await lead.call("GET", f"/api/v1/audit?run_id={big['run_id']}")
        assert status == 200
        trail = [(e["topic"], e["actor"]) for e in reversed(page["items"])]
        assert trail == [
            ("run.received", "user:olga"),
            ("dashboard.hitl_resumed", "user:lee"),
            ("playbook.step_completed", "user:olga"),
        ]
        approval = page["items"][1]["payload"]
        assert approval["decision"] == "approve" and approval["payload"]["reason"] == "known client"
        assert all(e["request_id"] for e in page["items"])

        _, mine, _ = await lead.call("GET", "/api/v1/audit?actor=user:lee")
        assert [e["topic"] for e in mine["items"]] == ["dashboard.hitl_resumed"]
        _, steps, _ = await lead.call("GET", "/api/v1/audit?topic=playbook.*")
        assert [e["topic"] for e in steps["items"]] == ["playbook.step_completed"]
        _, first, _ = await lead.call("GET", "/api/v1/audit?limit=2")
        _, rest, _ = await lead.call("GET", f"/api/v1/audit?limit=2&cursor={first['next_cursor']}")
        assert len(first["items"]) == 2 and len(rest["items"]) == 2 and rest["next_cursor"] is None
        assert first["items"][0]["id"] > first["items"][1]["id"] > rest["items"][0]["id"]
        _, future, _ = await lead.call("GET", "/api/v1/audit?since=2099-01-01T00:00:00%2B00:00")
        assert future["items"] == []

        status, body, _ = await viewer.call("GET", "/api/v1/audit")
        assert status == 403 and body["error"]["details"] == {"permission": "audit:read"}
        status, body, _ = await lead.call("GET", "/api/v1/audit?topic=a.*.b")
        assert status == 400 and body["error"]["details"][0]["field"] == "query.topic"
        _, other, _ = await as_user("lee", "approver", tenant="initech").call("GET", "/api/v1/audit")
        assert other["items"] == []
