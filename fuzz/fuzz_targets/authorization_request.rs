//! Authorization requests: arbitrary bytes as the query string of `GET /authorize` or the
//! form body of `POST /authorize` and `/par`, through the strict UTF-8 check of the
//! request_shape middleware, `serde_urlencoded` into the hub's parameters, and the
//! redirect URI and parameter checks (`hub::fuzzing::authorization_request`).
//!
//! Must never panic; an accepted request has the registered client and redirect URI, an
//! S256 challenge of 43 to 128 characters, the `openid` scope and a configured level.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hub::fuzzing::authorization_request(data);
});
