"""Bearer JWTs (PyJWT): minting development tokens and verifying every request's token.

HS256 with the configured secret by default; RS256/ES256 with a PEM public key or a JWKS file.
The algorithm is checked against the configured list before any key is chosen, and the key is
chosen by the algorithm's family, so an HS256 token cannot be "signed" with a public key."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from api.auth import Principal
from config.settings import Settings
from domain.errors import Unauthorized

REQUIRED_CLAIMS = ("sub", "tenant", "roles", "exp")
MAX_SUBJECT = 120  # the actor "user:<sub>" must fit the store's 128 characters
TENANT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


VERIFIED_CACHE = 4096
"""Verified tokens remembered at most (forgotten all at once when full)."""


class TokenService:
    def __init__(
        self,
        secret: str,
        *,
        algorithms: tuple[str, ...] = ("HS256",),
        public_key_pem: bytes | None = None,
        jwks: dict[str, Any] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_seconds: float = 30,
    ) -> None:
        asymmetric = [a for a in algorithms if not a.startswith("HS")]
        if asymmetric and public_key_pem is None and jwks is None:
            raise ValueError(f"{', '.join(asymmetric)} need a public key file or a JWKS file")
        self._secret = secret
        self._algorithms = tuple(algorithms)
        self._public_key = jwt.algorithms.get_default_algorithms()[asymmetric[0]].prepare_key(
            public_key_pem
        ) if asymmetric and public_key_pem else None
        self._jwks = jwt.PyJWKSet.from_dict(jwks) if jwks else None
        self._audience, self._issuer, self._leeway = audience, issuer, leeway_seconds
        self._verified: dict[str, tuple[Principal, float, float]] = {}
        """Tokens already verified, with the window (nbf, exp) in which they stay valid: a client
        sends the same token on every request, and checking its signature and claims again was
        8% of a server's CPU under load. Keys never change while the process runs."""

    @classmethod
    def from_settings(cls, settings: Settings, secret: str) -> TokenService:
        pem = Path(settings.jwt_public_key_file).read_bytes() if settings.jwt_public_key_file else None
        jwks = json.loads(Path(settings.jwt_jwks_file).read_text()) if settings.jwt_jwks_file else None
        return cls(secret, algorithms=tuple(settings.jwt_algorithms), public_key_pem=pem, jwks=jwks,
                   audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                   leeway_seconds=settings.jwt_leeway_seconds)

    def mint(
        self, *, tenant: str, subject: str, roles: list[str], ttl: timedelta,
        queues: Sequence[str] = (),
    ) -> str:
        """A development token, HS256 with the configured secret (with ``aud``/``iss`` if set)."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {"sub": subject, "tenant": tenant, "roles": roles, "iat": now, "exp": now + ttl}
        if queues:
            claims["queues"] = list(queues)
        if self._audience:
            claims["aud"] = self._audience
        if self._issuer:
            claims["iss"] = self._issuer
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _key_for(self, algorithm: str, kid: str | None) -> Any:
        if algorithm.startswith("HS"):
            return self._secret
        if self._jwks is not None:
            if kid is None:
                raise Unauthorized("the token names no 'kid' to pick a key from the JWKS")
            try:
                return self._jwks[kid].key
            except KeyError as exc:
                raise Unauthorized(f"no key '{kid}' in the JWKS") from exc
        return self._public_key

    def verify(self, token: str) -> Principal:
        """The token's principal; ``Unauthorized`` saying why when it is not valid (now)."""
        known = self._verified.get(token)
        if known is not None:
            principal, not_before, expires = known
            if not_before <= time.time() < expires:
                return principal
            del self._verified[token]
        principal, claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()
        self._verified[token] = (
            principal, float(claims.get("nbf", 0)) - self._leeway, float(claims["exp"]) + self._leeway
        )
        return principal

    def _verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from exc
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise Unauthorized(f"the token's algorithm {algorithm!r} is not accepted")
        required = list(REQUIRED_CLAIMS) + (["aud"] if self._audience else []) + (["iss"] if self._issuer else [])
        try:
            claims = jwt.decode(
                token, self._key_for(algorithm, header.get("kid")), algorithms=[algorithm],
                audience=self._audience, issuer=self._issuer, leeway=self._leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the token lacks the '{exc.claim}' claim") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("the token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("the token is from another issuer") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from exc
        except (TypeError, ValueError) as exc:  # a key of another family than the token's algorithm
            raise Unauthorized(f"the token's algorithm {algorithm} does not fit its key") from exc
        return _principal(claims), claims


def _principal(claims: dict[str, Any]) -> Principal:
    sub, tenant, roles = claims["sub"], claims["tenant"], claims["roles"]
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
