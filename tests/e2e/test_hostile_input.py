"""Hostile input against the real ``autopilot serve``, on SQLite and on PostgreSQL: every client
mistake of issue 13 answers a 4xx in the error envelope naming what was wrong, and afterwards the
server is healthy, its memory has not grown past a bound, and a body trickled slowly at it did
not keep other clients waiting. Requests go over raw sockets, so that bytes no HTTP client
library would send (not UTF-8, NUL, over-long lines) reach the server as an attacker sends them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.server import ServerProcess, token
from tests.fresh_database import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

EXCEPTION = {"source": "stripe", "domain": "payments", "type": "payment.failed", "amount": "12.00",
             "currency": "USD"}
RSS_GROWTH_BOUND_MB = 64
"""Far below the 50 MB a trickled body would cost if the server kept it."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/json"), (self.status, self.body[:200])
        return json.loads(self.body)["error"]


async def send(port: int, head: bytes, body: bytes = b"") -> Answer:
    """One request, written as given (``head`` without its final blank line), on its own connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head.rstrip(b"\r\n") + b"\r\n" + length + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        return _parse(await reader.read())
    finally:
        writer.close()


def _parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, body)


@dataclass
class Target:
    server: ServerProcess
    bearer: str
    run_id: str

    @property
    def port(self) -> int:
        return self.server.port

    def head(self, method: str, target: str, *extra: str, content_type: str | None = "application/json") -> bytes:
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {self.bearer}"]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        return "\r\n".join([*lines, *extra]).encode()

    async def call(self, method: str, target: str, body: Any = None, *extra: str,
                   content_type: str | None = "application/json") -> Answer:
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        return await send(self.port, self.head(method, target, *extra, content_type=content_type), raw)

    def rss_mb(self) -> float:
        assert self.server.process is not None
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    data_dir = tmp_path_factory.mktemp(f"hostile-{request.param}") / "data"
    if request.param == "sqlite":
        async for answer in _served(ServerProcess(data_dir)):
            yield answer
        return
    async with fresh_database("t_hostile") as url:
        async for answer in _served(ServerProcess(data_dir, extra_env={"AUTOPILOT_DATABASE_URL": url})):
            yield answer


async def _served(server: ServerProcess) -> AsyncIterator[Target]:
    await server.start()
    try:
        bearer = token()
        probe = Target(server, bearer, "")
        accepted = await probe.call("POST", "/api/v1/exceptions", {**EXCEPTION, "source_id": "hostile-setup"})
        assert accepted.status == 202, accepted.body
        yield Target(server, bearer, json.loads(accepted.body)["run_id"])
    finally:
        server.stop()


def assert_refused(answer: Answer, status: int, field: str, code: str = "VALIDATION_FAILED") -> None:
    error = answer.error()
    assert answer.status == status and error["code"] == code, (answer.status, error)
    named = [detail.get("field", "") for detail in error.get("details") or []]
    assert any(name.startswith(field) for name in named), (field, error)


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_numbers_out_of_range_are_400_naming_the_parameter(target: Target):
    huge = str(2**64)
    for path, field in ((f"/api/v1/audit?cursor={huge}", "query.cursor"),
                        (f"/api/v1/schedules/inbox/history?cursor={huge}", "query.cursor"),
                        (f"/api/v1/runs/{target.run_id}/events?after_seq={huge}", "query.after_seq"),
                        (f"/api/v1/runs/{target.run_id}/events?after_seq={2**31}", "query.after_seq"),
                        (f"/api/v1/events/stream?last_event_id={huge}", "query.last_event_id")):
        assert_refused(await target.call("GET", path, content_type=None), 400, field)


async def test_deep_nesting_is_400_at_the_documented_limit_without_recursion(target: Target):
    whole = await target.call("POST", "/api/v1/exceptions", nested(1000).encode())
    assert_refused(whole, 400, "body")
    assert "nested deeper than 32 levels" in whole.error()["message"]
    inner = f'{{"source":"s","domain":"payments","type":"payment.failed","context":{nested(500)}}}'
    assert_refused(await target.call("POST", "/api/v1/exceptions", inner.encode()), 400, "body.context")
    payload = f'{{"payload":{nested(500)}}}'
    assert_refused(await target.call("POST", "/api/v1/workflows/exception_pipeline/trigger", payload.encode()),
                   400, "body.payload")
    within = {**EXCEPTION, "source_id": "hostile-deep-ok", "context": json.loads(nested(30))}
    assert (await target.call("POST", "/api/v1/exceptions", within)).status == 202


async def test_bytes_that_are_not_utf8_or_nul_are_400_naming_where(target: Target):
    body = json.dumps({**EXCEPTION, "source_id": "hostile-key"}).encode()
    head = target.head("POST", "/api/v1/exceptions") + b"\r\nIdempotency-Key: \xff\xfe"
    assert_refused(await send(target.port, head, body), 400, "header.Idempotency-Key")
    assert_refused(await send(target.port, target.head("GET", "/api/v1/runs") + b"\r\nX-Note: caf\xe9"),
                   400, "header.X-Note")
    for path in ("/api/v1/runs/%00", "/api/v1/schedules/%00/history", "/api/v1/runs/%00/events",
                 "/api/v1/workflows/%00/trigger", "/api/v1/runs/%FF"):
        assert_refused(await target.call("GET", path, content_type=None), 400, "path")
    for query, field in (("status=%00", "query.status"), ("status=%FF", "query.status"), ("%FF=1", "query.")):
        assert_refused(await target.call("GET", f"/api/v1/runs?{query}", content_type=None), 400, field)
    assert_refused(await target.call("POST", "/api/v1/exceptions", {**EXCEPTION, "code": "a\x00b"}), 400, "body.code")


async def test_over_long_lines_and_unknown_methods_answer_in_the_envelope(target: Target):
    long_line = await target.call("GET", "/api/v1/runs?status=" + "a" * 9000, content_type=None)
    assert_refused(long_line, 414, "path", code="URI_TOO_LONG")
    long_header = await target.call("GET", "/api/v1/runs", None, "X-Padding: " + "a" * 9000, content_type=None)
    assert_refused(long_header, 431, "header.X-Padding", code="HEADER_TOO_LARGE")
    for method in ("TRACE", "PUT"):
        answer = await target.call(method, "/api/v1/runs", content_type=None)
        assert answer.status == 405 and answer.error()["code"] == "METHOD_NOT_ALLOWED"
        assert answer.headers["allow"] == "GET"


async def test_bodies_must_be_json_and_present(target: Target):
    body = json.dumps({**EXCEPTION, "source_id": "hostile-type"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "application/xml", None, "application/json; charset=latin-1"):
        answer = await target.call("POST", "/api/v1/exceptions", body, content_type=content_type)
        assert_refused(answer, 415, "header.Content-Type", code="UNSUPPORTED_MEDIA_TYPE")
    accepted = await target.call("POST", "/api/v1/exceptions", body, content_type="application/json; charset=utf-8")
    assert accepted.status == 202
    for method, path, code in (("PATCH", "/api/v1/schedules/inbox", "VALIDATION_FAILED"),
                               ("POST", "/api/v1/schedules/inbox/pause", "VALIDATION_FAILED"),
                               ("POST", f"/api/v1/runs/{target.run_id}/playbook/recalculate", "VALIDATION_FAILED"),
                               ("POST", f"/api/v1/runs/{target.run_id}/run-next-step", "INVALID_REQUEST")):
        assert_refused(await target.call(method, path), 400, "body", code=code)  # the loop contract's own code
        assert_refused(await target.call(method, path, b"  "), 400, "body", code=code)


async def test_values_are_not_coerced(target: Target):
    cases = [
        ("POST", "/api/v1/exceptions", {**EXCEPTION, "sla_deadline": 1}, "body.sla_deadline"),
        ("POST", "/api/v1/exceptions", {**EXCEPTION, "sla_deadline": "1"}, "body.sla_deadline"),
        ("POST", "/api/v1/exceptions", {**EXCEPTION, "amount": True}, "body.amount"),
        ("POST", "/api/v1/schedules/inbox/backfill", {"start": 1, "end": "2026-01-02T00:00:00Z"}, "body.start"),
        ("POST", f"/api/v1/playbook-runs/{target.run_id}/complete-step/verify",
         {"outputs": {}, "ai_confidence": True}, "body.ai_confidence"),
        ("PATCH", "/api/v1/schedules/inbox", {"catch_up_seconds": " 12 "}, "body.catch_up_seconds"),
        ("PATCH", "/api/v1/schedules/inbox", {"jitter_seconds": True}, "body.jitter_seconds"),
        ("PATCH", "/api/v1/schedules/inbox", {"pause_after_failures": "3"}, "body.pause_after_failures"),
        ("PATCH", "/api/v1/schedules/inbox", {"pause_after_failures": True}, "body.pause_after_failures"),
        ("PATCH", "/api/v1/schedules/inbox", {"paused": 1}, "body.paused"),
        ("POST", "/api/v1/workflows/feedback_digest/trigger", {"payload": {"until": 1}}, "body.payload.until"),
        ("POST", "/api/v1/workflows/feedback_digest/trigger", {"payload": {"window_hours": "24"}},
         "body.payload.window_hours"),
        ("POST", "/api/v1/workflows/exception_pipeline/trigger", {"payload": {**EXCEPTION, "amount": True}},
         "body.payload.amount"),
    ]
    for method, path, body, field in cases:
        assert_refused(await target.call(method, path, body), 400, field)
    for query, field in (("until=0.5", "query.until"), ("since=1700000000", "query.since")):
        assert_refused(await target.call("GET", f"/api/v1/audit?{query}", content_type=None), 400, field)
    assert_refused(await target.call("GET", "/api/v1/runs?created_before=0.5", content_type=None),
                   400, "query.created_before")


async def test_a_trickled_body_does_not_hold_up_others_and_the_server_stays_healthy(target: Target):
    """50 MB sent in small pieces without a length: the server stops reading at its 1 MiB limit
    and answers 413, while other clients are answered as usual; afterwards it is healthy and its
    memory has not grown by anything like the body."""
    before = target.rss_mb()
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    head = target.head("POST", "/api/v1/exceptions", "Transfer-Encoding: chunked", "Connection: close")
    writer.write(head + b"\r\n\r\n")
    served_meanwhile: list[int] = []
    chunk = b"x" * 65536
    answer = b""
    try:
        for sent in range(50 * 16):  # 50 MB in 64 KiB chunks, a pause every MiB
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            if sent % 16 == 15:
                others = await asyncio.gather(
                    target.call("GET", "/healthz", content_type=None),
                    target.call("GET", "/api/v1/runs?limit=5", content_type=None),
                    target.call("POST", "/api/v1/exceptions", {**EXCEPTION, "source_id": f"hostile-during-{sent}"}),
                )
                served_meanwhile += [other.status for other in others]
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]  # the server has answered
                break
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server answered and closed while we were still sending
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert _parse(answer).status == 413 and _parse(answer).error()["code"] == "PAYLOAD_TOO_LARGE"
    assert served_meanwhile and set(served_meanwhile) <= {200, 202}, served_meanwhile
    for path in ("/healthz", "/readyz"):
        assert (await target.call("GET", path, content_type=None)).status == 200
    assert target.rss_mb() - before < RSS_GROWTH_BOUND_MB
