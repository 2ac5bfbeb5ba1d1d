//! The matching stage of a journey: cycle 0 (stored link), cycle 1 (matching dataset),
//! cycle 3 (one extra attribute), then account creation or no match.
//!
//! Cycle 0 always runs in the matcher. Cycles 1 and 3 run through one [`Placement`]: in the
//! hub against imported records (cycle 1's candidates then come in the same statement as
//! cycle 0's link), or at the relying party's remote matching service
//! (docs/matching-service.md). Both run the same engine; whatever goes wrong on the way
//! (store, transport, timeout, a response that does not verify) ends the journey with
//! `matching_unavailable` and an audit event, never with a guess.
//!
//! Decisions are logged with their reasons, never with the dataset.

use matching::{Decision, MatchingDataset, Outcome};
use matching_service::{decide_locally, Cycle, RemoteFailure, RemoteMatching, Requester};
use store::{Database, LinkOrCandidates, StoreError};

use crate::config::NoMatchResponse;
use crate::journey::{Journey, MatchClaim, MatchStatus, VerifiedIdentity};
use crate::reason::Reason;
use crate::relying_party::RelyingParty;
use crate::verification_log::trail::AuditTrail;
use audit::{Event, EventType};
use matching::RecordId;

/// What matching reads and writes: the imported records and links, the hub's identity
/// towards remote matching services, and the log the decisions go to.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    db: Database,
    /// The hub's issuer, which remote matching services know it by.
    issuer: String,
    /// The hub's keys: the current one signs requests to remote matching services.
    keys: token::LiveKeys,
    trail: AuditTrail,
}

impl Matcher {
    pub(crate) fn new(
        db: Database,
        issuer: String,
        keys: token::LiveKeys,
        trail: AuditTrail,
    ) -> Self {
        Self {
            db,
            issuer,
            keys,
            trail,
        }
    }

    /// Saves the link of a newly matched record in a task of its own, off the
    /// callback's response path. The link is only a shortcut for the citizen's next
    /// journey (cycle 0): without it, that journey matches at cycle 1 again. It is saved
    /// after the decision is in the log, so every stored link has its logged decision.
    pub(crate) fn save_link_behind(
        &self,
        journey: &Journey,
        identity: &VerifiedIdentity,
        record: RecordId,
    ) {
        let db = self.db.clone();
        let rp = journey.request.client_id.clone();
        let journey_id = journey.id.clone();
        let (idp, subject) = (identity.idp_id.clone(), identity.idp_subject.clone());
        tokio::spawn(async move {
            if let Err(e) = db
                .save_record_link(rp.as_str(), &idp, &subject, &record)
                .await
            {
                tracing::warn!(error = %e, journey = %journey_id, "could not save the record link");
            }
        });
    }
}

/// What the journey does next after a matching attempt.
#[derive(Debug)]
pub(crate) enum Next {
    /// Issue an assertion with `claim`; with `link`, remember the matched
    /// record for this IdP subject once the decision is in the log.
    Complete {
        claim: MatchClaim,
        link: Option<RecordId>,
    },
    AskCycle3(String),
    Fail(Reason),
}

/// Why cycles 1 or 3 could not be decided. Messages carry no personal data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MatchingFailure {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteFailure),
}

impl MatchingFailure {
    /// The audit reason code (`matching_service:<why>` or `store:unavailable`).
    fn code(&self) -> String {
        match self {
            Self::Store(_) => "store:unavailable".into(),
            Self::Remote(failure) => failure.code(),
        }
    }
}

/// Where cycles 1 and 3 run for a relying party.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement<'a> {
    /// In the hub, against the records imported into its database.
    InHub,
    /// At the relying party's matching service, over signed HTTP.
    Remote(&'a RemoteMatching),
}

impl<'a> Placement<'a> {
    /// The placement `rp` is configured with (`matching_service` set: remote).
    pub(crate) fn of(rp: &'a RelyingParty) -> Self {
        match &rp.remote_matching {
            Some(remote) => Placement::Remote(remote),
            None => Placement::InHub,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Placement::InHub => "in_hub",
            Placement::Remote(_) => "remote",
        }
    }

