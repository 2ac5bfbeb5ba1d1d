//! Logging: structured (JSON) or human-readable lines through `tracing`.
//!
//! Nothing in the hub logs personal data: datasets and identities have hand-written
//! `Debug` impls that omit it, and handlers log ids, steps and reason codes only.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; `RUST_LOG` overrides the default filter.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_web=warn"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
