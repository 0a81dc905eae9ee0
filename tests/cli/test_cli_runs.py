"""``autopilot playbooks run`` and ``autopilot runs status`` over real HTTP: the app listens on a
loopback socket in the test's event loop, and the CLI's ``main`` runs in a thread with an event loop
of its own, as it would in its own process."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.cli import main
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.e2e.server import free_port


@dataclass
class Served:
    """The app on a socket, a token for acme, and the API as the test reads it."""

    url: str
    token: str
    api: Api
    tmp: Path

    def exception_file(self, **overrides: Any) -> str:
        path = self.tmp / f"exception-{len(list(self.tmp.glob('exception-*.json')))}.json"
        path.write_text(json.dumps(exception_body(**overrides)))
        return str(path)

    async def cli(self, *argv: str) -> int:
        """``autopilot ARGV --url URL --token TOKEN``, in a thread so that this loop keeps serving."""
        return await asyncio.to_thread(main, [*argv, "--url", self.url, "--token", self.token])

    async def runs(self) -> list[dict[str, Any]]:
        status, page, _ = await self.api.call("GET", "/api/v1/runs")
        assert status == 200
        return page["items"]


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.delenv("AUTOPILOT_TOKEN", raising=False)
    monkeypatch.delenv("AUTOPILOT_URL", raising=False)
    app = create_app(Settings(data_dir=tmp_path / "data", jwt_secret="cli-secret-" + "x" * 32))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="acme", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
        yield Served(str(client.make_url("")).rstrip("/"), token, Api(client, app, token), tmp_path)


async def start(served: Served, playbook: str, capsys: pytest.CaptureFixture[str], **overrides: Any) -> str:
    """What ``RUN=$(autopilot playbooks run ...)`` would hold."""
    assert await served.cli("playbooks", "run", playbook, "--exception", served.exception_file(**overrides)) == 0
    printed = capsys.readouterr().out
    await served.api.settle()
    return printed.removesuffix("\n")


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def test_run_prints_only_the_run_id_of_a_run_of_that_playbook(served, capsys):
    # Triage would pick payment-card-declined for this exception; the run takes the one asked for.
    run_id = await start(served, "payment-processor-retry", capsys)
    assert run_id.startswith("run_") and run_id.split() == [run_id]
    status, run, _ = await served.api.call("GET", f"/api/v1/runs/{run_id}")
    assert status == 200
    assert run["playbook_id"] == "payment-processor-retry"
    assert run["exception"]["source_id"] == "ch_3PqLx2" and run["started_by"] == "user:ann"


async def test_run_from_stdin_with_an_idempotency_key_gives_the_same_run_and_json_the_whole_answer(
    served, capsys, monkeypatch
):
    document = json.dumps(exception_body())
    answers = []
    for _ in range(2):
        monkeypatch.setattr("sys.stdin", io.StringIO(document))
        assert await served.cli("playbooks", "run", "payment-card-declined@1", "--exception", "-",
                                "--idempotency-key", "cli-once", "--json") == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0]["run_id"] == answers[1]["run_id"]
    assert answers[0]["workflow_id"] == "exception_pipeline" and "run" in answers[0]["links"]
    assert len(await served.runs()) == 1


async def test_status_of_a_run_paused_for_approval(served, capsys):
    run_id = await start(served, "payment-card-declined", capsys, amount="9100.00")  # acme approves from 5000
    assert await served.cli("runs", "status", run_id) == 0
    printed = capsys.readouterr().out.splitlines()
    _, run, _ = await served.api.call("GET", f"/api/v1/runs/{run_id}")
    pause = run["pause"]
    assert printed[:5] == [
        f"run       {run_id}",
        "workflow  exception_pipeline",
        "status    paused (stage approval)",
        "playbook  payment-card-declined@1 (automatic): Card declined — ask the customer to update payment",
        "progress  0/3 steps completed; current step hold-order (pending)",
    ]
    assert [line.split()[1:3] for line in printed[5:8]] == [
        ["hold-order", "pending"], ["notify-customer", "pending"], ["log", "pending"]]
    assert printed[8:] == [
        "paused    at gate ops_lead_approval: amount 9100.00 USD is at or over 5000",
        f"  since     {_when(pause['requested_at'])}",
        f"  expires   {_when(pause['expires_at'])}",
        "  deciders  role:approver, role:admin",
        "  approvals 0 of 1",
    ]


async def test_status_of_a_completed_run_and_its_json(served, capsys, monkeypatch):
    run_id = await start(served, "payment-card-declined", capsys)
    monkeypatch.setenv("AUTOPILOT_URL", served.url)  # the server and token may come from the environment
    monkeypatch.setenv("AUTOPILOT_TOKEN", served.token)
    assert await asyncio.to_thread(main, ["runs", "status", run_id]) == 0
    printed = capsys.readouterr().out
    assert "status    completed (stage done)\n" in printed
    assert "progress  3/3 steps completed\n" in printed
    assert [line.split()[1:3] for line in printed.splitlines() if line.startswith("   ")] == [
        ["hold-order", "completed"], ["notify-customer", "completed"], ["log", "completed"]]
    assert "paused" not in printed and "error" not in printed

    assert await asyncio.to_thread(main, ["runs", "status", run_id, "--json"]) == 0
    _, run, _ = await served.api.call("GET", f"/api/v1/runs/{run_id}")
    assert json.loads(capsys.readouterr().out) == run


async def test_an_unknown_playbook_or_run_exits_1_with_the_reason(served, capsys):
    assert await served.cli("playbooks", "run", "no-such-playbook", "--exception", served.exception_file()) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("autopilot playbooks run: 404 PLAYBOOK_NOT_FOUND: "
                            "no playbook no-such-playbook approved for this tenant\n")
    assert await served.cli("runs", "status", "run_nope") == 1
    assert capsys.readouterr().err == "autopilot runs status: no run run_nope\n"


async def test_an_exception_the_server_refuses_names_the_field(served, capsys):
    assert await served.cli("playbooks", "run", "payment-card-declined",
                            "--exception", served.exception_file(amount="lots")) == 1
    assert capsys.readouterr().err.splitlines() == [
        "autopilot playbooks run: 400 VALIDATION_FAILED: invalid body.amount: Input should be a valid decimal",
        "  body.amount: Input should be a valid decimal",
    ]


@pytest.mark.parametrize(("content", "said"), [
    (None, "cannot read {path}: No such file or directory"),
    ('{"source": "stripe",', "{path}:1:21: not valid JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", "{path}: the exception must be a JSON object"),
])
def test_a_bad_exception_file_exits_2_before_any_request(tmp_path, capsys, content, said):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    nobody = f"http://127.0.0.1:{free_port()}"  # a request would fail to connect and exit 1
    assert main(["playbooks", "run", "payment-card-declined", "--exception", str(path), "--url", nobody]) == 2
    assert capsys.readouterr().err == f"autopilot playbooks run: {said.format(path=path)}\n"


def test_a_server_that_is_not_running_is_named_with_how_to_start_one(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["runs", "status", "run_x", "--url", url, "--token", "t"]) == 1
    err = capsys.readouterr().err
    assert err == (f"autopilot runs status: cannot reach {url} (connection refused); start the server with "
                   "`autopilot serve`, or point --url or AUTOPILOT_URL at a running one\n")