    /// Runs `cycle` for `dataset` at this placement.
    pub(crate) async fn decide(
        self,
        matcher: &Matcher,
        rp: &RelyingParty,
        dataset: &MatchingDataset,
        cycle: Cycle<'_>,
    ) -> Result<Decision, MatchingFailure> {
        match self {
            Placement::InHub => Ok(decide_locally(
                &matcher.db,
                rp.client_id().as_str(),
                &rp.settings.matching,
                dataset,
                cycle,
            )
            .await?),
            Placement::Remote(remote) => {
                let signer = matcher.keys.signer();
                let requester = Requester {
                    issuer: &matcher.issuer,
                    signing_key: &signer,
                };
                Ok(remote
                    .decide(requester, rp.client_id().as_str(), dataset, cycle)
                    .await?)
            }
        }
    }
}

/// The matching event, held in `held` to be appended with the journey's next event (the
/// assertion, the cycle-3 question or the failure) in one append. A record link is saved
/// only after that append, so every link has its decision in the log.
fn hold_matching(
    matcher: &Matcher,
    journey: &Journey,
    held: &mut Vec<Event>,
    cycle: u8,
    outcome: &str,
    reasons: &[String],
) {
    let mut event = matcher.trail.journey_event(EventType::Matching, journey);
    event.match_cycle = Some(cycle);
    event.outcome = Some(outcome.to_owned());
    event.reasons = reasons.to_vec();
    held.push(event);
}

fn log_decision(journey_id: &str, cycle: u8, placement: Placement<'_>, decision: &Decision) {
    tracing::debug!(
        journey = journey_id,
        cycle,
        placement = placement.name(),
        outcome = ?decision.outcome,
        score = decision.score,
        reasons = ?decision.reasons,
        "matching decision"
    );
}

/// Logs and audits a cycle that could not be decided; the journey then fails with
/// `matching_unavailable` (its own `journey_failed` event follows).
async fn unavailable(
    matcher: &Matcher,
    journey: &Journey,
    held: &mut Vec<Event>,
    cycle: u8,
    placement: Placement<'_>,
    failure: &MatchingFailure,
) -> Next {
    tracing::error!(
        error = %failure,
        journey = %journey.id,
        cycle,
        placement = placement.name(),
        "matching unavailable"
    );
    // Appended with the journey's failure.
    hold_matching(
        matcher,
        journey,
        held,
        cycle,
        "unavailable",
        &[failure.code()],
    );
    Next::Fail(Reason::MatchingUnavailable)
}

fn matched(decision: Decision) -> Next {
    let Some(record) = decision.record_id else {
        return Next::Fail(Reason::NoMatch);
    };
    Next::Complete {
        claim: MatchClaim {
            status: MatchStatus::Matched,
            record_id: Some(record.to_string()),
        },
        link: Some(record),
    }
}

/// No record: account creation, a `no_match` assertion, or a failure, as the RP chose.
pub(crate) fn no_match(rp: &RelyingParty) -> Next {
    let claim = |status| MatchClaim {
        status,
        record_id: None,
    };
    if rp.settings.account_creation {
        Next::Complete {
            claim: claim(MatchStatus::Created),
            link: None,
        }
    } else if rp.settings.no_match_response == NoMatchResponse::Assertion {
        Next::Complete {
            claim: claim(MatchStatus::NoMatch),
            link: None,
        }
    } else {
        Next::Fail(Reason::NoMatch)
    }
}

/// Runs one cycle at the RP's placement, logs and audits the decision. `Err` is the
/// journey's next step when the cycle could not be decided or audited.
async fn run_cycle(
    matcher: &Matcher,
    rp: &RelyingParty,
    journey: &Journey,
    held: &mut Vec<Event>,
    identity: &VerifiedIdentity,
    cycle: Cycle<'_>,
) -> Result<Decision, Next> {
    let placement = Placement::of(rp);
    let number = cycle.number();
    let decision = match placement
        .decide(matcher, rp, &identity.dataset, cycle)
        .await
    {
        Ok(decision) => decision,
        Err(failure) => {
            return Err(unavailable(matcher, journey, held, number, placement, &failure).await)
        }
    };
    record_decision(matcher, journey, held, number, placement, &decision);
    Ok(decision)
}

