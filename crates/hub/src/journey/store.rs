//! Persistence of journeys in the session store, and of the upstream `state` that leads
//! the identity provider's response back to its journey.

use std::time::Duration;

use store::{Put, StoreError};

use crate::app::Hub;
use crate::journey::{Journey, JourneyId};

const JOURNEYS: &str = "journey";
const UPSTREAM_STATES: &str = "upstream_state";
/// Journeys are kept this long past expiry so a late step can still be sent back to the
/// RP as `journey_expired` instead of ending on a hub page.
const GRACE_SECS: u64 = 3600;

pub(crate) async fn load(hub: &Hub, id: &JourneyId) -> Result<Option<Journey>, StoreError> {
    let Some(json) = hub.sessions.get(JOURNEYS, id.as_str()).await? else {
        return Ok(None);
    };
    Ok(parsed(id.as_str(), &json))
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

pub(crate) async fn save(hub: &Hub, journey: &Journey) -> Result<(), StoreError> {
    hub.sessions.put_all(vec![stored(hub, journey)?]).await
}

/// The session-store entry for `journey`, to save it together with other state.
pub(crate) fn stored<'a>(hub: &Hub, journey: &'a Journey) -> Result<Put<'a>, StoreError> {
    let value = serde_json::to_string(journey).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Put {
        namespace: JOURNEYS,
        key: journey.id.as_str(),
        value,
        ttl: Duration::from_secs(hub.settings.journey.ttl_secs + GRACE_SECS),
    })
}

/// Saves `journey` and remembers that the upstream `state` belongs to it, together.
pub(crate) async fn save_with_upstream_state(
    hub: &Hub,
    journey: &Journey,
    state: &str,
) -> Result<(), StoreError> {
    let index = Put {
        namespace: UPSTREAM_STATES,
        key: state,
        value: journey.id.to_string(),
        ttl: Duration::from_secs(hub.settings.journey.ttl_secs),
    };
    hub.sessions
        .put_all(vec![stored(hub, journey)?, index])
        .await
}

/// Consumes an upstream `state` (single use) and loads its journey, in one round trip.
/// `None` when the state is unknown, already used, or its journey is gone.
pub(crate) async fn take_by_upstream_state(
    hub: &Hub,
    state: &str,
) -> Result<Option<Journey>, StoreError> {
    let taken = hub
        .sessions
        .take_and_follow(UPSTREAM_STATES, state, JOURNEYS)
        .await?;
    Ok(match taken {
        Some((id, Some(json))) => parsed(&id, &json),
        _ => None,
    })
}
