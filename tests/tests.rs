//! End-to-end tests: the hub, demo IdPs and RPs on loopback ports, driven over real HTTP
//! by a client with a cookie jar that follows redirects and posts the pages' forms.
//!
//! One test binary (as ripgrep does) to keep link time down on small machines.

#![allow(unreachable_pub, clippy::unwrap_used)]

mod programs;
mod util;

mod attacks;
mod browser;
mod browser_security;
mod expiry;
mod interop;
mod journey;
mod key_rotation;
mod limits;
mod load_generator;
mod logs;
mod match_batch;
mod matching_service;
mod ops_kit;
mod pages;
mod par_jar;
mod protocol;
mod proxy;
mod records_import;
mod registry;
mod scale;
mod test_script;
mod tls;
mod verification_log;
