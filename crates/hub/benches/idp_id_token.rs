//! Verifying the identity provider's ID token at `/idp/callback`. `upstream` checks the
//! signature with ring through `token::VerificationKeys` and then the claims with
//! `openidconnect` (signature check off); `openidconnect` alone would verify ES256
//! through RustCrypto's `p256`, about four times slower. Both are measured, next to
//! ring's verify (`crates/token/benches/tokens.rs`, "floor").

use std::hint::black_box;
use std::str::FromStr as _;

use criterion::{criterion_group, criterion_main, Criterion};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::json;

const IDP: &str = "https://idp.example.com";
const HUB_CLIENT_ID: &str = "identity-hub";
const NONCE: &str = "Mn4Op7Qr0St3Uv6Wx9Yz2Ab5Cd8Ef1Gh4Ij7Kl0Mn3";

fn bench(c: &mut Criterion) {
    let idp_key = token::SigningKey::generate().expect("idp key");
    let jwks: CoreJsonWebKeySet = serde_json::from_value(idp_key.jwks()).expect("jwks");
    // What a certified IdP returns for a P2 sign-in (the hub asks for acr_values).
    let jwt = idp_key
        .sign(&json!({
            "iss": IDP,
            "sub": "a2f1c3e4-9b7d-4e21-8c55-0d3f6a9e1b42",
            "aud": HUB_CLIENT_ID,
            "iat": 1_740_000_000,
            "exp": 4_000_000_000u64,
            "auth_time": 1_739_999_990,
            "nonce": NONCE,
            "acr": "P2",
            "amr": ["pwd", "otp"],
        }))
        .expect("sign");
    // Like `upstream`'s verifier: the same algorithm allow-list.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(HUB_CLIENT_ID.into()),
        IssuerUrl::new(IDP.into()).expect("issuer"),
        jwks,
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    ]);
    let nonce = Nonce::new(NONCE.into());
    let keys = token::VerificationKeys::from_jwks(&idp_key.jwks()).expect("keys");
    let expect = token::Expect {
        issuer: Some(IDP.into()),
        audience: vec![HUB_CLIENT_ID.into()],
        leeway_secs: 60,
    };
    let claims_only = verifier.clone().insecure_disable_signature_check();
    c.bench_function(
        "idp id_token verify (ring signature, openidconnect claims)",
        |b| {
            b.iter(|| {
                let raw = black_box(&jwt);
                let _: serde_json::Value = keys.verify(raw, &expect).expect("signature");
                let token = CoreIdToken::from_str(raw).expect("parse");
                token
                    .claims(&claims_only, &nonce)
                    .expect("claims")
                    .subject()
                    .len()
            })
        },
    );
    c.bench_function("idp id_token verify (openidconnect, ES256 via p256)", |b| {
        b.iter(|| {
            let token = CoreIdToken::from_str(black_box(&jwt)).expect("parse");
            token
                .claims(&verifier, &nonce)
                .expect("verify")
                .subject()
                .len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
