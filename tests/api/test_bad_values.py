"""Values the store could not keep are refused at the door with a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from tests.api.conftest import exception_body

FAR = "9999-12-31T23:59:59-01:00"  # a valid offset time, but past datetime.max once in UTC


async def test_a_deadline_out_of_range_in_utc_is_named(api):
    status, body, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body(sla_deadline=FAR))
    assert status == 400 and body["error"]["details"][0]["field"] == "body.sla_deadline"


async def test_a_time_filter_out_of_range_is_named(api):
    response = await api.client.get("/api/v1/runs", params={"created_after": FAR}, headers=api.headers())
    body = await response.json()
    assert response.status == 400 and body["error"]["details"][0]["field"] == "query.created_after"


async def test_nul_characters_are_refused_wherever_they_hide(api):
    status, body, _ = await api.call("POST", "/api/v1/exceptions",
                                     json=exception_body(context={"notes": ["ok", "a\u0000b"]}))
    assert status == 400 and body["error"]["details"][0]["field"] == "body.context.notes[1]"
    response = await api.client.get("/api/v1/runs", params={"cursor": "a\u0000"}, headers=api.headers())
    assert response.status == 400


async def test_token_claims_that_do_not_fit_the_store_are_refused(client):
    exp = datetime.now(UTC) + timedelta(hours=1)
    for claims in ({"sub": "x" * 200, "tenant": "acme"}, {"sub": "ann", "tenant": "t" * 65},
                   {"sub": "ann", "tenant": "acme corp"}):
        token = jwt.encode({**claims, "roles": [], "exp": exp}, "test-secret-" + "x" * 32, algorithm="HS256")
        response = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401, claims
