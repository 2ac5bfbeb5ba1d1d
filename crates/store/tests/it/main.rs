//! The integration tests of the store, in one binary (one link instead of one per file).

mod audit;
mod common;
mod database;
mod redis;
mod session_contract;
