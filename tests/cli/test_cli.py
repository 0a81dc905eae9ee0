"""The ``autopilot`` command: migrating a database and minting tokens the server accepts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from api.auth import signing_secret
from api.cli import main
from api.tokens import TokenService
from config.settings import Settings
from store.database import open_engine, schema_status


def test_db_upgrade_migrates_a_fresh_sqlite_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUTOPILOT_DATABASE_URL", raising=False)
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert "database at revision 0006 (head 0006)" in capsys.readouterr().out

    async def status():
        engine = open_engine(f"sqlite+aiosqlite:///{tmp_path / 'autopilot.db'}")
        try:
            return await schema_status(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(status()) == ("0006", "0006")


def test_token_is_signed_with_the_data_dir_secret_and_carries_the_claims(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUTOPILOT_JWT_SECRET", raising=False)
    assert main(["--data-dir", str(tmp_path), "token", "--tenant", "acme", "--sub", "ann",
                 "--role", "approver", "--role", "viewer", "--ttl-hours", "2"]) == 0
    token = capsys.readouterr().out.strip()
    secret = signing_secret(Settings(data_dir=tmp_path))
    principal = TokenService(secret).verify(token)
    assert (principal.tenant, principal.subject, principal.roles) == ("acme", "ann", {"approver", "viewer"})
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_a_token_from_another_secret_is_refused(tmp_path):
    other = TokenService("x" * 48).mint(tenant="acme", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
    with pytest.raises(Exception, match="not valid"):
        TokenService(signing_secret(Settings(data_dir=tmp_path))).verify(other)


BROKEN = 'id: x\nname: X\nsteps:\n  - id: a\n    name: A\n    action: notify\n    params: {to: "{exception.nope}"}\n'


def test_playbooks_validate_prints_file_line_and_message_and_fails(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert main(["playbooks", "validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:7: steps[0].params: step 'a': placeholder {{exception.nope}}" in err


def test_playbooks_validate_passes_on_the_shipped_library(capsys):
    assert main(["playbooks", "validate"]) == 0
    assert ", 0 problem(s)" in capsys.readouterr().out


def test_playbooks_list_and_show(capsys):
    assert main(["playbooks", "list"]) == 0
    listing = capsys.readouterr().out
    assert "payment-card-declined@1" in listing and "payments" in listing
    assert main(["playbooks", "show", "payment-card-declined"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("id: payment-card-declined\n") and "steps:" in shown
    assert main(["playbooks", "show", "no-such-playbook"]) == 1


def test_token_ttl_takes_units_and_queues_reach_the_claims(tmp_path, capsys, monkeypatch):
    import jwt

    monkeypatch.delenv("AUTOPILOT_JWT_SECRET", raising=False)
    assert main(["--data-dir", str(tmp_path), "token", "--tenant", "acme", "--sub", "ann", "--role", "operator",
                 "--queue", "kyc-analysts", "--ttl", "30m"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1800 and claims["queues"] == ["kyc-analysts"]
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "token", "--tenant", "acme", "--sub", "ann", "--role", "x", "--ttl", "soon"])
