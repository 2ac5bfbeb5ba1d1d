//! The matching deployable: the standalone matching service a department runs next to its
//! own records (`hub matching-service`), the signed protocol between it and the hub, the
//! hub's client of it, and the offline modes (`hub match batch`, `hub match evaluate`).
//! Every one of them decides through [`decide_locally`] or asks a service that does, so
//! a record is matched the same way wherever it lives (docs/matching-service.md).
//!
//! Depends on `matching`, `store` and `token`, never on the hub: the hub depends on this
//! crate for its client, and its configuration embeds [`MatchingServiceSettings`].

pub mod batch;
pub mod client;
pub mod evaluate;
mod keys;
mod local;
pub mod protocol;
mod server;
mod settings;

pub use client::{
    RemoteFailure, RemoteMatching, RemoteMatchingSettings, RemoteSettingsError, Requester,
};
pub use keys::KeySourceError;
pub use local::{decide_locally, Cycle};
pub use server::{load_or_create_key, MatchingService, ServiceApp, ServiceStartError};
pub use settings::{MatchingServiceSettings, ServiceConfig, ServiceRelyingParty, SettingsError};
