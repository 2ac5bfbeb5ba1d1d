//! The identity assurance hub: an OpenID Provider to relying parties, a relying party of
//! identity providers, with matching against department records in between.
//!
//! See `docs/ARCHITECTURE.md` for the map; [`Application`] is the entry point.

pub mod app;
mod clock;
pub mod config;
pub mod expiry;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod identity_provider;
pub mod journey;
pub mod level;
pub mod metrics;
mod reason;
pub mod records;
mod registry;
mod relying_party;
mod signing_keys;
pub mod telemetry;
pub mod verification_log;
mod web_edge;

pub use app::{Hub, StartError};
pub use config::Settings;
pub use reason::Reason;
pub use registry::holds_relying_party;
pub use web_edge::server::Application;
