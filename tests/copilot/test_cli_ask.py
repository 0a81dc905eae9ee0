"""``autopilot ask`` against the app in process: it needs a token, and an error answer is printed
with its status and code and exits 1."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestServer

from api.app import create_app
from api.cli import main
from api.keys import TOKENS
from tests.copilot.conftest import llm_settings


def test_it_needs_a_token(monkeypatch, capsys):
    monkeypatch.delenv("AUTOPILOT_TOKEN", raising=False)
    assert main(["ask", "what is paused?"]) == 2
    assert "give --token or set AUTOPILOT_TOKEN" in capsys.readouterr().err


async def test_an_error_answer_is_printed_with_its_code(tmp_path, capsys):
    app = create_app(llm_settings(tmp_path, llm_base_url=None, llm_model=None))
    async with TestServer(app) as server:
        token = app[TOKENS].mint(tenant="acme", subject="ann", roles=["viewer"], ttl=timedelta(hours=1))
        url = str(server.make_url(""))
        code = await asyncio.to_thread(main, ["ask", "what is paused?", "--url", url, "--token", token])
    assert code == 1
    err = capsys.readouterr().err
    assert "503 COPILOT_UNAVAILABLE: The copilot is not configured: set AUTOPILOT_LLM_BASE_URL" in err