/// Logs a decision and holds its audit event.
fn record_decision(
    matcher: &Matcher,
    journey: &Journey,
    held: &mut Vec<Event>,
    cycle: u8,
    placement: Placement<'_>,
    decision: &Decision,
) {
    log_decision(journey.id.as_str(), cycle, placement, decision);
    hold_matching(
        matcher,
        journey,
        held,
        cycle,
        decision.outcome.as_str(),
        &decision.reasons,
    );
}

/// What cycle 0 found.
enum StoredLink {
    Linked(RecordId),
    /// No link, and cycle 1's candidates, read with it (in the hub).
    Candidates(Vec<matching::DepartmentRecord>),
    /// No link; cycle 1 runs at the remote matching service.
    NotLinked,
}

/// Cycle 0, and in the hub cycle 1's candidate retrieval in the same statement.
async fn stored_link(
    matcher: &Matcher,
    rp: &RelyingParty,
    identity: &VerifiedIdentity,
) -> Result<StoredLink, StoreError> {
    let rp_id = rp.client_id().as_str();
    let (idp, subject) = (&identity.idp_id, &identity.idp_subject);
    match Placement::of(rp) {
        Placement::InHub => {
            let keys = matching::query_blocking_keys(&identity.dataset);
            let limit = rp.settings.matching.max_candidates;
            Ok(
                match matcher
                    .db
                    .link_or_candidates(rp_id, idp, subject, &keys, limit)
                    .await?
                {
                    LinkOrCandidates::Linked(record) => StoredLink::Linked(record),
                    LinkOrCandidates::Candidates(found) => StoredLink::Candidates(found),
                },
            )
        }
        Placement::Remote(_) => Ok(match matcher.db.record_link(rp_id, idp, subject).await? {
            Some(record) => StoredLink::Linked(record),
            None => StoredLink::NotLinked,
        }),
    }
}

/// Cycles 0 and 1. Their audit events go into `held`, to be appended with the journey's
/// next event.
pub(crate) async fn first_attempt(
    matcher: &Matcher,
    rp: &RelyingParty,
    journey: &Journey,
    held: &mut Vec<Event>,
    identity: &VerifiedIdentity,
) -> Next {
    let decision = match stored_link(matcher, rp, identity).await {
        Err(e) => {
            return unavailable(
                matcher,
                journey,
                held,
                0,
                Placement::InHub,
                &MatchingFailure::Store(e),
            )
            .await
        }
        Ok(StoredLink::Linked(record)) => {
            tracing::debug!(
                journey = %journey.id,
                cycle = 0,
                outcome = "match",
                "matching decision"
            );
            let reasons = ["cycle0:stored_link".to_owned()];
            hold_matching(matcher, journey, held, 0, "match", &reasons);
            return Next::Complete {
                claim: MatchClaim {
                    status: MatchStatus::Matched,
                    record_id: Some(record.to_string()),
                },
                link: None,
            };
        }
        Ok(StoredLink::Candidates(candidates)) => {
            let policy = &rp.settings.matching;
            let decision = matching::match_cycle1(&identity.dataset, &candidates, policy);
            record_decision(matcher, journey, held, 1, Placement::InHub, &decision);
            decision
        }
        Ok(StoredLink::NotLinked) => {
            match run_cycle(matcher, rp, journey, held, identity, Cycle::One).await {
                Ok(decision) => decision,
                Err(next) => return next,
            }
        }
    };
    if decision.outcome == Outcome::Match {
        return matched(decision);
    }
    match &rp.settings.cycle3_attribute {
        Some(attribute) => Next::AskCycle3(attribute.clone()),
        None => no_match(rp),
    }
}

/// Cycle 3 with the citizen's answer (already format-checked); its event goes into `held`.
pub(crate) async fn cycle3(
    matcher: &Matcher,
    rp: &RelyingParty,
    journey: &Journey,
    held: &mut Vec<Event>,
    identity: &VerifiedIdentity,
    attribute: &str,
    value: &str,
) -> Next {
    let cycle = Cycle::Three { attribute, value };
    let decision = match run_cycle(matcher, rp, journey, held, identity, cycle).await {
        Ok(decision) => decision,
        Err(next) => return next,
    };
    if decision.outcome == Outcome::Match {
        return matched(decision);
    }
    no_match(rp)
}
