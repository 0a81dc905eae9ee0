"""Token verification: each way a token is refused, and the asymmetric keys (PEM, JWKS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.tokens import TokenService
from domain.errors import Unauthorized

SECRET = "s" * 48
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def claims(**overrides):
    base = {"sub": "ann", "tenant": "acme", "roles": ["viewer"], "exp": datetime.now(UTC) + timedelta(minutes=5)}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict, body: dict, key: bytes | None) -> str:
    """A token assembled by hand, for headers PyJWT would not produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body, default=str).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def refused(service: TokenService, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        service.verify(token)
    return caught.value.message


def test_a_good_hs256_token_gives_the_principal():
    token = jwt.encode(claims(queues=["ops"]), SECRET, algorithm="HS256")
    principal = TokenService(SECRET).verify(token)
    assert (principal.subject, principal.tenant, principal.roles, principal.queues) == (
        "ann", "acme", {"viewer"}, {"ops"})


def test_a_bad_signature_is_refused():
    assert "not valid" in refused(TokenService(SECRET), jwt.encode(claims(), "t" * 48, algorithm="HS256"))


def test_alg_none_is_refused():
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    token = handmade({"alg": "none", "typ": "JWT"}, claims(exp=exp), None)
    assert "algorithm 'none' is not accepted" in refused(TokenService(SECRET), token)


def test_an_algorithm_that_is_not_configured_is_refused():
    token = jwt.encode(claims(), SECRET, algorithm="HS384")
    assert "'HS384' is not accepted" in refused(TokenService(SECRET), token)


def test_a_public_key_cannot_be_used_as_an_hmac_secret():
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    forged = handmade({"alg": "HS256", "typ": "JWT"}, claims(exp=exp), RSA_PUBLIC_PEM)
    rs_only = TokenService(SECRET, algorithms=("RS256",), public_key_pem=RSA_PUBLIC_PEM)
    assert "'HS256' is not accepted" in refused(rs_only, forged)
    both = TokenService(SECRET, algorithms=("HS256", "RS256"), public_key_pem=RSA_PUBLIC_PEM)
    assert "Signature verification failed" in refused(both, forged)


def test_expiry_has_a_small_leeway():
    service = TokenService(SECRET, leeway_seconds=30)
    just_expired = jwt.encode(claims(exp=datetime.now(UTC) - timedelta(seconds=10)), SECRET, algorithm="HS256")
    assert service.verify(just_expired).subject == "ann"
    long_expired = jwt.encode(claims(exp=datetime.now(UTC) - timedelta(minutes=5)), SECRET, algorithm="HS256")
    assert refused(service, long_expired) == "the token has expired"


@pytest.mark.parametrize("missing", ["sub", "tenant", "roles", "exp"])
def test_each_required_claim_is_required(missing):
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    assert refused(TokenService(SECRET), token) == f"the token lacks the '{missing}' claim"


def test_audience_and_issuer_are_checked_when_configured():
    service = TokenService(SECRET, audience="autopilot", issuer="https://idp.example")
    good = jwt.encode(claims(aud="autopilot", iss="https://idp.example"), SECRET, algorithm="HS256")
    assert service.verify(good).subject == "ann"
    wrong_aud = jwt.encode(claims(aud="other", iss="https://idp.example"), SECRET, algorithm="HS256")
    assert refused(service, wrong_aud) == "the token is for another audience"
    wrong_iss = jwt.encode(claims(aud="autopilot", iss="https://evil.example"), SECRET, algorithm="HS256")
    assert refused(service, wrong_iss) == "the token is from another issuer"
    assert refused(service, jwt.encode(claims(iss="https://idp.example"), SECRET, algorithm="HS256")) == (
        "the token lacks the 'aud' claim")
    minted = service.mint(tenant="acme", subject="ann", roles=[], ttl=timedelta(minutes=1))
    assert service.verify(minted).tenant == "acme"


def test_rs256_with_a_pem_public_key():
    service = TokenService(SECRET, algorithms=("RS256",), public_key_pem=RSA_PUBLIC_PEM)
    assert service.verify(jwt.encode(claims(), RSA_KEY, algorithm="RS256")).subject == "ann"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "not valid" in refused(service, jwt.encode(claims(), other, algorithm="RS256"))


def test_es256_with_a_jwks_picks_the_key_by_kid():
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    jwks = {"keys": [{**public, "kid": "k1", "alg": "ES256", "use": "sig"}]}
    service = TokenService(SECRET, algorithms=("ES256",), jwks=jwks)
    token = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "k1"})
    assert service.verify(token).subject == "ann"
    unknown = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "k9"})
    assert refused(service, unknown) == "no key 'k9' in the JWKS"
    assert "names no 'kid'" in refused(service, jwt.encode(claims(), EC_KEY, algorithm="ES256"))


def test_asymmetric_algorithms_need_a_key():
    with pytest.raises(ValueError, match="need a public key file or a JWKS file"):
        TokenService(SECRET, algorithms=("RS256",))


def test_a_token_whose_algorithm_does_not_fit_its_key_is_refused_not_an_error():
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    service = TokenService(SECRET, algorithms=("RS256", "ES256"), jwks={"keys": [{**rsa_jwk, "kid": "k1"}]})
    token = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "k1"})
    assert "does not fit its key" in refused(service, token)


def test_a_token_accepted_before_is_refused_once_it_expires():
    """Verified tokens are remembered (a client sends the same one on every request), but only
    for as long as they are valid."""
    service = TokenService(SECRET, leeway_seconds=0)
    expires = int(time.time()) + 2
    token = jwt.encode(claims(exp=expires), SECRET, algorithm="HS256")
    assert service.verify(token).subject == "ann"
    assert service.verify(token).subject == "ann"
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    assert "expired" in refused(service, token)
