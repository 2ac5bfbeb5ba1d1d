//! The integration tests of the verification log crate, in one binary (one link instead of one per file).

mod export;
mod tree;
