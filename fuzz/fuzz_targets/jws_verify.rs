//! Compact JWS from peers (IdP ID tokens, RP client assertions, matching-service
//! responses): arbitrary bytes through `token::unverified_issuer`, JWKS parsing and
//! `token::VerificationKeys::verify` with EC (P-256, P-384) and RSA keys, with and
//! without kids.
//!
//! Must never panic, and must never accept a token that no fixture key signed: the
//! only private key here is the P-256 one, so anything else that verifies is a bug.

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// A fixed P-256 key (PKCS#8, test fixture only), so the seed corpus can hold
/// tokens that verify and the fuzzer can start from the success path.
const P256_PKCS8_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglwpbLs/jhtTdbdr3Jjnw5J5I0zoC3fml9QOqucNmaVuhRANCAAREcrw/7Uee7VQlT0/986n7mD5cNin3vvsrzU17WMQrMMTWczuxtZy0y9CzkQ8O7Hqs77+wavQC/5O/233Znpkc";

/// Public parts of a P-384 and a 2048-bit RSA key (`openssl` generated).
const P384_X: &str = "tIMW0Jl5KEE3fLxim9oxyhBf8si-4aPjzV4dwc2SLP0rtlZZf8tEu_M33TTAtzEu";
const P384_Y: &str = "n0ST5wpaVg06EsgH6bodhjXbAE-gpLyfNW4bi233CI1p1_IFku6UTon9JitRoMZp";
const RSA_2048_N: &str = "hKTtrzl0giJ5Wle-uoqAPBMYCUvSlFA0T7gyKmIyMbErk36EsLTOszjHr9G6-RHXQjQjeZMUNPmFGEncTHQ4v-SJF7xDgtIfgf_g4VRi_J0x7nlB_Xk27LfOBftKgzmo5xp6ERXyKbaXSJgpcTW-vFNrUVEDAtTkdMnBTSgfxHjbxV3F63ZfsW4QybrL0hZwO2EqV0GufvFx6YBCI_aBmHFyJTXGe1L-K9AzgSt0YHT2amN8MY4pPEXR0tnU-Yy_e-tMqC5-Iif655RQqm8mwnSkr_oHwAdGRDtl2WbYG8U8zTpMOP6dD4JnyYFDWFitO0xRgVxwdUIN7iHQQcHHJw";

struct Fixture {
    /// kid "es256" (the fixture key), a P-384 key without kid, RSA keys "rs256" and "ps256".
    keys: token::VerificationKeys,
    /// The same JWKS with only the fixture key, kid removed (exercises kid-less selection).
    single: token::VerificationKeys,
    p256_kid: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let der = base64::engine::general_purpose::STANDARD
        .decode(P256_PKCS8_B64)
        .expect("fixture key");
    let key = token::SigningKey::from_pkcs8_der(&der).expect("fixture key");
    let mut p256 = key.public_jwk();
    let p256_kid = key.kid().to_owned();
    let rsa = |kid: &str, alg: &str| json!({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": RSA_2048_N, "e": "AQAB"});
    let keys = token::VerificationKeys::from_jwks(&json!({"keys": [
        p256.clone(),
        {"kty": "EC", "crv": "P-384", "x": P384_X, "y": P384_Y},
        rsa("rs256", "RS256"),
        rsa("ps256", "PS256"),
    ]}))
    .expect("fixture jwks");
    if let Some(o) = p256.as_object_mut() {
        o.remove("kid");
    }
    let single = token::VerificationKeys::from_jwks(&json!({"keys": [p256]})).expect("single");
    Fixture {
        keys,
        single,
        p256_kid,
    }
});

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    // The same bytes as header, payload and signature (split at newlines), each
    // base64url-encoded, so mutations reach the JSON inside instead of dying at
    // base64 decoding.
    let encoded: Vec<String> = data
        .splitn(3, |b| *b == b'\n')
        .map(|part| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part))
        .collect();
    check(&encoded.join("."));
});

fn check(text: &str) {
    let fixture = &*FIXTURE;
    let _ = token::unverified_issuer(text);
    // A peer's JWKS is untrusted input too.
    let _ = token::VerificationKeys::from_jwks_json(text);

    let strict = token::Expect {
        issuer: Some("https://idp.example".into()),
        audience: vec!["hub".into()],
        leeway_secs: 30,
    };
    let lax = token::Expect {
        issuer: None,
        audience: vec![],
        leeway_secs: u64::MAX,
    };
    for keys in [&fixture.keys, &fixture.single] {
        for expect in [&strict, &lax] {
            if keys.verify::<serde_json::Value>(text, expect).is_ok() {
                // Only the fixture P-256 key can have signed it: ES256, and its kid
                // (or none, for the kid-less set).
                let header = text.split('.').next().unwrap_or_default();
                let header: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(header)
                    .ok()
                    .and_then(|h| serde_json::from_slice(&h).ok())
                    .expect("a verified token has a JSON header");
                assert_eq!(header["alg"], "ES256", "{text}");
                assert!(
                    header.get("kid").is_none() || header["kid"] == fixture.p256_kid.as_str(),
                    "{text}"
                );
            }
        }
    }
}
