"""JWT access-token validation (:mod:`interlude.api.oauth`) and the built-in authorization server's rules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from interlude.api.oauth import ADMIN_SCOPE, InvalidToken, Principal, StaticJwks, TokenValidator, load_oauth
from interlude.errors import ConfigError
from interlude.service.platform.authz import (
    ASSERTION_TYPE,
    AuthorizationServer,
    Client,
    OAuthError,
    hash_secret,
    load_clients,
    verify_secret,
)

ISS, AUD = "https://as.test", "https://partner.test"


class Keys:
    """A signing key of a test issuer and the JWKS a validator trusts (changeable, to rotate)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", auto_kid=True)
        self.published = [self.key]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published]}

    def mint(self, key: ECKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISS, "aud": AUD, "sub": "alpha-app", "iat": now, "exp": now + 300, "scope": "serviceFind"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signer = key or self.key
        return jwt.encode({"alg": "ES256", "kid": signer.kid}, body, signer, algorithms=["ES256"])


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def validator(keys: Keys) -> TokenValidator:
    return TokenValidator(ISS, AUD, StaticJwks(keys.jwks), {"alpha-app": "sp-alpha", "ops": "operator"}, leeway_s=5)


async def test_a_valid_token_gives_the_mapped_buyer_and_its_scopes(keys: Keys, validator: TokenValidator) -> None:
    principal = await validator.validate(keys.mint(scope="serviceFind serviceGet"))
    assert principal == Principal("alpha-app", "sp-alpha", frozenset({"serviceFind", "serviceGet"}))
    assert (await validator.validate(keys.mint(sub="nobody"))).buyer is None
    listed = await validator.validate(keys.mint(scope=None, scp=["a", "b"]))
    assert listed.scopes == {"a", "b"}


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": -60},
        {"nbf": +60},
        {"aud": "https://someone-else.test"},
        {"iss": "https://evil.test"},
        {"exp": None},
        {"iss": None},
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "wrong-iss", "no-exp", "no-iss"],
)
async def test_a_token_failing_a_claim_is_refused(
    keys: Keys, validator: TokenValidator, claims: dict[str, Any]
) -> None:
    # Time claims are offsets from now, resolved when the token is minted (a collection-time timestamp would
    # drift into validity in a long session).
    now = int(time.time())
    resolved = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in claims.items()}
    with pytest.raises(InvalidToken):
        await validator.validate(keys.mint(**resolved))


async def test_a_token_signed_by_another_key_or_unsigned_is_refused(keys: Keys, validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken):
        await validator.validate(keys.mint(ECKey.generate_key("P-256", auto_kid=True)))
    good = keys.mint()
    header, payload, _ = good.split(".")
    with pytest.raises(InvalidToken):
        await validator.validate(f"{header}.{payload}.")
    with pytest.raises(InvalidToken):
        await validator.validate("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FzLnRlc3QifQ.")
    with pytest.raises(InvalidToken):
        await validator.validate("not-a-jwt")


async def test_rotated_keys_are_followed(keys: Keys, validator: TokenValidator) -> None:
    old = keys.mint()
    new_key = ECKey.generate_key("P-256", auto_kid=True)
    keys.published = [keys.key, new_key]
    assert (await validator.validate(keys.mint(new_key))).buyer == "sp-alpha"
    keys.published = [new_key]  # the old key is withdrawn: its tokens stop being accepted
    with pytest.raises(InvalidToken):
        await validator.validate(old)


def test_scopes_are_operation_ids_and_profile_changes_need_the_admin_scope() -> None:
    p = Principal("s", "sp-alpha", frozenset({"serviceFind", "performanceMonitoring.registerListener"}))
    assert p.grants("serviceInventory", "serviceFind")
    assert not p.grants("serviceInventory", "serviceGet")
    assert p.grants("performanceMonitoring", "registerListener")
    assert not p.grants("alarmManagement", "registerListener")
    assert not Principal("s", "b", frozenset({"createPerformanceProfile"})).grants("x", "createPerformanceProfile")
    assert Principal("s", "b", frozenset({"createPerformanceProfile", ADMIN_SCOPE})).grants(
        "x", "createPerformanceProfile"
    )


def test_secrets_are_kept_hashed_and_salted() -> None:
    stored = hash_secret("s3cret-value")
    assert "s3cret" not in stored and stored != hash_secret("s3cret-value")
    assert verify_secret("s3cret-value", stored)
    assert not verify_secret("s3cret-valuf", stored)
    assert not verify_secret("x", "plain-text")


