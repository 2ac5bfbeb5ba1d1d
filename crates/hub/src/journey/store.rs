//! Persistence of journeys in the session store, and of the upstream `state` that leads
//! the identity provider's response back to its journey.

use std::sync::Arc;
use std::time::Duration;

use store::{Put, SessionStore, StoreError};

use crate::journey::{Journey, JourneyId};

const JOURNEYS: &str = "journey";
const UPSTREAM_STATES: &str = "upstream_state";
/// Journeys are kept this long past expiry so a late step can still be sent back to the
/// RP as `journey_expired` instead of ending on a hub page.
const GRACE_SECS: u64 = 3600;

/// Journeys in the session store, kept for their lifetime (`journey.ttl_secs`).
#[derive(Clone)]
pub(crate) struct JourneyStore {
    sessions: Arc<dyn SessionStore>,
    ttl: Duration,
}

impl std::fmt::Debug for JourneyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JourneyStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JourneyStore {
    pub(crate) fn new(sessions: Arc<dyn SessionStore>, ttl: Duration) -> Self {
        Self { sessions, ttl }
    }

    pub(crate) async fn load(&self, id: &JourneyId) -> Result<Option<Journey>, StoreError> {
        let Some(json) = self.sessions.get(JOURNEYS, id.as_str()).await? else {
            return Ok(None);
        };
        Ok(parsed(id.as_str(), &json))
    }

    pub(crate) async fn save(&self, journey: &Journey) -> Result<(), StoreError> {
        self.sessions.put_all(vec![self.stored(journey)?]).await
    }

    /// The session-store entry for `journey`, to save it together with other state. It
    /// is kept until the journey's expiry plus the grace period, counted from its start
    /// however often it is saved: the citizen's data is gone within that time.
    pub(crate) fn stored<'a>(&self, journey: &'a Journey) -> Result<Put<'a>, StoreError> {
        let value =
            serde_json::to_string(journey).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let left = journey.expires_at + GRACE_SECS as i64 - crate::clock::now();
        Ok(Put {
            namespace: JOURNEYS,
            key: journey.id.as_str(),
            value,
            ttl: Duration::from_secs(left.max(1) as u64),
        })
    }

    /// Saves `journey` and remembers that the upstream `state` belongs to it, together.
    pub(crate) async fn save_with_upstream_state(
        &self,
        journey: &Journey,
        state: &str,
    ) -> Result<(), StoreError> {
        let index = Put {
            namespace: UPSTREAM_STATES,
            key: state,
            value: journey.id.to_string(),
            ttl: self.ttl,
        };
        self.sessions
            .put_all(vec![self.stored(journey)?, index])
            .await
    }

    /// Consumes an upstream `state` (single use) and loads its journey, in one round
    /// trip. `None` when the state is unknown, already used, or its journey is gone.
    pub(crate) async fn take_by_upstream_state(
        &self,
        state: &str,
    ) -> Result<Option<Journey>, StoreError> {
        let taken = self
            .sessions
            .take_and_follow(UPSTREAM_STATES, state, JOURNEYS)
            .await?;
        Ok(match taken {
            Some((id, Some(json))) => parsed(&id, &json),
            _ => None,
        })
    }
}

/// The stored journey `id`, or `None` (logged) if it cannot be read.
fn parsed(id: &str, json: &str) -> Option<Journey> {
    match serde_json::from_str(json) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::error!(error = %e, journey = id, "stored journey unreadable");
            None
        }
    }
}
