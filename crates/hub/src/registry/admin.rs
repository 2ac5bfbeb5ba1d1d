//! Operators' changes to the registry: add, update (a JSON merge patch), disable, enable,
//! retire. Each is checked before anything is written, written only if nobody changed the
//! entry meanwhile, logged as a `registry_changed` event naming who made it, and applied
//! to this instance at once (the others follow within their poll interval).

use std::sync::Arc;

use audit::EventType;
use serde_json::Value;
use store::{Database, StoreError};

use super::live::LiveRegistry;
use super::registration::Registration;
use super::{Entry, Registrable, Source, Status};
use crate::verification_log::trail::AuditTrail;

/// Why a change was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// The document or patch is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A duplicate id, a retired entry, or a change made meanwhile.
    #[error("{0}")]
    Conflict(String),
    #[error("the registry is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            e => Self::Unavailable(e.to_string()),
        }
    }
}

/// What an operator did to an entry, as the log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Updated,
    Disabled,
    Enabled,
    Retired,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::Retired => "retired",
        }
    }
}

/// Makes registry changes: the admin API's and the configuration's.
#[derive(Debug)]
pub(crate) struct Registrar {
    pub(crate) db: Database,
    pub(crate) trail: AuditTrail,
    pub(crate) registry: Arc<LiveRegistry>,
    /// The deployment's levels of assurance, lowest first.
    pub(crate) levels: Vec<String>,
}

impl Registrar {
    /// Every entry of a kind, retired ones included, as stored now.
    pub(crate) async fn list<S: Registration>(&self) -> Result<Vec<Entry<S>>, AdminError> {
        let rows = self.db.registry_entries().await?;
        Ok(Entry::<S>::all(&rows))
    }

    /// One entry, as stored now.
    pub(crate) async fn show<S: Registration>(&self, id: &str) -> Result<Entry<S>, AdminError> {
        self.find::<S>(id)
            .await?
            .ok_or(AdminError::NotFound(S::KIND.as_str()))
    }

    pub(super) async fn find<S: Registration>(
        &self,
        id: &str,
    ) -> Result<Option<Entry<S>>, AdminError> {
        Ok(self
            .list::<S>()
            .await?
            .into_iter()
            .find(|e| e.settings.id() == id))
    }

    /// Registers a new party from its settings document.
    pub(crate) async fn add<S: Registration>(
        &self,
        document: Value,
        actor: &str,
    ) -> Result<Entry<S>, AdminError> {
        let settings = self.accept::<S>(document)?;
        let entry = Entry::fresh(settings, Source::Admin, actor);
        let changed = top_level_keys(&entry.settings);
        self.write(entry, None, Change::Added, changed, actor).await
    }

    /// Applies a JSON merge patch (RFC 7396) to a party's settings.
    pub(crate) async fn update<S: Registration>(
        &self,
        id: &str,
        patch: Value,
        actor: &str,
    ) -> Result<Entry<S>, AdminError> {
        let entry = self.show::<S>(id).await?;
        if entry.status == Status::Retired {
            return Err(AdminError::Conflict(format!("{id} is retired")));
        }
        if !patch.is_object() {
            return Err(AdminError::Invalid(
                "the patch must be a JSON object".into(),
            ));
        }
        let before = to_value(&entry.settings);
        let mut document = before.clone();
        json_patch::merge(&mut document, &patch);
        let settings = self.accept::<S>(document)?;
        if settings.id() != id {
            return Err(AdminError::Invalid("the id cannot change".into()));
        }
        let changed = changed_keys(&before, &to_value(&settings));
        if changed.is_empty() {
            // Nothing to change: nothing written, logged, or taken from the configuration.
            return Ok(entry);
        }
        let expected = entry.revision;
        let next = Entry {
            settings,
            source: Source::Admin,
            ..entry.touched(actor)
        };
        self.write(next, Some(expected), Change::Updated, changed, actor)
            .await
    }

