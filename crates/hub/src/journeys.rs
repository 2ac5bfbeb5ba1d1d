//! Persistence of journeys in the session store, and the two ways a journey ends:
//! an authorization code for the RP, or an OIDC error to the RP.

use std::time::Duration;

use actix_web::HttpResponse;
use store::{Put, StoreError};

use crate::app::Hub;
use crate::assertion;
use crate::failure::{see_other, PageError};
use crate::journey::{Journey, MatchClaim, MatchStatus, VerifiedIdentity};
use crate::reason::{rp_error_url, Reason};
use audit::EventType;
use matching::RecordId;

const JOURNEYS: &str = "journey";
const UPSTREAM_STATES: &str = "upstream_state";
/// Journeys are kept this long past expiry so a late step can still be sent back to the
/// RP as `journey_expired` instead of ending on a hub page.
const GRACE_SECS: u64 = 3600;

pub(crate) async fn load(hub: &Hub, id: &str) -> Result<Option<Journey>, StoreError> {
    let Some(json) = hub.sessions.get(JOURNEYS, id).await? else {
        return Ok(None);
    };
    Ok(parsed(id, &json))
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
        key: &journey.id,
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
        value: journey.id.clone(),
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

/// The RP redirect for `reason`, leaving the journey as it is.
fn back_to_rp(hub: &Hub, journey: &Journey, reason: Reason) -> HttpResponse {
    let request = &journey.request;
    match rp_error_url(
        &request.redirect_uri,
        request.state.as_deref(),
        &hub.issuer,
        reason,
    ) {
        Some(url) => see_other(url.as_str()),
        None => actix_web::ResponseError::error_response(&PageError::BadRedirectUri),
    }
}

/// Sends the browser back to the RP with `reason`, marking the journey failed when it
/// was still under way. A finished journey keeps its state (Back button, replays).
pub(crate) async fn fail(hub: &Hub, journey: &mut Journey, reason: Reason) -> HttpResponse {
    tracing::info!(journey = %journey.id, reason = reason.code(), step = journey.state.name(), "journey failed");
    let mut event = hub.audit.journey_event(EventType::JourneyFailed, journey);
    event.outcome = Some(reason.code().to_owned());
    if journey.fail(reason).is_ok() {
        hub.metrics.journey_ended(reason.code());
        if let Err(e) = save(hub, journey).await {
            tracing::warn!(error = %e, journey = %journey.id, "could not record failed journey");
        }
    }
    // A failure issues nothing, so it still goes back to the RP if the log is down.
    let _ = hub.audit.record(event).await;
    back_to_rp(hub, journey, reason)
}

/// Completes the journey: stores the single-use code, logs the assertion (with the
/// journey's deferred events), and sends the browser to the RP. Fails closed: if the code,
/// the journey or the log entry cannot be stored, no code leaves the hub. `link`, a
/// record newly matched, is saved once the decision is in the log, without holding up
/// the response.
pub(crate) async fn complete(
    hub: &Hub,
    journey: &mut Journey,
    outcome: MatchClaim,
    link: Option<RecordId>,
) -> HttpResponse {
    let Some(identity) = journey.identity().cloned() else {
        return fail(hub, journey, Reason::JourneyFinished).await;
    };
    if journey.complete(outcome.clone()).is_err() {
        return fail(hub, journey, Reason::JourneyFinished).await;
    }
    let issued = match assertion::issue_code(hub, journey, &identity, &outcome).await {
        Ok(issued) => issued,
        Err(e) => {
            tracing::error!(error = %e, journey = %journey.id, "could not issue code");
            // Logs the failure (with the deferred events); the journey, already
            // completed in memory, keeps its stored state.
            return fail(hub, journey, Reason::HubUnavailable).await;
        }
    };
    if outcome.status == MatchStatus::Created {
        let created = hub.audit.journey_event(EventType::AccountCreated, journey);
        hub.audit.defer(journey, created);
    }
    let mut assertion = hub.audit.journey_event(EventType::AssertionIssued, journey);
    assertion.outcome = Some(outcome.status.as_str().to_owned());
    assertion.subject = Some(issued.sub.clone());
    if hub.audit.record(assertion).await.is_err() {
        assertion::discard_code(hub, &issued.code).await;
        return back_to_rp(hub, journey, Reason::HubUnavailable);
    }
    if let Some(record) = link {
        save_link_behind(hub, journey, &identity, record);
    }
    tracing::info!(journey = %journey.id, status = ?outcome.status, "assertion issued");
    hub.metrics.journey_ended(outcome.status.as_str());
    see_other(issued.url.as_str())
}

/// Saves the link of a newly matched record in a task of its own, off the callback's
/// response path. The link is only a shortcut for the citizen's next journey (cycle 0):
/// without it, that journey matches at cycle 1 again. It is saved after the decision is
/// in the log, so every stored link has its logged decision.
fn save_link_behind(hub: &Hub, journey: &Journey, identity: &VerifiedIdentity, record: RecordId) {
    let db = hub.db.clone();
    let rp = journey.request.client_id.clone();
    let journey_id = journey.id.clone();
    let (idp, subject) = (identity.idp_id.clone(), identity.idp_subject.clone());
    tokio::spawn(async move {
        if let Err(e) = db.save_record_link(&rp, &idp, &subject, &record).await {
            tracing::warn!(error = %e, journey = %journey_id, "could not save the record link");
        }
    });
}
