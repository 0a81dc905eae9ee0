"""Each role against each route: a missing permission is a 403 that names it; a granted one is
never refused for lack of permission. The roles come from config/roles.yaml."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.app import route_specs
from api.keys import CATALOG, TOKENS
from config.catalog import load_catalog
from config.settings import SHIPPED_CONFIG_DIR
from tests.api.conftest import Api
from tests.api.route_bodies import BODIES

ROLES = sorted(load_catalog(SHIPPED_CONFIG_DIR).roles.roles)
EXPECTED = {
    "viewer": {"runs:read"},
    "operator": {"runs:read", "exceptions:ingest", "workflows:trigger", "runs:advance", "steps:complete",
                 "schedules:manage", "webhooks:read"},
    "approver": {"runs:read", "runs:resume", "audit:read"},
}


def test_the_shipped_roles_grant_what_the_docs_say(catalog):
    for role, permissions in EXPECTED.items():
        assert catalog.roles.granted([role]) == permissions
    assert catalog.roles.granted(["admin"]) == set(catalog.roles.permissions)
    assert catalog.roles.granted(["viewer", "approver"]) == EXPECTED["viewer"] | EXPECTED["approver"]
    assert catalog.roles.granted(["stranger"]) == set()


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_against_each_route(client, app, role):
    token = app[TOKENS].mint(tenant="acme", subject="ann", roles=[role], ttl=timedelta(hours=1))
    api = Api(client, app, token)
    granted = app[CATALOG].roles.granted([role])
    ids = {"run_id": "run_missing", "step_id": "review", "workflow_id": "exception_pipeline", "playbook_id": "nope",
           "schedule_id": "missing", "endpoint_id": "whk_missing", "delivery_id": "dlv_missing"}
    for spec in route_specs():
        if spec.public:
            continue
        body = BODIES.get((spec.method, spec.path))
        status, body, _ = await api.call(spec.method, spec.path.format(**ids), json=body)
        if spec.permission in granted:
            assert status != 403, (role, spec.path)
        else:
            assert status == 403, (role, spec.method, spec.path, status)
            assert body["error"]["code"] == "FORBIDDEN" and body["error"]["details"] == {"permission": spec.permission}
