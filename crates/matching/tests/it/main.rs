//! The integration tests of the matching engine, in one binary (one link instead of one per file).

mod decisions;
mod matching;
mod never_panics;
