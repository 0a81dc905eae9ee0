"""The demo feed's sample exceptions are valid input and exercise the pipeline's paths."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from agents.exception_input import ExceptionIn
from api.demo import sample_exception


async def test_every_sample_is_valid_and_the_samples_reach_several_playbooks_and_pauses(api):
    rng = random.Random(7)
    now = datetime.now(UTC)
    for _ in range(80):
        body = sample_exception(rng, now)
        ExceptionIn.model_validate(body)
        status, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        assert status == 202, answer
    _, page, _ = await api.call("GET", "/api/v1/runs?limit=500")
    statuses = {run["status"] for run in page["items"]}
    playbooks = {run["playbook_id"] for run in page["items"]}
    # Human and AI steps leave a run waiting_for_input; every other run completes or pauses for approval.
    assert statuses <= {"completed", "paused", "waiting_for_input"}
    assert {"completed", "paused", "waiting_for_input"} <= statuses
    assert len(playbooks - {None}) >= 5
