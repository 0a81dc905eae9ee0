"""The ``autopilot`` command: serve, migrate the database, mint development tokens."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta

from aiohttp import web

from api.app import create_app
from api.auth import signing_secret
from api.cli_ask import add_command as add_ask_command
from api.cli_playbooks import add_commands as add_playbook_commands
from api.cli_runs import add_commands as add_run_commands
from api.cluster import run_cluster
from api.demo import DEMO_TENANT, demo_feed
from api.keys import CATALOG
from api.logs import AccessLogger, configure_logging
from api.tokens import TokenService
from config.settings import SETTINGS_FILE_ENV, Settings
from pipeline.gc_tuning import tune_garbage_collector
from store.database import migrate, open_engine, schema_status
from store.sole_process import DatabaseInUse

DEMO_ROLES = ["viewer", "operator", "approver", "admin"]


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "settings", None):
        os.environ[SETTINGS_FILE_ENV] = args.settings
    overrides = {k: v for k in ("host", "port", "data_dir") if (v := getattr(args, k, None)) is not None}
    return Settings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.processes is not None:
        return run_cluster(args, settings)
    configure_logging(settings.log_level, settings.log_format)
    extra = [demo_feed(every_seconds=args.demo_interval)] if args.demo else []
    app = create_app(settings, extra_contexts=extra)
    base = f"http://{settings.host}:{settings.port}"

    async def announce(_: web.Application) -> None:
        tune_garbage_collector()
        if args.demo:
            tokens = TokenService.from_settings(settings, signing_secret(settings))
            ttl = timedelta(hours=settings.token_ttl_hours)
            queues = sorted({s.assignee.removeprefix("queue:") for p in app[CATALOG].playbooks.values()
                             for s in p.steps if s.assignee and s.assignee.startswith("queue:")})
            token = tokens.mint(tenant=DEMO_TENANT, subject="demo", roles=DEMO_ROLES, ttl=ttl, queues=queues)
            print(f"\nAutopilot is running on {base} with demo tenant '{DEMO_TENANT}'.\n")
            print(f"Bearer token (tenant {DEMO_TENANT}, roles {', '.join(DEMO_ROLES)}, every work queue):\n\n{token}\n")
            print(f"Dashboard (signs you in with that token): {base}/#token={token}\n")
            print("One token per role, to see what each may do:")
            for role in DEMO_ROLES:
                one = tokens.mint(tenant=DEMO_TENANT, subject=f"demo-{role}", roles=[role], ttl=ttl,
                                  queues=queues if role == "operator" else [])
                print(f"  {role:<9} {one}")
            print()
            print("Try:")
            print(f"  export TOKEN={token}")
            print(f'  curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/runs')
            print(f'  curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/runs/pending-action')
            print(f'  curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/workflows')
            print(f"  {base}/openapi.json   {base}/healthz   {base}/readyz\n", flush=True)
        else:
            print(f"Autopilot is running on {base}", flush=True)

    app.on_startup.append(announce)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=10,
                    access_log_class=AccessLogger)
    except DatabaseInUse as exc:
        print(f"autopilot serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run() -> tuple[str | None, str | None]:
        engine = open_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
            return await schema_status(engine)
        finally:
            await engine.dispose()

    current, head = asyncio.run(run())
    print(f"database at revision {current} (head {head})")
    return 0


def _duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    try:
        value = float(number)
    except ValueError:
        value = -1
    if unit not in units or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 8h or 7d")
    return timedelta(**{units[unit]: value})


def _token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.ttl is not None:
        ttl = args.ttl
    else:
        ttl = timedelta(hours=args.ttl_hours if args.ttl_hours is not None else settings.token_ttl_hours)
    tokens = TokenService.from_settings(settings, signing_secret(settings))
    print(tokens.mint(tenant=args.tenant, subject=args.sub, roles=args.role, ttl=ttl, queues=args.queue))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="autopilot", description=__doc__)
    root.add_argument("--settings", help="TOML settings file (also AUTOPILOT_SETTINGS_FILE)")
    root.add_argument("--data-dir", dest="data_dir", help="where the SQLite file and keys live")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service and the pipeline")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", help="feed the demo tenant with sample exceptions")
    serve.add_argument("--demo-interval", type=float, default=4.0, help="seconds between demo exceptions")
    serve.add_argument("--processes", type=int, metavar="N",
                       help="a local cluster: N server processes on ports --port, --port+1, ... (PostgreSQL only "
                            "for N > 1), migrated once and supervised by this one")
    serve.add_argument("--create-database", action="store_true",
                       help="with --processes: create the PostgreSQL database first if it does not exist")
    serve.set_defaults(func=_serve)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations up to the newest").set_defaults(func=_db_upgrade)

    token = commands.add_parser("token", help="mint a development token with the configured key")
    token.add_argument("--tenant", required=True)
    token.add_argument("--sub", required=True)
    token.add_argument("--role", action="append", required=True, help="repeat for several roles")
    token.add_argument("--queue", action="append", default=[], help="a work queue; repeat for several")
    token.add_argument("--ttl", type=_duration, help="lifetime such as 30m, 8h or 7d")
    token.add_argument("--ttl-hours", type=float, help=argparse.SUPPRESS)
    token.set_defaults(func=_token)

    add_playbook_commands(commands, _settings)
    add_run_commands(commands, _settings)
    add_ask_command(commands, _settings)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
