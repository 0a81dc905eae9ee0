"""Every route with a body, walked from the route table, refuses the same way before its handler
looks anything up: no body is a 400 naming ``body``, a body that is not JSON by its
``Content-Type`` a 415, one over 1 MiB a 413; a body nested past the limit is a 400, never a
500. Every route answers NUL and non-UTF-8 in its path and query with a 400, and an unknown
method with a 405 that says which methods it takes. A new route is covered or these fail."""

from __future__ import annotations

import inspect

from api.app import route_specs
from api.json_limits import MAX_JSON_DEPTH
from api.routing import MAX_BODY_BYTES

IDS = {"run_id": "run_missing", "step_id": "review", "workflow_id": "exception_pipeline", "playbook_id": "nope",
       "schedule_id": "missing", "endpoint_id": "whk_missing", "delivery_id": "dlv_missing"}
BODY_ROUTES = [spec for spec in route_specs() if spec.body is not None]


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_the_walk_finds_the_body_routes():
    """Every handler that reads a body declares it, so the route table puts the body checks before it."""
    assert len(BODY_ROUTES) >= 12
    readers = {(s.method, s.path) for s in route_specs() if "read_body" in inspect.getsource(s.handler)}
    assert readers == {(s.method, s.path) for s in BODY_ROUTES}


async def test_every_body_route_refuses_a_missing_or_mistyped_or_oversized_body(api):
    for spec in BODY_ROUTES:
        path = spec.path.format(**IDS)
        status, body, _ = await api.call(spec.method, path)
        assert status == 400 and body["error"]["details"][0]["field"] == "body", (spec.path, status, body)
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            status, body, _ = await api.call(spec.method, path, data=b"{}", headers={"Content-Type": content_type})
            assert status == 415 and body["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE", (spec.path, content_type)
        status, body, _ = await api.call(spec.method, path, data=b" " * (MAX_BODY_BYTES + 1),
                                         headers={"Content-Type": "application/json"})
        assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE", (spec.path, status)


async def test_every_body_route_answers_deep_nesting_with_a_4xx(api):
    for spec in BODY_ROUTES:
        for depth in (MAX_JSON_DEPTH + 1, 2000):
            raw = _nested(depth).encode()
            status, body, _ = await api.call(spec.method, spec.path.format(**IDS), data=raw,
                                             headers={"Content-Type": "application/json"})
            assert 400 <= status < 500, (spec.path, depth, status, body)


async def test_every_route_refuses_nul_and_non_utf8_in_its_path_and_query(api):
    for spec in route_specs():
        if spec.path in ("/", "/healthz", "/readyz", "/metrics", "/openapi.json") or "{" not in spec.path:
            continue
        for bad in ("%00", "%FF", "a%C3"):
            ids = {name: bad for name in IDS}
            status, body, _ = await api.call(spec.method, spec.path.format(**ids))
            assert status == 400 and body["error"]["details"][0]["field"] == "path", (spec.path, bad, status)
    for spec in route_specs():
        if spec.query is None:
            continue
        path = spec.path.format(**IDS) + "?limit=%00"
        status, body, _ = await api.call(spec.method, path)
        assert status == 400 and body["error"]["details"][0]["field"] == "query.limit", (spec.path, status)


async def test_an_unknown_method_is_405_with_allow(api):
    for spec in route_specs():
        path = spec.path.format(**IDS)
        status, body, headers = await api.call("TRACE", path)
        taken = {other.method for other in route_specs() if other.path == spec.path}
        assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED", (spec.path, status)
        assert {method.strip() for method in headers["Allow"].split(",")} >= taken
