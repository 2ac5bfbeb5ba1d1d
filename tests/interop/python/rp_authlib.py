"""A relying party of the hub built with Authlib (run by tests/interop.rs).

Two steps, each one process, each printing one JSON object on stdout:

  python rp_authlib.py authorize '<json>'  discovery, then the authorization URL (PKCE S256,
                                           state, nonce): {"authorization_url", "state",
                                           "nonce", "code_verifier", "server"}
  python rp_authlib.py callback '<json>'   given the URL the browser was sent back to: the
                                           code exchange, the ID token validated as Authlib's
                                           own OpenID clients do, userinfo and, with
                                           "replay": true, the same code redeemed again.

<json>: {"issuer", "client_id", "redirect_uri", "auth": "client_secret_basic" |
"private_key_jwt", "client_secret"?, "key_file"? (PKCS#8 DER, P-256), "kid"?,
"acr_values"?, "callback_url"?, "state"?, "nonce"?, "code_verifier"?, "replay"?}

Token endpoint errors are results, printed as {"error": {...}} with exit code 0; anything
else is a crash (exit code 1, stderr). Authlib's defaults are kept on purpose, notably
its client assertions' lifetime (3,600 s): the callback reports the assertions it signed.
"""

import base64
import json
import sys

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from joserfc.jws import JWSRegistry

TIMEOUT_SECS = 10
SCOPE = "openid profile address"


class RecordingPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's `private_key_jwt`, unchanged, keeping the assertions it signed so the
    test can see their lifetime."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.signed = []

    def sign(self, auth, token_endpoint):
        assertion = super().sign(auth, token_endpoint)
        self.signed.append(assertion)
        return assertion


def discover(issuer):
    """The hub's metadata; its issuer must be exactly the one configured (OIDC Discovery 4.3)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with OAuth2Session(default_timeout=TIMEOUT_SECS) as session:
        response = session.get(url, withhold_token=True)
    response.raise_for_status()
    server = response.json()
    if server.get("issuer") != issuer:
        raise ValueError(f"discovery: issuer {server.get('issuer')!r} is not {issuer!r}")
    return server


def session_for(inp, server):
    """An OAuth2Session authenticating at the token endpoint as the RP registered."""
    common = dict(
        scope=SCOPE,
        redirect_uri=inp["redirect_uri"],
        code_challenge_method="S256",
        default_timeout=TIMEOUT_SECS,
    )
    if inp["auth"] == "client_secret_basic":
        return OAuth2Session(
            inp["client_id"],
            inp["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            **common,
        ), None
    if inp["auth"] == "private_key_jwt":
        with open(inp["key_file"], "rb") as f:
            key = ECKey.import_key(f.read())
        auth = RecordingPrivateKeyJWT(
            server["token_endpoint"], headers={"kid": inp["kid"]}, alg="ES256"
        )
        session = OAuth2Session(
            inp["client_id"], key, token_endpoint_auth_method=auth.name, **common
        )
        session.register_client_auth_method(auth)
        return session, auth
    raise ValueError(f"unknown auth method {inp['auth']}")


def authorize(inp):
    server = discover(inp["issuer"])
    session, _ = session_for(inp, server)
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(
        server["authorization_endpoint"],
        code_verifier=code_verifier,
        nonce=nonce,
        acr_values=inp.get("acr_values", "P2"),
    )
    return {
        "authorization_url": url,
        "state": state,
        "nonce": nonce,
        "code_verifier": code_verifier,
        "server": {"issuer": server["issuer"]},
    }


def redeem(session, server, inp):
    """The code exchange; Authlib checks `state` in the callback URL."""
    return session.fetch_token(
        server["token_endpoint"],
        authorization_response=inp["callback_url"],
        state=inp["state"],
        code_verifier=inp["code_verifier"],
    )


def id_token_claims(session, server, inp, token):
    """Validates the ID token the way Authlib's OpenID clients do (`parse_id_token`):
    the signature against the hub's `jwks_uri` with joserfc, then `CodeIDToken` checks
    `iss`, `aud`, `exp`, `iat`, `nonce` and `at_hash`."""
    response = session.get(server["jwks_uri"], withhold_token=True)
    response.raise_for_status()
    keys = KeySet.import_key_set(response.json())
    algorithms = server.get("id_token_signing_alg_values_supported")
    decoded = jwt.decode(
        token["id_token"],
        keys,
        registry=JWSRegistry(algorithms=algorithms, strict_check_header=False),
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"values": [server["issuer"]]}},
        {
            "nonce": inp["nonce"],
            "client_id": inp["client_id"],
            "access_token": token["access_token"],
        },
    )
    claims.validate(leeway=120)
    return dict(claims)


def userinfo(session, server, sub):
    response = session.get(server["userinfo_endpoint"])
    response.raise_for_status()
    info = response.json()
    # OIDC Core 5.3.2: the RP must check this itself (Authlib's UserInfo does not).
    if info.get("sub") != sub:
        raise ValueError(f"userinfo sub {info.get('sub')!r} is not the ID token's {sub!r}")
    return info


def describe(e):
    return {"name": type(e).__name__, "error": e.error, "description": e.description}


def payload(jws):
    """The claims of a compact JWS, unverified (only to report what Authlib signed)."""
    part = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def callback(inp):
    server = discover(inp["issuer"])
    session, auth = session_for(inp, server)
    try:
        token = redeem(session, server, inp)
    except OAuthError as e:
        return {"error": describe(e)}
    claims = id_token_claims(session, server, inp, token)
    result = {
        "token": {k: token.get(k) for k in ("token_type", "expires_in", "scope")},
        "id_token": token["id_token"],
        "id_token_claims": claims,
        "userinfo": userinfo(session, server, claims["sub"]),
    }
    if inp.get("replay"):
        try:
            redeem(session, server, inp)
            result["replay"] = {"redeemed_again": True}
        except OAuthError as e:
            result["replay"] = {"error": describe(e)}
    if auth:
        result["client_assertions"] = [payload(a) for a in auth.signed]
    return result


def main():
    steps = {"authorize": authorize, "callback": callback}
    if len(sys.argv) != 3 or sys.argv[1] not in steps:
        print("usage: rp_authlib.py authorize|callback <json>", file=sys.stderr)
        sys.exit(2)
    out = steps[sys.argv[1]](json.loads(sys.argv[2]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