    /// Disables, enables or retires a party. Retiring is final.
    pub(crate) async fn set_status<S: Registration>(
        &self,
        id: &str,
        status: Status,
        actor: &str,
    ) -> Result<Entry<S>, AdminError> {
        let entry = self.show::<S>(id).await?;
        if entry.status == Status::Retired {
            return Err(AdminError::Conflict(format!("{id} is retired")));
        }
        if entry.status == status {
            return Ok(entry);
        }
        let change = match status {
            Status::Active => Change::Enabled,
            Status::Disabled => Change::Disabled,
            Status::Retired => Change::Retired,
        };
        let expected = entry.revision;
        let next = Entry {
            status,
            source: Source::Admin,
            ..entry.touched(actor)
        };
        self.write(next, Some(expected), change, Vec::new(), actor)
            .await
    }

    /// Parses a settings document strictly and checks it.
    fn accept<S: Registration>(&self, document: Value) -> Result<S, AdminError> {
        let settings: S = serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            AdminError::Invalid(format!("{path}: {}", e.into_inner()))
        })?;
        settings
            .check_registration(&self.levels)
            .map_err(AdminError::Invalid)?;
        Ok(settings)
    }

    /// Stores `entry` if its stored revision is still `expected`, logs the change and
    /// applies it here.
    pub(super) async fn write<S: Registration>(
        &self,
        mut entry: Entry<S>,
        expected: Option<i64>,
        change: Change,
        fields: Vec<String>,
        actor: &str,
    ) -> Result<Entry<S>, AdminError> {
        let mut event = self.trail.event(EventType::RegistryChanged);
        match S::KIND {
            super::Kind::RelyingParty => event.rp = Some(entry.settings.id().to_owned()),
            super::Kind::IdentityProvider => event.idp = Some(entry.settings.id().to_owned()),
        }
        event.outcome = Some(change.as_str().to_owned());
        event.actor = Some(actor.to_owned());
        event.fields = Some(fields);
        // The write and its event in one task of their own: a request dropped half-way
        // (the client went away) cannot leave the change made but not logged.
        let (db, trail, row) = (self.db.clone(), self.trail.clone(), entry.to_row());
        let done = tokio::spawn(async move {
            let revision = db.put_registry_entry(row, expected).await?;
            Ok::<_, StoreError>((revision, trail.record(event).await.is_ok()))
        });
        let (revision, logged) = done
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))??;
        entry.revision = revision;
        if !logged {
            // The change is made: say so loudly rather than pretend it was not.
            tracing::error!(
                id = entry.settings.id(),
                "registry change made but not logged"
            );
            return Err(AdminError::Unavailable(
                "the change was made, but the verification log could not record it".into(),
            ));
        }
        tracing::info!(
            kind = S::KIND.as_str(),
            id = entry.settings.id(),
            change = change.as_str(),
            actor,
            "registry changed"
        );
        if let Err(e) = self.registry.refresh().await {
            tracing::warn!(error = %e, "registry reload after a change failed");
        }
        Ok(entry)
    }
}

impl<S: Registrable> Entry<S> {
    /// A new active entry.
    pub(super) fn fresh(settings: S, source: Source, actor: &str) -> Self {
        Self {
            settings,
            status: Status::Active,
            source,
            revision: 0,
            updated_at: audit::rfc3339_now(),
            updated_by: actor.to_owned(),
        }
    }

    /// The same entry, stamped as changed now by `actor`.
    pub(super) fn touched(self, actor: &str) -> Self {
        Self {
            updated_at: audit::rfc3339_now(),
            updated_by: actor.to_owned(),
            ..self
        }
    }
}

fn to_value<S: Registrable>(settings: &S) -> Value {
    serde_json::to_value(settings).unwrap_or_default()
}

/// The settings a new entry sets (names only).
pub(super) fn top_level_keys<S: Registrable>(settings: &S) -> Vec<String> {
    match to_value(settings) {
        Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

/// The settings whose values differ between two documents (names only).
pub(super) fn changed_keys(before: &Value, after: &Value) -> Vec<String> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
