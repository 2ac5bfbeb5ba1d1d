//! End-to-end tests: the hub, demo IdPs and RPs on loopback ports, driven over real HTTP
//! by a client with a cookie jar that follows redirects and posts the pages' forms.
//!
//! One test binary (as ripgrep does) to keep link time down on small machines.

#![allow(unreachable_pub, clippy::unwrap_used)]

mod util;

mod interop;
mod journey;
mod logs;
mod match_batch;
mod matching_service;
mod protocol;
mod proxy;
mod scale;
mod verification_log;
