"""Bearer JWTs (PyJWT): who is calling and for which tenant. The tenant always comes from
the token, never from a body or a path."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from aiohttp import web

from config.settings import Settings
from pipeline.errors import Unauthorized

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", "Principal")  # type: ignore[arg-type]
REQUIRED_CLAIMS = ("sub", "tenant", "roles", "exp")
MAX_SUBJECT = 120  # the actor "user:<sub>" must fit the store's 128 characters
TENANT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]
    queues: frozenset[str] = frozenset()
    """Work queues the caller works from (the optional ``queues`` claim): steps assigned to
    ``queue:<name>`` are theirs to complete."""

    @property
    def actor(self) -> str:
        return f"user:{self.subject}"


class TokenService:
    """Mints and verifies HS256 tokens with one configured secret; no other algorithm is accepted."""

    algorithm = "HS256"

    def __init__(self, secret: str, *, leeway_seconds: float = 30) -> None:
        self._secret = secret
        self._leeway = leeway_seconds

    def mint(
        self, *, tenant: str, subject: str, roles: list[str], ttl: timedelta, queues: list[str] = ()  # type: ignore[assignment]
    ) -> str:
        now = datetime.now(UTC)
        claims = {"sub": subject, "tenant": tenant, "roles": roles, "iat": now, "exp": now + ttl}
        if queues:
            claims["queues"] = list(queues)
        return jwt.encode(claims, self._secret, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the token lacks the '{exc.claim}' claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from exc
        roles = claims["roles"]
        sub, tenant = claims["sub"], claims["tenant"]
        if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT:
            raise Unauthorized(f"the token's sub must be a string of 1 to {MAX_SUBJECT} characters")
        if not isinstance(tenant, str) or not TENANT_ID.match(tenant):
            raise Unauthorized("the token's tenant must be 1 to 64 letters, digits, '.', '_' or '-'")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("the token's roles must be a list of strings")
        queues = claims.get("queues", [])
        if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            raise Unauthorized("the token's queues must be a list of strings")
        return Principal(sub, tenant, frozenset(roles), frozenset(queues))


def signing_secret(settings: Settings) -> str:
    """The configured secret, or one generated into the data directory on first start."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = Path(settings.data_dir) / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def principal_from(request: web.Request, tokens: TokenService) -> Principal:
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return tokens.verify(token.strip())