def test_a_clients_file_with_a_clear_secret_or_unknown_buyer_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "clients.yaml"
    file.write_text("clients:\n  - {client_id: a, buyer: sp-alpha, scopes: ['*'], secret: hunter2}\n")
    with pytest.raises(ConfigError, match="secret_hash"):
        load_clients(file, {"sp-alpha"})
    file.write_text("clients:\n  - {client_id: a, buyer: sp-alpha, scopes: ['*'], secret_hash: hunter2}\n")
    with pytest.raises(ConfigError, match="never the secret"):
        load_clients(file, {"sp-alpha"})
    file.write_text(f"clients:\n  - {{client_id: a, buyer: sp-zeta, secret_hash: '{hash_secret('x')}'}}\n")
    with pytest.raises(ConfigError, match="sp-zeta"):
        load_clients(file, {"sp-alpha"})
    file.write_text(
        f"clients:\n  - {{client_id: a, buyer: sp-alpha, scopes: [list*], secret_hash: '{hash_secret('x')}'}}\n"
    )
    assert load_clients(file, {"sp-alpha"})["a"].allows("listPerformanceJob")


def test_a_resource_server_file_maps_subjects_to_known_buyers(tmp_path: Path) -> None:
    file = tmp_path / "oauth.yaml"
    file.write_text(f"issuer: {ISS}\naudience: {AUD}\njwks_uri: {ISS}/jwks\nsubjects: {{c1: sp-alpha, c2: operator}}\n")
    v = load_oauth(file, {"sp-alpha"})
    assert (v.issuer, v.audience, dict(v.subjects)) == (ISS, AUD, {"c1": "sp-alpha", "c2": "operator"})
    file.write_text(f"issuer: {ISS}\naudience: {AUD}\njwks_uri: {ISS}/jwks\nsubjects: {{c1: sp-zeta}}\n")
    with pytest.raises(ConfigError, match="sp-zeta"):
        load_oauth(file, {"sp-alpha"})


def server(**clients: Client) -> AuthorizationServer:
    return AuthorizationServer(ISS, AUD, clients, {"serviceFind", "serviceGet", "createServiceOrder", ADMIN_SCOPE})


def test_the_server_grants_only_allowed_known_scopes() -> None:
    s = server(a=Client("a", "sp-alpha", ("service*",), hash_secret("pw")))
    scopes, body = s.grant(s.authenticate_basic("a", "pw"), None)
    assert scopes == ["serviceFind", "serviceGet"] and body["token_type"] == "Bearer"
    assert s.grant(s.clients["a"], "openid serviceFind")[0] == ["openid", "serviceFind"]
    with pytest.raises(OAuthError) as err:
        s.grant(s.clients["a"], "createServiceOrder")
    assert err.value.error == "invalid_scope"
    with pytest.raises(OAuthError) as err:
        s.authenticate_basic("a", "wrong")
    assert (err.value.error, err.value.status) == ("invalid_client", 401)


def test_private_key_jwt_assertions_are_checked_and_not_replayable() -> None:
    client_key = ECKey.generate_key("P-256", auto_kid=True)
    public = KeySet.import_key_set({"keys": [client_key.as_dict(private=False)]})
    s = server(b=Client("b", "sp-beta", ("*",), None, public))

    def assertion(**over: Any) -> str:
        now = int(time.time())
        claims = {"iss": "b", "sub": "b", "aud": s.token_endpoint, "exp": now + 60, "jti": str(time.time_ns())}
        claims.update(over)
        return jwt.encode({"alg": "ES256", "kid": client_key.kid}, claims, client_key, algorithms=["ES256"])

    first = assertion()
    assert s.authenticate_assertion(first, None).buyer == "sp-beta"
    for bad in (first, assertion(aud="https://elsewhere"), assertion(exp=int(time.time()) - 120), assertion(iss="a")):
        with pytest.raises(OAuthError):
            s.authenticate_assertion(bad, "b")
    other = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode({"alg": "ES256"}, {"iss": "b", "sub": "b", "aud": ISS, "exp": int(time.time()) + 60,
                                          "jti": "x"}, other, algorithms=["ES256"])  # fmt: skip
    with pytest.raises(OAuthError):
        s.authenticate_assertion(forged, "b")
    assert ASSERTION_TYPE.endswith("jwt-bearer")


async def test_the_server_signs_with_a_rotated_key_and_still_publishes_the_old_one() -> None:
    s = server(a=Client("a", "sp-alpha", ("*",), hash_secret("pw")))
    v = TokenValidator(ISS, AUD, StaticJwks(s.jwks), s.buyers())
    before = s.grant(s.clients["a"], None)[1]["access_token"]
    new_kid = s.rotate()
    after = s.grant(s.clients["a"], None)[1]["access_token"]
    assert {k["kid"] for k in s.jwks()["keys"]} >= {new_kid}
    assert len(s.jwks()["keys"]) == 2
    assert (await v.validate(before)).buyer == (await v.validate(after)).buyer == "sp-alpha"
