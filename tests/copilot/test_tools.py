"""The tools on their own, against the two-tenant store: what each returns, that it stays within
the scope's tenant, and that big outputs are cut with a note."""

from __future__ import annotations

import json
from datetime import timedelta

from copilot.tools import TenantScope, run_tool
from eventbus import topic_matches
from store.records import ScheduleRecord
from store.schedules import ScheduleRepository


def scope(seeded, catalog, clock, tenant="acme") -> TenantScope:
    return TenantScope.of(tenant, seeded.db, catalog, clock)


async def output(scope: TenantScope, name: str, limit: int = 100_000, **args) -> dict:
    return json.loads(await run_tool(scope, name, json.dumps(args), limit))["untrusted_data"]


async def test_a_big_output_is_cut_with_a_note(seeded, catalog, clock):
    text = await run_tool(scope(seeded, catalog, clock), "get_run", json.dumps({"run_id": seeded.acme_done}), 400)
    assert len(text) <= 400 and text.endswith("narrow the query to see more]")
    assert "[cut: output was " in text
    whole = await run_tool(scope(seeded, catalog, clock), "get_run", json.dumps({"run_id": seeded.acme_done}), 10**6)
    assert f"output was {len(whole)} characters" in text


async def test_statistics_count_only_the_tenants_runs(seeded, catalog, clock):
    acme = await output(scope(seeded, catalog, clock), "workflow_statistics", window_hours=1)
    group = acme["groups"]["exception_pipeline"]
    assert group["runs"] == 2 and group["statuses"] == {"paused": 1, "completed": 1}
    assert group["hitl"] == 1 and group["hitl_rate"] == 0.5
    assert group["duration_seconds"]["average"] >= 0 and group["failure_reasons"] == []
    by_playbook = await output(scope(seeded, catalog, clock), "workflow_statistics", group_by="playbook")
    assert sum(g["runs"] for g in by_playbook["groups"].values()) == 2
    globex = await output(scope(seeded, catalog, clock, "globex"), "workflow_statistics")
    assert globex["groups"]["exception_pipeline"]["statuses"] == {"paused": 1}
    clock.advance(hours=2)
    assert (await output(scope(seeded, catalog, clock), "workflow_statistics", window_hours=1))["groups"] == {}


async def test_search_is_by_text_and_time(seeded, catalog, clock):
    acme = scope(seeded, catalog, clock)
    hits = (await output(acme, "search_events", text="CARD_DECLINED"))["events"]
    assert {e["run_id"] for e in hits} == {seeded.acme_paused, seeded.acme_done}
    later = (clock.now + timedelta(minutes=1)).isoformat()
    assert (await output(acme, "search_events", text="card_declined", since=later))["events"] == []
    assert (await output(acme, "search_events", text="100%_off"))["events"] == []


async def test_events_filter_by_topic_and_pending_approvals(seeded, catalog, clock):
    acme = scope(seeded, catalog, clock)
    events = await output(acme, "get_run_events", run_id=seeded.acme_done, topic="playbook.#")
    assert events["events"] and all(e["topic"].startswith("playbook.") for e in events["events"])
    pending = await output(acme, "list_pending_approvals")
    assert [r["id"] for r in pending["paused_runs"]] == [seeded.acme_paused]
    assert pending["paused_runs"][0]["pause"]["payload_schema"]
    listed = await output(acme, "list_runs", status=["completed"])
    assert [r["id"] for r in listed["runs"]] == [seeded.acme_done]


async def test_playbooks_and_schedules(seeded, catalog, clock):
    acme = scope(seeded, catalog, clock)
    playbook = await output(acme, "get_playbook", playbook_id="payment-card-declined")
    assert playbook["id"] == "payment-card-declined" and playbook["steps"]
    assert (await output(acme, "get_playbook", playbook_id="nope")) == {"error": "no playbook nope"}
    schedules = ScheduleRepository(seeded.db)
    for tenant in ("acme", "globex"):
        await schedules.save(ScheduleRecord(
            tenant_id=tenant, id=f"{tenant}-digest", workflow_id="feedback_digest",
            settings={"trigger": {"type": "interval", "seconds": 3600}}, paused=False, paused_reason=None,
            consecutive_failures=0, next_fire_at=clock.now, last_fire_at=None, last_run_id=None, origin="api",
            declared_hash=None, deleted=False, version=1, created_at=clock.now, created_by="user:ann",
            updated_at=clock.now, updated_by="user:ann"), is_new=True)
    listed = await output(acme, "list_schedules")
    assert [s["id"] for s in listed["schedules"]] == ["acme-digest"]


def test_topic_patterns_read_as_the_bus_reads_them():
    assert topic_matches("run.*", "run.paused") and not topic_matches("run.*", "run.a.b")
    assert topic_matches("playbook.#", "playbook.step.completed") and topic_matches("#", "x")
    assert not topic_matches("dashboard.*", "run.paused")
