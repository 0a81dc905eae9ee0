"""``autopilot ask``: the copilot from a terminal. It asks a running server over HTTP with a
bearer token, so the answer is scoped to the token's tenant exactly as in the dashboard, and the
CLI needs neither the database nor the model's key."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import aiohttp

from config.settings import Settings

TOKEN_ENV = "AUTOPILOT_TOKEN"
URL_ENV = "AUTOPILOT_URL"


async def _ask(url: str, token: str, query: str, thread: str | None, timeout: float) -> tuple[int, Any]:
    body = {"query": query, **({"thread_id": thread} if thread else {})}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(f"{url.rstrip('/')}/api/v1/copilot/ask", json=body,
                                headers={"Authorization": f"Bearer {token}"}) as response:
            if response.content_type != "application/json":
                return response.status, {"error": {"message": (await response.text())[:500]}}
            return response.status, await response.json()


def _print_answer(answer: dict[str, Any]) -> None:
    print(answer["reply"])
    if answer["tools_used"]:
        print("\nTools used:")
        for tool in answer["tools_used"]:
            print(f"  {tool['tool_name']}({tool['input_summary']})")
    print(f"\n{answer['iterations']} iterations; thread {answer['thread_id']} (follow up with --thread "
          f"{answer['thread_id']})")


def run(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"autopilot ask: give --token or set {TOKEN_ENV} (mint one with: autopilot token ...)", file=sys.stderr)
        return 2
    url = args.url or os.environ.get(URL_ENV)
    if not url:
        settings = settings_of(args)
        url = f"http://{settings.host}:{settings.port}"
    try:
        status, body = asyncio.run(_ask(url, token, args.query, args.thread, args.timeout))
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"autopilot ask: cannot reach {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if status != 200:
        error = body.get("error", {})
        print(f"autopilot ask: {status} {error.get('code', '')}: {error.get('message', '')}".strip(), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _print_answer(body)
    return 0


def add_command(commands: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    ask = commands.add_parser("ask", help="ask the copilot of a running server about runs")
    ask.add_argument("query", help='e.g. "why did run run_01… pause?"')
    ask.add_argument("--thread", help="continue the conversation of an earlier answer")
    ask.add_argument("--url", help=f"the server (also {URL_ENV}; default: this host and port from the settings)")
    ask.add_argument("--token", help=f"a bearer token (also {TOKEN_ENV})")
    ask.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    ask.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    ask.set_defaults(func=lambda args: run(args, settings_of))
