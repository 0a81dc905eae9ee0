"""Manual triggers, the workflow catalogue with counts, and reading runs with filters and cursors."""

from __future__ import annotations

from api.keys import JOBS
from tests.api.conftest import exception_body

TRIGGER = "/api/v1/workflows/{}/trigger"


async def test_a_manual_trigger_starts_a_run_and_records_the_trigger(api):
    status, body, _ = await api.call("POST", TRIGGER.format("exception_pipeline"), json={"payload": exception_body()})
    assert status == 202
    assert body["status"] == "dispatched" and body["event_topic"] == "dashboard.workflow_triggered"
    await api.settle()
    _, run, _ = await api.call("GET", f"/api/v1/runs/{body['run_id']}")
    assert run["trigger_type"] == "manual" and run["status"] == "completed"
    _, events, _ = await api.call("GET", f"/api/v1/runs/{body['run_id']}/events?topic=dashboard.*")
    [triggered] = events["items"]
    assert triggered["payload"]["workflow_id"] == "exception_pipeline"
    assert triggered["actor"] == "user:ann"


async def test_trigger_refuses_an_unknown_workflow_and_a_payload_that_does_not_fit(api):
    status, body, _ = await api.call("POST", TRIGGER.format("nope"), json={"payload": exception_body()})
    assert status == 404 and body["error"]["code"] == "WORKFLOW_NOT_FOUND"
    status, body, _ = await api.call(
        "POST", TRIGGER.format("exception_pipeline"), json={"payload": exception_body(currency="dollars")}
    )
    assert status == 400 and body["error"]["details"][0]["field"] == "body.payload.currency"


async def test_workflows_show_their_last_run_and_counts_per_status(api, ingest):
    await ingest()
    await ingest(amount="7000.00")
    last = await ingest(domain="inventory", type="inventory.mismatch", code="count_variance", amount=None,
                        currency=None)
    await api.settle()
    status, body, _ = await api.call("GET", "/api/v1/workflows")
    assert status == 200
    workflows = {w["id"]: w for w in body["items"]}
    assert set(workflows) == {"exception_pipeline", "sla_sweep", "ingest", "feedback_digest"}
    jobs = [w for k, w in workflows.items() if k != "exception_pipeline"]
    assert all(w["total_runs"] == 0 and w["last_run"] is None for w in jobs)
    workflow = workflows["exception_pipeline"]
    assert workflow["counts"] == {"completed": 2, "paused": 1}
    assert workflow["total_runs"] == 3
    assert workflow["last_run"]["id"] == last


async def test_runs_list_filters_by_status_and_pages_with_a_cursor(api, ingest):
    ids = [await ingest(source_id=f"ch_{i}") for i in range(5)]
    paused = await ingest(amount="12000.00")
    await api.settle()
    _, page, _ = await api.call("GET", "/api/v1/runs?status=paused")
    assert [r["id"] for r in page["items"]] == [paused]
    _, page, _ = await api.call("GET", "/api/v1/runs?status=completed&limit=2")
    seen = [r["id"] for r in page["items"]]
    while page["next_cursor"]:
        _, page, _ = await api.call("GET", f"/api/v1/runs?status=completed&limit=2&cursor={page['next_cursor']}")
        seen += [r["id"] for r in page["items"]]
    assert seen == list(reversed(ids))
    _, page, _ = await api.call("GET", "/api/v1/runs?status=completed,paused&workflow_id=exception_pipeline")
    assert len(page["items"]) == 6


async def test_runs_list_filters_by_time_and_refuses_bad_filters(api, ingest):
    await ingest()
    await api.settle()
    _, page, _ = await api.call("GET", "/api/v1/runs?created_after=2099-01-01T00:00:00%2B00:00")
    assert page["items"] == []
    _, page, _ = await api.call("GET", "/api/v1/runs?created_before=2099-01-01T00:00:00%2B00:00")
    assert len(page["items"]) == 1
    status, body, _ = await api.call("GET", "/api/v1/runs?status=sleeping")
    assert status == 400 and body["error"]["details"][0]["field"].startswith("query.status")
    status, body, _ = await api.call("GET", "/api/v1/runs?limit=0")
    assert status == 400 and body["error"]["details"][0]["field"] == "query.limit"


async def test_a_tenant_sees_only_its_own_runs_and_events(api, other_tenant, ingest):
    run_id = await ingest()
    await api.settle()
    _, page, _ = await other_tenant.call("GET", "/api/v1/runs")
    assert page["items"] == []
    for path in (f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/events"):
        status, body, _ = await other_tenant.call("GET", path)
        assert status == 404 and body["error"]["code"] == "RUN_NOT_FOUND"
    _, workflows, _ = await other_tenant.call("GET", "/api/v1/workflows")
    assert workflows["items"][0]["total_runs"] == 0


async def test_the_timeline_pages_by_sequence(api, ingest):
    run_id = await ingest()
    await api.settle()
    _, first, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?limit=4")
    assert [e["seq"] for e in first["items"]] == [1, 2, 3, 4] and first["next_after_seq"] == 4
    _, rest, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?after_seq=4")
    assert rest["items"][0]["seq"] == 5 and rest["next_after_seq"] is None


async def test_a_job_workflow_is_triggered_by_hand_with_its_own_payload(api, other_tenant):
    status, body, _ = await api.call("POST", TRIGGER.format("feedback_digest"), json={"payload": {"window_hours": 2}})
    assert status == 202
    run = await api.app[JOBS].wait(body["run_id"])
    assert run is not None and run.status == "completed" and run.trigger_type == "manual"
    _, events, _ = await api.call("GET", f"/api/v1/runs/{body['run_id']}/events?topic=feedback.digest")
    assert len(events["items"]) == 1
    status, body, _ = await api.call("POST", TRIGGER.format("sla_sweep"), json={"payload": {"near_minutes": "soon"}})
    assert status == 400 and body["error"]["details"][0]["field"] == "body.payload.near_minutes"
    # a source is the tenant's own: acme's inbox is unknown to another tenant, and nothing starts
    inbox = {"payload": {"source": "acme_inbox"}}
    status, body, _ = await other_tenant.call("POST", TRIGGER.format("ingest"), json=inbox)
    assert status == 400 and body["error"]["details"][0]["field"] == "body.payload.source"
    _, runs, _ = await other_tenant.call("GET", "/api/v1/runs?workflow_id=ingest")
    assert runs["items"] == []
