//! The hub's per-journey cryptography: signing the RP's ID token, verifying an RP's
//! `private_key_jwt` client assertion, the pairwise `sub`, PKCE and random values, next to
//! ring's bare ES256 sign and verify of the same bytes (the "crypto floor"), so that the
//! cost of the JOSE wrapping above the floor is a measured number, not a guess.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::Deserialize;
use serde_json::json;
use token::{pkce_s256, random_opaque, Expect, PairwiseSecret, SigningKey, VerificationKeys};

const ISSUER: &str = "https://hub.example.gov.uk";
const CLIENT_ID: &str = "rp-tax-service";

/// Far enough in the future that `exp` never fails during a run.
const EXP: i64 = 4_000_000_000;

/// The claims `assertion::issue_tokens` signs for a matched citizen at level P2.
fn id_token_claims() -> serde_json::Value {
    json!({
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "Qm9vbGVhbiBwYWlyd2lzZSBpZCwgNDMgY2hhcnMxMjM",
        "iat": 1_740_000_000,
        "exp": 1_740_000_300,
        "auth_time": 1_739_999_950,
        "acr": "P2",
        "match": { "status": "matched", "record_id": "TAX-0001234567" },
        "nonce": "n-0S6_WzA2Mj-8fJ3kq1xZ4oQ",
        "vot": "Cl.Cm.P2",
    })
}

/// An RFC 7523 client assertion as an RP's OIDC library sends it to `/token`.
fn client_assertion_claims() -> serde_json::Value {
    json!({
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": format!("{ISSUER}/token"),
        "jti": "6f1c1d2e-8a54-4c1b-9b7e-0a4f3c2d1e0f",
        "iat": EXP - 60,
        "exp": EXP,
    })
}

/// What the token endpoint reads from a verified assertion.
#[derive(Deserialize)]
#[allow(dead_code)] // Fields are read by the hub, here only deserialised.
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
}

/// The ES256 signing input (`header.payload`) and the raw 64-byte signature of a JWS.
fn split_jws(jws: &str) -> (&str, Vec<u8>) {
    let dot = jws.rfind('.').expect("compact JWS");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&jws[dot + 1..])
        .expect("base64url signature");
    (&jws[..dot], sig)
}

fn wrappers(c: &mut Criterion) {
    let hub_key = SigningKey::generate().expect("hub key");
    let claims = id_token_claims();
    c.bench_function("id_token sign (SigningKey::sign, ES256)", |b| {
        b.iter(|| hub_key.sign(black_box(&claims)).expect("sign"))
    });

    // The RP's key pair; the hub knows only its JWKS.
    let rp_key = SigningKey::generate().expect("rp key");
    let rp_keys = VerificationKeys::from_jwks(&rp_key.jwks()).expect("jwks");
    let assertion = rp_key
        .sign(&client_assertion_claims())
        .expect("sign assertion");
    // As `token_endpoint::private_key_jwt` builds it.
    let expect = Expect {
        issuer: Some(CLIENT_ID.to_owned()),
        audience: vec![
            format!("{ISSUER}/token"),
            format!("{ISSUER}/par"),
            ISSUER.to_owned(),
        ],
        leeway_secs: 5,
    };
    c.bench_function("client_assertion verify (VerificationKeys::verify)", |b| {
        b.iter(|| {
            rp_keys
                .verify::<AssertionClaims>(black_box(&assertion), &expect)
                .expect("verify")
        })
    });

    let pairwise = PairwiseSecret::from_bytes(&[7u8; 32]);
    c.bench_function("pairwise_id (HMAC-SHA256)", |b| {
        b.iter(|| {
            pairwise.pairwise_id(
                black_box("https://tax.example.gov.uk"),
                "idp-post-office",
                "a2f1c3e4-9b7d-4e21-8c55-0d3f6a9e1b42",
            )
        })
    });
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    c.bench_function("pkce_s256", |b| b.iter(|| pkce_s256(black_box(verifier))));
    c.bench_function("random_opaque(32)", |b| {
        b.iter(|| random_opaque(black_box(32)))
    });
}

/// ring alone, on the signing input of a real ID token: what no wrapper can beat.
fn floor(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generate pkcs8");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key pair");
    let hub_key = SigningKey::from_pkcs8_der(pkcs8.as_ref()).expect("hub key");
    let jws = hub_key.sign(&id_token_claims()).expect("sign");
    let (message, signature) = split_jws(&jws);
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
    public
        .verify(message.as_bytes(), &signature)
        .expect("the wrapper's signature verifies with ring");

    c.bench_function("floor: ring ES256 sign", |b| {
        b.iter(|| {
            pair.sign(&rng, black_box(message.as_bytes()))
                .expect("sign")
        })
    });
    c.bench_function("floor: ring ES256 verify", |b| {
        b.iter(|| {
            public
                .verify(black_box(message.as_bytes()), &signature)
                .expect("verify")
        })
    });
    // What `SigningKey` saves by parsing its key once: `jsonwebtoken::encode` parses the
    // PKCS#8 document (and re-derives the public key) again on every signature.
    c.bench_function("floor: ring EcdsaKeyPair::from_pkcs8", |b| {
        b.iter(|| {
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                black_box(pkcs8.as_ref()),
                &rng,
            )
            .expect("key pair")
        })
    });
}

criterion_group!(benches, wrappers, floor);
criterion_main!(benches);
