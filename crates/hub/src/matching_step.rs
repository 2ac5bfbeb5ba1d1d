//! The matching stage of a journey: cycle 0 (stored link), cycle 1 (matching dataset),
//! cycle 3 (one extra attribute), then account creation or no match.
//!
//! Cycle 0 always runs in the hub. Cycles 1 and 3 run through one [`Placement`]: in the
//! hub against imported records (cycle 1's candidates then come in the same statement as
//! cycle 0's link), or at the relying party's remote matching service
//! (docs/matching-service.md). Both run the same engine; whatever goes wrong on the way
//! (store, transport, timeout, a response that does not verify) ends the journey with
//! `matching_unavailable` and an audit event, never with a guess.
//!
//! Decisions are logged with their reasons, never with the dataset.

use std::time::Duration;

use matching::{Decision, MatchPolicy, MatchingDataset, Outcome};
use store::{Database, LinkOrCandidates, StoreError};
use tokio::sync::OnceCell;

use crate::app::Hub;
use crate::config::{NoMatchResponse, RemoteMatchingSettings};
use crate::journey::{Journey, MatchClaim, MatchStatus, VerifiedIdentity};
use crate::matching_service::keys::{JwksOrigin, KeySource, VerifyError};
use crate::matching_service::protocol::{
    self, token_error_code, MatchRequest, MatchResponse, CONTENT_TYPE, MAX_LIFETIME_SECS,
    REQUEST_TYP, RESPONSE_TYP,
};
use crate::reason::Reason;
use crate::relying_party::RelyingParty;
use audit::EventType;
use matching::RecordId;

/// Largest response body accepted from a matching service.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew allowed on a matching service's response.
const RESPONSE_LEEWAY_SECS: u64 = 5;

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

/// Which cycle to run, with the cycle-3 answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cycle<'a> {
    One,
    Three { attribute: &'a str, value: &'a str },
}

impl Cycle<'_> {
    pub(crate) fn number(self) -> u8 {
        match self {
            Cycle::One => 1,
            Cycle::Three { .. } => 3,
        }
    }
}

/// The engine against one database: blocking keys, candidates, decision. The hub (in-hub
/// placement), the matching service and batch mode all decide through this.
pub(crate) async fn decide_locally(
    db: &Database,
    rp_id: &str,
    policy: &MatchPolicy,
    dataset: &MatchingDataset,
    cycle: Cycle<'_>,
) -> Result<Decision, StoreError> {
    let keys = matching::query_blocking_keys(dataset);
    let candidates = db
        .candidates_by_blocking_keys(rp_id, &keys, policy.max_candidates)
        .await?;
    Ok(match cycle {
        Cycle::One => matching::match_cycle1(dataset, &candidates, policy),
        Cycle::Three { attribute, value } => {
            matching::match_cycle3(dataset, attribute, value, &candidates, policy)
        }
    })
}

/// Why cycles 1 or 3 could not be decided. Messages carry no personal data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MatchingFailure {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing the request: {0}")]
    Signing(token::TokenError),
    #[error("matching service http client: {0}")]
    Client(reqwest::Error),
    #[error("matching service unreachable: {0}")]
    Transport(reqwest::Error),
    #[error("matching service answered status {0}")]
    Status(u16),
    #[error("matching service response too large")]
    TooLarge,
    #[error("matching service keys: {0}")]
    Keys(crate::matching_service::keys::KeySourceError),
    #[error("matching service response rejected: {}", token_error_code(.0))]
    Rejected(token::TokenError),
    #[error("matching service response lifetime too long")]
    Lifetime,
    #[error("matching service response answers another request")]
    NotOurs,
    #[error("matching service decision inconsistent")]
    Inconsistent,
}

impl MatchingFailure {
    /// The audit reason code (`matching_service:<why>` or `store:unavailable`).
    fn code(&self) -> String {
        let why = match self {
            Self::Store(_) => return "store:unavailable".into(),
            Self::Signing(_) => "signing",
            Self::Client(_) => "client",
            Self::Transport(e) if e.is_timeout() => "timeout",
            Self::Transport(_) => "unreachable",
            Self::Status(status) => return format!("matching_service:status={status}"),
            Self::TooLarge => "too_large",
            Self::Keys(_) => "keys_unavailable",
            Self::Rejected(e) => token_error_code(e),
            Self::Lifetime => "lifetime",
            Self::NotOurs => "not_in_response_to_request",
            Self::Inconsistent => "inconsistent_decision",
        };
        format!("matching_service:{why}")
    }
}

