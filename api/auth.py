"""Who is calling and for which tenant. The tenant always comes from the verified token
(``api/tokens.py``), never from a body or a path."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from config.settings import Settings
from domain.errors import Unauthorized


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


PRINCIPAL = web.RequestKey[Principal]("principal")


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


QUERY_TOKEN = "accepts_query_token"
"""A handler attribute (set by ``accepts_query_token``): the route may take its token as
``?access_token=``, because a browser's ``EventSource`` cannot send headers. Only the event
streams are marked: a token in a URL can end up in logs and histories."""


def accepts_query_token(handler: Any) -> Any:
    setattr(handler, QUERY_TOKEN, True)
    return handler


def principal_from(request: web.Request, tokens: Any, *, query_token: bool = False) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` verified by ``tokens`` (a TokenService);
    with ``query_token``, from ``?access_token=`` when no header is sent."""
    header = request.headers.get("Authorization")
    if not header:
        in_query = request.query.get("access_token")
        if in_query and query_token:
            return tokens.verify(in_query.strip())
        if in_query:
            raise Unauthorized("a token in the query string is accepted only by the event streams; "
                               "send 'Authorization: Bearer <token>'")
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return tokens.verify(token.strip())
