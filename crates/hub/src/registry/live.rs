//! The registry as every request reads it: one immutable snapshot of the active parties,
//! swapped whole when the stored revision moves. Checking the revision is one small read,
//! so each instance polls it often and follows a change made anywhere within seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use store::Database;

use super::{Entry, Status};
use crate::config::{CircuitBreakerSettings, IdentityProviderSettings, RelyingPartySettings};
use crate::identity_provider::breaker::IdpBreaker;
use crate::identity_provider::IdentityProvider;
use crate::metrics::Metrics;
use crate::relying_party::{ClientId, RelyingParty};

/// Why the registry could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("registry: {0}")]
    Store(#[from] store::StoreError),
}

/// The active relying parties and identity providers at one registry revision.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) revision: i64,
    relying_parties: HashMap<ClientId, (i64, Arc<RelyingParty>)>,
    /// In id order: the picker's order.
    identity_providers: Vec<(i64, Arc<IdentityProvider>)>,
}

/// What a party is built with besides its settings.
#[derive(Debug, Clone)]
pub(crate) struct PartyContext {
    pub(crate) circuit_breaker: CircuitBreakerSettings,
    pub(crate) metrics: Metrics,
}

/// The registry this instance serves from.
#[derive(Debug)]
pub(crate) struct LiveRegistry {
    db: Database,
    current: ArcSwap<Snapshot>,
    /// One reload at a time; the others use the snapshot held.
    reloading: tokio::sync::Mutex<()>,
    context: PartyContext,
}

impl LiveRegistry {
    /// Reads the registry as stored now.
    pub(crate) async fn load(db: Database, context: PartyContext) -> Result<Self, RegistryError> {
        let registry = Self {
            db,
            current: ArcSwap::from_pointee(Snapshot::default()),
            reloading: tokio::sync::Mutex::new(()),
            context,
        };
        registry.reload(-1).await?;
        Ok(registry)
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reloads when the stored revision differs from the snapshot's; returns whether it
    /// did. A failure keeps the snapshot held.
    pub(crate) async fn refresh(&self) -> Result<bool, RegistryError> {
        let stored = self.db.registry_revision().await?;
        if stored == self.current.load().revision {
            return Ok(false);
        }
        self.reload(stored).await
    }

    async fn reload(&self, seen: i64) -> Result<bool, RegistryError> {
        let _turn = self.reloading.lock().await;
        let held = self.snapshot();
        if seen >= 0 && held.revision == seen {
            return Ok(false);
        }
        // The revision first: a change committed between the two reads makes the next
        // poll reload again, never the reverse.
        let revision = self.db.registry_revision().await?;
        let rows = self.db.registry_entries().await?;
        let rps = Entry::<RelyingPartySettings>::all(&rows);
        let idps = Entry::<IdentityProviderSettings>::all(&rows);
        let next = Snapshot {
            revision,
            relying_parties: rps
                .into_iter()
                .filter(|e| e.status == Status::Active)
                .map(|e| {
                    let id = ClientId::new(e.settings.client_id.clone());
                    let rp = match held.relying_parties.get(&id) {
                        Some((r, rp)) if *r == e.revision => rp.clone(),
                        _ => Arc::new(RelyingParty::new(e.settings)),
                    };
                    (id, (e.revision, rp))
                })
                .collect(),
            identity_providers: idps
                .into_iter()
                .filter(|e| e.status == Status::Active)
                .map(|e| {
                    let before = held
                        .identity_providers
                        .iter()
                        .find(|(_, idp)| idp.settings.id == e.settings.id);
                    let idp = match before {
                        Some((r, idp)) if *r == e.revision => idp.clone(),
                        Some((_, idp)) => Arc::new(idp.succeeded_by(e.settings)),
                        None => Arc::new(self.identity_provider(e.settings)),
                    };
                    (e.revision, idp)
                })
                .collect(),
        };
        tracing::info!(revision, "registry loaded");
        self.current.store(Arc::new(next));
        Ok(true)
    }

    fn identity_provider(&self, settings: IdentityProviderSettings) -> IdentityProvider {
        let breaker = IdpBreaker::new(
            self.context.circuit_breaker.clone(),
            Some(self.context.metrics.idp_breaker(&settings.id)),
        );
        IdentityProvider::new(settings).with_breaker(breaker)
    }

    /// An active relying party.
    pub(crate) fn relying_party(&self, client_id: &str) -> Option<Arc<RelyingParty>> {
        self.current
            .load()
            .relying_parties
            .get(client_id)
            .map(|(_, rp)| rp.clone())
    }

    /// An active identity provider.
    pub(crate) fn identity_provider_by_id(&self, id: &str) -> Option<Arc<IdentityProvider>> {
        self.current
            .load()
            .identity_providers
            .iter()
            .find(|(_, idp)| idp.settings.id == id)
            .map(|(_, idp)| idp.clone())
    }

    /// The active identity providers, in the picker's order.
    pub(crate) fn identity_providers(&self) -> Vec<Arc<IdentityProvider>> {
        self.current
            .load()
            .identity_providers
            .iter()
            .map(|(_, idp)| idp.clone())
            .collect()
    }

    /// The end dates of the active parties: identity providers' certifications
    /// (`certified_until`), relying parties' inline keys with certificates.
    pub(crate) fn expiries(&self) -> Vec<crate::expiry::Expiry> {
        use crate::expiry::{Expiry, ExpiryKind};
        let snapshot = self.current.load();
        let idps = snapshot.identity_providers.iter().filter_map(|(_, idp)| {
            Some(Expiry {
                kind: ExpiryKind::IdpCertification,
                subject: idp.settings.id.clone(),
                expires_at: idp.settings.certified_until?.timestamp(),
            })
        });
        let rps = snapshot.relying_parties.values().filter_map(|(_, rp)| {
            crate::expiry::rp_keys(&rp.settings.client_id, rp.settings.jwks.as_ref()?)
        });
        idps.chain(rps).collect()
    }

    /// How many active relying parties there are (for `Debug`).
    pub(crate) fn relying_party_count(&self) -> usize {
        self.current.load().relying_parties.len()
    }
}

/// Polls the registry's revision every `every` for as long as the hub runs; a failed
/// poll is logged and the snapshot held is served meanwhile.
pub(crate) async fn follow(registry: Arc<LiveRegistry>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = registry.refresh().await {
            tracing::warn!(error = %e, "registry refresh failed; serving the last one read");
        }
    }
}