/// The hub's client of one relying party's remote matching service.
#[derive(Debug)]
pub(crate) struct RemoteMatching {
    settings: RemoteMatchingSettings,
    identifier: String,
    keys: KeySource,
    http: OnceCell<reqwest::Client>,
}

impl RemoteMatching {
    pub(crate) fn new(settings: RemoteMatchingSettings) -> Self {
        let origin = match (&settings.jwks, &settings.jwks_uri) {
            (Some(jwks), _) => JwksOrigin::Inline(jwks.clone()),
            (None, Some(uri)) => JwksOrigin::Uri(uri.clone()),
            // Refused by `Settings::validate`; an empty set rejects every response.
            (None, None) => JwksOrigin::Inline(serde_json::json!({"keys": []})),
        };
        Self {
            identifier: settings.identifier(),
            keys: KeySource::new(origin),
            settings,
            http: OnceCell::new(),
        }
    }

    /// A client with connect and total timeouts, no redirects (built on first use).
    async fn http(&self) -> Result<&reqwest::Client, MatchingFailure> {
        self.http
            .get_or_try_init(|| async {
                let total = Duration::from_millis(self.settings.timeout_ms);
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(total.min(Duration::from_secs(2)))
                    .timeout(total)
                    .build()
                    .map_err(MatchingFailure::Client)
            })
            .await
    }

