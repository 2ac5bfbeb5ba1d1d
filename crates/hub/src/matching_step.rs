//! The matching stage of a journey: cycle 0 (stored link), cycle 1 (matching dataset),
//! cycle 3 (one extra attribute), then account creation or no match.
//!
//! Decisions are logged with their reasons, never with the dataset.

use matching::{Decision, MatchingDataset, Outcome};
use store::StoreError;

use crate::app::Hub;
use crate::config::NoMatchResponse;
use crate::failure::Reason;
use crate::journey::{Journey, MatchClaim, MatchStatus, VerifiedIdentity};
use crate::relying_party::RelyingParty;
use audit::EventType;

/// What the journey does next after a matching attempt.
#[derive(Debug)]
pub(crate) enum Next {
    Complete(MatchClaim),
    AskCycle3(String),
    Fail(Reason),
}

async fn candidates(
    hub: &Hub,
    rp: &RelyingParty,
    dataset: &MatchingDataset,
) -> Result<Vec<matching::DepartmentRecord>, StoreError> {
    let keys = matching::query_blocking_keys(dataset);
    hub.db
        .candidates_by_blocking_keys(
            &rp.settings.client_id,
            &keys,
            rp.settings.matching.max_candidates,
        )
        .await
}

/// Appends the matching event; false when the log cannot be written (fail closed).
async fn record_matching(
    hub: &Hub,
    journey: &Journey,
    cycle: u8,
    outcome: &str,
    reasons: &[String],
) -> bool {
    let mut event = hub.audit.journey_event(EventType::Matching, journey);
    event.match_cycle = Some(cycle);
    event.outcome = Some(outcome.to_owned());
    event.reasons = reasons.to_vec();
    hub.audit.record(event).await.is_ok()
}

fn log_decision(journey_id: &str, cycle: u8, decision: &Decision) {
    tracing::info!(
        journey = journey_id,
        cycle,
        outcome = ?decision.outcome,
        score = decision.score,
        reasons = ?decision.reasons,
        "matching decision"
    );
}

async fn matched(
    hub: &Hub,
    rp: &RelyingParty,
    identity: &VerifiedIdentity,
    decision: Decision,
) -> Result<Next, StoreError> {
    let Some(record) = decision.record_id else {
        return Ok(Next::Fail(Reason::NoMatch));
    };
    hub.db
        .save_record_link(
            &rp.settings.client_id,
            &identity.idp_id,
            &identity.idp_subject,
            &record,
        )
        .await?;
    Ok(Next::Complete(MatchClaim {
        status: MatchStatus::Matched,
        record_id: Some(record.to_string()),
    }))
}

/// No record: account creation, a `no_match` assertion, or a failure, as the RP chose.
pub(crate) fn no_match(rp: &RelyingParty) -> Next {
    if rp.settings.account_creation {
        Next::Complete(MatchClaim {
            status: MatchStatus::Created,
            record_id: None,
        })
    } else if rp.settings.no_match_response == NoMatchResponse::Assertion {
        Next::Complete(MatchClaim {
            status: MatchStatus::NoMatch,
            record_id: None,
        })
    } else {
        Next::Fail(Reason::NoMatch)
    }
}

/// Cycles 0 and 1.
pub(crate) async fn first_attempt(
    hub: &Hub,
    rp: &RelyingParty,
    journey: &Journey,
    identity: &VerifiedIdentity,
) -> Next {
    let attempt = async {
        if let Some(record) = hub
            .db
            .record_link(
                &rp.settings.client_id,
                &identity.idp_id,
                &identity.idp_subject,
            )
            .await?
        {
            tracing::info!(
                journey = %journey.id,
                cycle = 0,
                outcome = "match",
                "matching decision"
            );
            if !record_matching(hub, journey, 0, "match", &["cycle0:stored_link".to_owned()]).await
            {
                return Ok(Next::Fail(Reason::HubUnavailable));
            }
            return Ok(Next::Complete(MatchClaim {
                status: MatchStatus::Matched,
                record_id: Some(record.to_string()),
            }));
        }
        let candidates = candidates(hub, rp, &identity.dataset).await?;
        let decision =
            matching::match_cycle1(&identity.dataset, &candidates, &rp.settings.matching);
        log_decision(&journey.id, 1, &decision);
        if !record_matching(
            hub,
            journey,
            1,
            decision.outcome.as_str(),
            &decision.reasons,
        )
        .await
        {
            return Ok(Next::Fail(Reason::HubUnavailable));
        }
        if decision.outcome == Outcome::Match {
            return matched(hub, rp, identity, decision).await;
        }
        Ok(match &rp.settings.cycle3_attribute {
            Some(attribute) => Next::AskCycle3(attribute.clone()),
            None => no_match(rp),
        })
    };
    attempt.await.unwrap_or_else(|e: StoreError| {
        tracing::error!(error = %e, journey = %journey.id, "matching unavailable");
        Next::Fail(Reason::MatchingUnavailable)
    })
}

/// Cycle 3 with the citizen's answer (already format-checked).
pub(crate) async fn cycle3(
    hub: &Hub,
    rp: &RelyingParty,
    journey: &Journey,
    identity: &VerifiedIdentity,
    attribute: &str,
    value: &str,
) -> Next {
    let attempt = async {
        let candidates = candidates(hub, rp, &identity.dataset).await?;
        let decision = matching::match_cycle3(
            &identity.dataset,
            attribute,
            value,
            &candidates,
            &rp.settings.matching,
        );
        log_decision(&journey.id, 3, &decision);
        if !record_matching(
            hub,
            journey,
            3,
            decision.outcome.as_str(),
            &decision.reasons,
        )
        .await
        {
            return Ok(Next::Fail(Reason::HubUnavailable));
        }
        if decision.outcome == Outcome::Match {
            return matched(hub, rp, identity, decision).await;
        }
        Ok(no_match(rp))
    };
    attempt.await.unwrap_or_else(|e: StoreError| {
        tracing::error!(error = %e, journey = %journey.id, "matching unavailable");
        Next::Fail(Reason::MatchingUnavailable)
    })
}
