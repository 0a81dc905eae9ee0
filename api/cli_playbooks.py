"""``autopilot playbooks validate|list|show|run``: check and read the playbook library on disk, and
start a run of one playbook through a running server's API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from api.cli_http import CliFailure, add_server_options, guarded, request, server_of
from config.playbooks import Playbook, load_playbook_library
from config.settings import Settings
from config.yaml_source import ConfigError, ConfigErrors, load_model


def _files(paths: list[str], default: Path) -> list[Path]:
    found: list[Path] = []
    for given in paths or [str(default)]:
        path = Path(given)
        found.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return found


def validate(args: argparse.Namespace, playbooks_dir: Path) -> int:
    """Print ``file:line: field: message`` for every problem; exit 1 if there was any."""
    problems: list[ConfigError] = []
    files = _files(args.paths, playbooks_dir)
    for path in files:
        if not path.exists():
            problems.append(ConfigError(path, None, "", "no such file"))
            continue
        try:
            load_model(path, Playbook)
        except ConfigErrors as exc:
            problems.extend(exc.errors)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(files)} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def list_playbooks(args: argparse.Namespace, playbooks_dir: Path) -> int:
    library, problems = load_playbook_library(playbooks_dir)
    rows = sorted(library.values(), key=lambda p: (p.match.domain or "", -p.priority, p.id, -p.version))
    for playbook in rows:
        kinds = ",".join(sorted({s.type for s in playbook.steps}))
        print(f"{playbook.id + '@' + str(playbook.version):<44} {playbook.match.domain or '*':<12} "
              f"prio {playbook.priority:>4}  {len(playbook.steps)} steps [{kinds}]  {playbook.name}")
    for problem in problems:
        print(f"not loaded: {problem}", file=sys.stderr)
    return 1 if problems else 0


def show(args: argparse.Namespace, playbooks_dir: Path) -> int:
    library, _ = load_playbook_library(playbooks_dir)
    matches = [p for key, p in library.items() if args.id in (key, p.id)]
    if not matches:
        print(f"no playbook {args.id}", file=sys.stderr)
        return 1
    playbook = max(matches, key=lambda p: p.version)
    document = playbook.model_dump(mode="json", exclude_defaults=True)
    print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return 0


def read_exception(source: str) -> dict[str, Any]:
    """The exception to send, from a file or ``-`` (stdin); one that cannot be sent is refused
    here, before any request, with exit code 2."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliFailure(f"cannot read {source}: {exc.strerror or exc}", exit_code=2) from exc
    except UnicodeDecodeError as exc:
        raise CliFailure(f"{source} is not UTF-8 text: {exc.reason}", exit_code=2) from exc
    try:
        exception = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliFailure(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", exit_code=2) from exc
    if not isinstance(exception, dict):
        raise CliFailure(f"{source}: the exception must be a JSON object", exit_code=2)
    return exception


def run(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    """Print the new run's id alone on stdout (``RUN=$(autopilot playbooks run ...)``)."""
    exception = read_exception(args.exception)
    server = server_of(args, settings_of)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    answer = request(server, "POST", f"/api/v1/playbooks/{quote(args.id, safe='@')}/runs",
                     body=exception, headers=headers)
    if not answer.ok:
        raise answer.failure()
    if args.json:
        print(json.dumps(answer.body, indent=2))
    else:
        print(answer.body["run_id"])
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                 settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Register the verbs; ``settings_of(args)`` says where the library is and which server to ask."""

    def playbooks_dir_of(args: argparse.Namespace) -> Path:
        return settings_of(args).config_dir / "playbooks"

    group = commands.add_parser("playbooks", help="validate, list, show and run playbooks")
    verbs = group.add_subparsers(dest="playbooks_command", required=True)
    check = verbs.add_parser("validate", help="check playbook files; prints file:line: message")
    check.add_argument("paths", nargs="*", help="files or folders (default: the configured library)")
    check.set_defaults(func=lambda a: validate(a, playbooks_dir_of(a)))
    verbs.add_parser("list", help="the library, one line each").set_defaults(
        func=lambda a: list_playbooks(a, playbooks_dir_of(a))
    )
    one = verbs.add_parser("show", help="one playbook as YAML (newest version of a bare id)")
    one.add_argument("id", help="'id' or 'id@version'")
    one.set_defaults(func=lambda a: show(a, playbooks_dir_of(a)))
    start = verbs.add_parser("run", help="start a run of a playbook through the server; prints the run id")
    start.add_argument("id", metavar="ID", help="'id' or 'id@version'")
    start.add_argument("--exception", required=True, metavar="FILE.json",
                       help="the exception, as POST /api/v1/exceptions takes it ('-' for stdin)")
    add_server_options(start)
    start.add_argument("--idempotency-key", help="send again with the same key to get the same run, not a second")
    start.add_argument("--json", action="store_true", help="print the server's whole answer")
    start.set_defaults(func=guarded("playbooks run", lambda a: run(a, settings_of)))
