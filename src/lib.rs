//! The hub is built from the crates under `crates/`; this package holds the end-to-end tests.