    /// Sends one signed request and returns the verified decision.
    async fn decide(
        &self,
        hub: &Hub,
        rp: &RelyingParty,
        dataset: &MatchingDataset,
        cycle: Cycle<'_>,
    ) -> Result<Decision, MatchingFailure> {
        let http = self.http().await?;
        let now = protocol::unix_now();
        let jti = token::random_opaque(24);
        let (attribute, value) = match cycle {
            Cycle::One => (None, None),
            Cycle::Three { attribute, value } => {
                (Some(attribute.to_owned()), Some(value.to_owned()))
            }
        };
        let request = MatchRequest {
            iss: hub.issuer.clone(),
            aud: self.identifier.clone(),
            iat: now,
            exp: now + MAX_LIFETIME_SECS,
            jti: jti.clone(),
            rp: rp.settings.client_id.clone(),
            cycle: cycle.number(),
            dataset: dataset.clone(),
            attribute,
            value,
        };
        let jws = hub
            .signing_key
            .sign_typed(&request, REQUEST_TYP)
            .map_err(MatchingFailure::Signing)?;
        let endpoint = format!("{}/match", self.identifier);
        let mut response = http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .body(jws)
            .send()
            .await
            .map_err(MatchingFailure::Transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(MatchingFailure::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
        {
            return Err(MatchingFailure::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(MatchingFailure::Transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(MatchingFailure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body);
        let expect = token::Expect {
            issuer: Some(self.identifier.clone()),
            audience: vec![hub.issuer.clone()],
            leeway_secs: RESPONSE_LEEWAY_SECS,
        };
        let answer: MatchResponse = self
            .keys
            .verify(http, body.trim(), RESPONSE_TYP, &expect)
            .await
            .map_err(|e| match e {
                VerifyError::Keys(e) => MatchingFailure::Keys(e),
                VerifyError::Token(e) => MatchingFailure::Rejected(e),
            })?;
        if !protocol::lifetime_ok(
            answer.iat,
            answer.exp,
            protocol::unix_now(),
            RESPONSE_LEEWAY_SECS as i64,
        ) {
            return Err(MatchingFailure::Lifetime);
        }
        if !token::secrets_equal(answer.in_response_to.as_bytes(), jti.as_bytes()) {
            return Err(MatchingFailure::NotOurs);
        }
        let decision = answer.decision;
        let consistent = match decision.outcome {
            Outcome::Match => decision.record_id.as_ref().is_some_and(|r| !r.0.is_empty()),
            Outcome::NoMatch | Outcome::Ambiguous => decision.record_id.is_none(),
        };
        if !consistent {
            return Err(MatchingFailure::Inconsistent);
        }
        Ok(decision)
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
        hub: &Hub,
        rp: &RelyingParty,
        dataset: &MatchingDataset,
        cycle: Cycle<'_>,
    ) -> Result<Decision, MatchingFailure> {
        match self {
            Placement::InHub => Ok(decide_locally(
                &hub.db,
                &rp.settings.client_id,
                &rp.settings.matching,
                dataset,
                cycle,
            )
            .await?),
            Placement::Remote(remote) => remote.decide(hub, rp, dataset, cycle).await,
        }
    }
}

/// The matching event, appended with the journey's next event (the assertion,
/// the cycle-3 question or the failure) in one append. A record link is saved
/// only after that append, so every link has its decision in the log.
fn defer_matching(hub: &Hub, journey: &Journey, cycle: u8, outcome: &str, reasons: &[String]) {
    let mut event = hub.audit.journey_event(EventType::Matching, journey);
    event.match_cycle = Some(cycle);
    event.outcome = Some(outcome.to_owned());
    event.reasons = reasons.to_vec();
    hub.audit.defer(journey, event);
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
    hub: &Hub,
    journey: &Journey,
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
    defer_matching(hub, journey, cycle, "unavailable", &[failure.code()]);
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
    hub: &Hub,
    rp: &RelyingParty,
    journey: &Journey,
    identity: &VerifiedIdentity,
    cycle: Cycle<'_>,
) -> Result<Decision, Next> {
    let placement = Placement::of(rp);
    let number = cycle.number();
    let decision = match placement.decide(hub, rp, &identity.dataset, cycle).await {
        Ok(decision) => decision,
        Err(failure) => return Err(unavailable(hub, journey, number, placement, &failure).await),
    };
    record_decision(hub, journey, number, placement, &decision);
    Ok(decision)
}

/// Logs a decision and defers its audit event.
fn record_decision(
    hub: &Hub,
    journey: &Journey,
    cycle: u8,
    placement: Placement<'_>,
    decision: &Decision,
) {
    log_decision(&journey.id, cycle, placement, decision);
    defer_matching(
        hub,
        journey,
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
    hub: &Hub,
    rp: &RelyingParty,
    identity: &VerifiedIdentity,
) -> Result<StoredLink, StoreError> {
    let rp_id = &rp.settings.client_id;
    let (idp, subject) = (&identity.idp_id, &identity.idp_subject);
    match Placement::of(rp) {
        Placement::InHub => {
            let keys = matching::query_blocking_keys(&identity.dataset);
            let limit = rp.settings.matching.max_candidates;
            Ok(
                match hub
                    .db
                    .link_or_candidates(rp_id, idp, subject, &keys, limit)
                    .await?
                {
                    LinkOrCandidates::Linked(record) => StoredLink::Linked(record),
                    LinkOrCandidates::Candidates(found) => StoredLink::Candidates(found),
                },
            )
        }
        Placement::Remote(_) => Ok(match hub.db.record_link(rp_id, idp, subject).await? {
            Some(record) => StoredLink::Linked(record),
            None => StoredLink::NotLinked,
        }),
    }
}

/// Cycles 0 and 1.
pub(crate) async fn first_attempt(
    hub: &Hub,
    rp: &RelyingParty,
    journey: &Journey,
    identity: &VerifiedIdentity,
) -> Next {
    let decision = match stored_link(hub, rp, identity).await {
        Err(e) => {
            return unavailable(
                hub,
                journey,
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
            defer_matching(hub, journey, 0, "match", &["cycle0:stored_link".to_owned()]);
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
            record_decision(hub, journey, 1, Placement::InHub, &decision);
            decision
        }
        Ok(StoredLink::NotLinked) => {
            match run_cycle(hub, rp, journey, identity, Cycle::One).await {
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

/// Cycle 3 with the citizen's answer (already format-checked).
pub(crate) async fn cycle3(
    hub: &Hub,
    rp: &RelyingParty,
    journey: &Journey,
    identity: &VerifiedIdentity,
    attribute: &str,
    value: &str,
) -> Next {
    let cycle = Cycle::Three { attribute, value };
    let decision = match run_cycle(hub, rp, journey, identity, cycle).await {
        Ok(decision) => decision,
        Err(next) => return next,
    };
    if decision.outcome == Outcome::Match {
        return matched(decision);
    }
    no_match(rp)
}
