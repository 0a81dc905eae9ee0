"""``autopilot playbooks validate|list|show``: check and read the playbook library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from config.playbooks import Playbook, load_playbook_library
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


def add_commands(commands: argparse._SubParsersAction, playbooks_dir_of) -> None:  # type: ignore[type-arg]
    """Register the verbs; ``playbooks_dir_of(args)`` says where the library is."""
    group = commands.add_parser("playbooks", help="validate, list and show playbooks")
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
