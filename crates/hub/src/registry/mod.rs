//! The registry of relying parties and identity providers: kept in the database, seeded
//! from the configuration file, changed at run time by operators (the admin API, the
//! `hub rp` / `hub idp` commands), and followed by every instance within seconds.
//!
//! [`live::LiveRegistry`] is what the rest of the hub reads: a snapshot of the active
//! entries, swapped whole when the registry's revision moves. [`admin`] holds the
//! operators' changes and their checks; [`seed`] the configuration's part.

pub(crate) mod admin;
pub(crate) mod live;
mod registration;
pub(crate) mod seed;

pub(crate) use registration::{Registration, REDACTED};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::RegistryRow;

use crate::config::{IdentityProviderSettings, RelyingPartySettings};

/// Whether `client_id` is a relying party the registry holds and has not retired (for
/// `hub records import`, which also serves relying parties added through the admin API).
pub async fn holds_relying_party(
    db: &store::Database,
    client_id: &str,
) -> Result<bool, store::StoreError> {
    let rows = db.registry_entries().await?;
    Ok(Entry::<RelyingPartySettings>::all(&rows)
        .iter()
        .any(|e| e.settings.client_id == client_id && e.status != Status::Retired))
}

/// The two kinds of registered party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    RelyingParty,
    IdentityProvider,
}

impl Kind {
    /// The stored and logged name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RelyingParty => "relying_party",
            Self::IdentityProvider => "identity_provider",
        }
    }
}

/// Whether an entry serves. `retired` is final: the id stays taken, so that nothing new
/// can ever be mistaken for it in the verification log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Active,
    Disabled,
    Retired,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Retired => "retired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Disabled, Self::Retired]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// Who last set an entry: the configuration file follows its own entries at each start;
/// once an operator changes one, the operator's version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    Config,
    Admin,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Admin => "admin",
        }
    }
}

/// A party's settings, as registered.
pub(crate) trait Registrable:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug
{
    const KIND: Kind;
    fn id(&self) -> &str;
}

impl Registrable for RelyingPartySettings {
    const KIND: Kind = Kind::RelyingParty;
    fn id(&self) -> &str {
        &self.client_id
    }
}

impl Registrable for IdentityProviderSettings {
    const KIND: Kind = Kind::IdentityProvider;
    fn id(&self) -> &str {
        &self.id
    }
}

/// One registered party and its bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Entry<S> {
    pub(crate) settings: S,
    pub(crate) status: Status,
    pub(crate) source: Source,
    /// The registry revision of its last change (a caller's precondition for the next).
    pub(crate) revision: i64,
    pub(crate) updated_at: String,
    pub(crate) updated_by: String,
}

/// An entry the store holds that this hub cannot read.
#[derive(Debug, thiserror::Error)]
#[error("registry entry {kind} {id} is unreadable: {problem}")]
pub(crate) struct Unreadable {
    kind: String,
    id: String,
    problem: String,
}

impl<S: Registrable> Entry<S> {
    fn from_row(row: &RegistryRow) -> Result<Self, Unreadable> {
        let unreadable = |problem: String| Unreadable {
            kind: row.kind.clone(),
            id: row.id.clone(),
            problem,
        };
        let settings: S =
            serde_json::from_str(&row.document).map_err(|e| unreadable(e.to_string()))?;
        let status = Status::parse(&row.status).ok_or_else(|| unreadable("status".into()))?;
        let source = match row.source.as_str() {
            "config" => Source::Config,
            "admin" => Source::Admin,
            _ => return Err(unreadable("source".into())),
        };
        Ok(Self {
            settings,
            status,
            source,
            revision: row.revision,
            updated_at: row.updated_at.clone(),
            updated_by: row.updated_by.clone(),
        })
    }

    fn to_row(&self) -> RegistryRow {
        RegistryRow {
            kind: S::KIND.as_str().to_owned(),
            id: self.settings.id().to_owned(),
            // Settings are plain data: serialising them cannot fail.
            document: serde_json::to_string(&self.settings).unwrap_or_default(),
            status: self.status.as_str().to_owned(),
            source: self.source.as_str().to_owned(),
            revision: self.revision,
            updated_at: self.updated_at.clone(),
            updated_by: self.updated_by.clone(),
        }
    }

    /// The entries of this kind among `rows`. One this hub cannot read (written by a
    /// newer hub during an upgrade, or damaged) is left out and logged: it is not served,
    /// and the others still are.
    fn all(rows: &[RegistryRow]) -> Vec<Self> {
        rows.iter()
            .filter(|row| row.kind == S::KIND.as_str())
            .filter_map(|row| {
                Self::from_row(row)
                    .inspect_err(|e| tracing::error!(error = %e, "registry entry not served"))
                    .ok()
            })
            .collect()
    }
}
