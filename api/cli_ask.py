"""``autopilot ask``: the copilot from a terminal. It asks a running server over HTTP with a
bearer token, so the answer is scoped to the token's tenant exactly as in the dashboard, and the
CLI needs neither the database nor the model's key."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from api.cli_http import add_server_options, guarded, request, server_of
from config.settings import Settings


def _print_answer(answer: dict[str, Any]) -> None:
    print(answer["reply"])
    if answer["tools_used"]:
        print("\nTools used:")
        for tool in answer["tools_used"]:
            print(f"  {tool['tool_name']}({tool['input_summary']})")
    print(f"\n{answer['iterations']} iterations; thread {answer['thread_id']} (follow up with --thread "
          f"{answer['thread_id']})")


def run(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    server = server_of(args, settings_of)
    body = {"query": args.query, **({"thread_id": args.thread} if args.thread else {})}
    answer = request(server, "POST", "/api/v1/copilot/ask", body=body, timeout=args.timeout)
    if answer.status != 200:
        raise answer.failure()
    if args.json:
        print(json.dumps(answer.body, indent=2))
    else:
        _print_answer(answer.body)
    return 0


def add_command(commands: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    ask = commands.add_parser("ask", help="ask the copilot of a running server about runs")
    ask.add_argument("query", help='e.g. "why did run run_01… pause?"')
    ask.add_argument("--thread", help="continue the conversation of an earlier answer")
    add_server_options(ask)
    ask.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    ask.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    ask.set_defaults(func=guarded("ask", lambda args: run(args, settings_of)))
