//! The identity assurance hub: an OpenID Provider to relying parties, a relying party of
//! identity providers, with matching against department records in between.
//!
//! See `docs/ARCHITECTURE.md` for the map; [`Application`] is the entry point.

pub mod app;
mod assertion;
pub mod audit_checkpoints;
pub mod audit_trail;
mod clock;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod idp_breaker;
mod idp_http;
pub mod journey;
pub mod level;
mod matching_step;
pub mod metrics;
mod reason;
pub mod records;
mod relying_party;
pub mod retention;
pub mod telemetry;
mod upstream;
mod web_edge;

pub use app::{Hub, StartError};
pub use config::Settings;
pub use reason::Reason;
pub use web_edge::server::Application;
