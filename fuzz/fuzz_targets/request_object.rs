//! Request objects (JAR, RFC 9101): arbitrary bytes as the JSON payload of a request
//! object whose signature verified, deserialised into the hub's claims type, through the
//! claim checks (`client_id`, lifetime, nesting, `vtr`) and then the same redirect URI
//! and parameter checks as a plain request (`hub::fuzzing::request_object`). The
//! signature itself is fuzzed by `jws_verify`.
//!
//! Must never panic; an accepted object carries the requesting client's id and no nested
//! request, and its `jti` is remembered no longer than an object may live.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hub::fuzzing::request_object(data);
});
