//! The journey: one citizen's way from a relying party through an identity provider and
//! matching back to the relying party, as an explicit state machine.
//!
//! ```text
//! started -> idp_selected -> idp_returned -> matching -> [cycle3_asked ->] completed
//!        \_____________\_______________\___________\______________\_____-> failed
//! ```
//! Only the transitions below exist; anything else (the Back button, a replayed form, a
//! second callback) is an [`InvalidTransition`] and ends the journey cleanly.

pub(crate) mod engine;
pub(crate) mod matching_step;
pub(crate) mod store;

use serde::{Deserialize, Serialize};

use crate::level::{Level, LevelRequest};
use crate::reason::Reason;
use crate::relying_party::{ClientId, RedirectUri};

/// What the RP asked for at `/authorize`, validated.
#[derive(Clone, Serialize, Deserialize)]
pub struct RpRequest {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub scope: Vec<String>,
    pub minimum_level: Level,
    /// `vtr` vectors when the RP used Vectors of Trust.
    pub vectors: Option<Vec<String>>,
    /// The RP's `ui_locales`, from the query, a request object or a pushed request: read
    /// at `/authorize` to choose the pages' language (then kept in a cookie).
    #[serde(default)]
    pub ui_locales: Option<String>,
}

impl RpRequest {
    pub fn level_request(&self) -> LevelRequest {
        LevelRequest {
            minimum: self.minimum_level.clone(),
            vectors: self.vectors.clone(),
        }
    }
}

impl std::fmt::Debug for RpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpRequest")
            .field("client_id", &self.client_id)
            .field("minimum_level", &self.minimum_level)
            .finish_non_exhaustive()
    }
}

/// The hub's own OIDC request to the chosen identity provider.
#[derive(Clone, Serialize, Deserialize)]
pub struct UpstreamRequest {
    pub idp_id: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("idp_id", &self.idp_id)
            .finish_non_exhaustive()
    }
}

/// What the identity provider asserted. Holds personal data: never log it.
#[derive(Clone, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub idp_id: String,
    pub idp_subject: String,
    pub level: Level,
    pub auth_time: i64,
    pub dataset: matching::MatchingDataset,
}

impl std::fmt::Debug for VerifiedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedIdentity")
            .field("idp_id", &self.idp_id)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The result of matching handed to the RP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchClaim {
    pub status: MatchStatus,
    /// The RP's record, only when `status` is `matched`: absent otherwise (never `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    Matched,
    Created,
    NoMatch,
}

impl MatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Created => "created",
            Self::NoMatch => "no_match",
        }
    }
}

/// Where a journey is. Each variant carries exactly what the next step needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum JourneyState {
    Started,
    IdpSelected {
        upstream: UpstreamRequest,
    },
    /// The identity provider could not prove the identity (or could not be reached):
    /// the citizen may try again, choose another, or go back to the RP with `reason`.
    IdpFailed {
        idp: String,
        reason: Reason,
    },
    IdpReturned {
        identity: VerifiedIdentity,
    },
    Matching {
        identity: VerifiedIdentity,
    },
    Cycle3Asked {
        identity: VerifiedIdentity,
        attribute: String,
    },
    Completed {
        outcome: MatchClaim,
    },
    Failed {
        reason: Reason,
    },
}

impl JourneyState {
    /// The step's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::IdpSelected { .. } => "idp_selected",
            Self::IdpFailed { .. } => "idp_failed",
            Self::IdpReturned { .. } => "idp_returned",
            Self::Matching { .. } => "matching",
            Self::Cycle3Asked { .. } => "cycle3_asked",
            Self::Completed { .. } => "completed",
            Self::Failed { .. } => "failed",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. })
    }
}

/// A step was attempted that the journey's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journey cannot {attempted} while {current}")]
pub struct InvalidTransition {
    pub current: &'static str,
    pub attempted: &'static str,
}

/// A journey's identifier: random, unguessable, in the journey's forms, log events and
/// the session store's key. Parsed once from a form; nothing else names a journey.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JourneyId(String);

impl JourneyId {
    /// A fresh identifier (24 random bytes, base64url).
    pub fn random() -> Self {
        Self(token::random_opaque(24))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JourneyId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl std::fmt::Display for JourneyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One journey. Stored in the session store under its id; bound to one browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journey {
    pub id: JourneyId,
    /// The browser session (cookie) this journey belongs to.
    pub browser: String,
    /// Anti-CSRF token embedded in the journey's forms.
    pub csrf: String,
    pub request: RpRequest,
    pub created_at: i64,
    pub expires_at: i64,
    pub state: JourneyState,
    /// The identity provider chosen last (kept after the journey ends, for the log).
    #[serde(default)]
    pub idp: Option<String>,
    /// The level the identity provider proved (kept after the journey ends).
    #[serde(default)]
    pub level_achieved: Option<Level>,
}

impl Journey {
    pub fn new(
        id: JourneyId,
        browser: String,
        csrf: String,
        request: RpRequest,
        now: i64,
        ttl: i64,
    ) -> Self {
        Self {
            id,
            browser,
            csrf,
            request,
            created_at: now,
            expires_at: now + ttl,
            state: JourneyState::Started,
            idp: None,
            level_achieved: None,
        }
    }

    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    fn invalid(&self, attempted: &'static str) -> InvalidTransition {
        InvalidTransition {
            current: self.state.name(),
            attempted,
        }
    }

    /// started -> idp_selected. Choosing again from a not-yet-returned journey (the
    /// citizen pressed Back at the IdP) or after the IdP failed is allowed and replaces
    /// the upstream request.
    pub fn select_idp(&mut self, upstream: UpstreamRequest) -> Result<(), InvalidTransition> {
        match self.state {
            JourneyState::Started
            | JourneyState::IdpSelected { .. }
            | JourneyState::IdpFailed { .. } => {
                self.idp = Some(upstream.idp_id.clone());
                self.state = JourneyState::IdpSelected { upstream };
                Ok(())
            }
            _ => Err(self.invalid("select an identity provider")),
        }
    }

    /// The pending upstream request, if the journey is waiting for the IdP.
    pub fn upstream(&self) -> Option<&UpstreamRequest> {
        match &self.state {
            JourneyState::IdpSelected { upstream } => Some(upstream),
            _ => None,
        }
    }

    /// started | idp_selected | idp_failed -> idp_failed: `idp` could not be reached, or
    /// did not prove the identity, for `reason` (again, after "try again").
    pub fn idp_failed(&mut self, idp: &str, reason: Reason) -> Result<(), InvalidTransition> {
        match self.state {
            JourneyState::Started
            | JourneyState::IdpSelected { .. }
            | JourneyState::IdpFailed { .. } => {
                self.idp = Some(idp.to_owned());
                self.state = JourneyState::IdpFailed {
                    idp: idp.to_owned(),
                    reason,
                };
                Ok(())
            }
            _ => Err(self.invalid("record an identity provider failure")),
        }
    }

    /// Whether the citizen is choosing an identity provider (the picker may be shown).
    pub fn is_choosing(&self) -> bool {
        matches!(
            self.state,
            JourneyState::Started
                | JourneyState::IdpSelected { .. }
                | JourneyState::IdpFailed { .. }
        )
    }

    /// idp_selected -> idp_returned.
    pub fn idp_returned(&mut self, identity: VerifiedIdentity) -> Result<(), InvalidTransition> {
        match self.state {
            JourneyState::IdpSelected { .. } => {
                self.level_achieved = Some(identity.level.clone());
                self.state = JourneyState::IdpReturned { identity };
                Ok(())
            }
            _ => Err(self.invalid("accept an identity provider response")),
        }
    }

    /// idp_returned -> matching.
    pub fn start_matching(&mut self) -> Result<&VerifiedIdentity, InvalidTransition> {
        let state = std::mem::replace(&mut self.state, JourneyState::Started);
        match state {
            JourneyState::IdpReturned { identity } => {
                self.state = JourneyState::Matching { identity };
                match &self.state {
                    JourneyState::Matching { identity } => Ok(identity),
                    _ => Err(self.invalid("start matching")),
                }
            }
            other => {
                self.state = other;
                Err(self.invalid("start matching"))
            }
        }
    }

    /// matching -> cycle3_asked.
    pub fn ask_cycle3(&mut self, attribute: String) -> Result<(), InvalidTransition> {
        let state = std::mem::replace(&mut self.state, JourneyState::Started);
        match state {
            JourneyState::Matching { identity } => {
                self.state = JourneyState::Cycle3Asked {
                    identity,
                    attribute,
                };
                Ok(())
            }
            other => {
                self.state = other;
                Err(self.invalid("ask a cycle-3 question"))
            }
        }
    }

    /// The identity being matched, in `matching` or `cycle3_asked`.
    pub fn identity(&self) -> Option<&VerifiedIdentity> {
        match &self.state {
            JourneyState::IdpReturned { identity }
            | JourneyState::Matching { identity }
            | JourneyState::Cycle3Asked { identity, .. } => Some(identity),
            _ => None,
        }
    }

    /// cycle3_asked -> matching (the citizen answered or declined).
    pub fn cycle3_answered(&mut self) -> Result<(), InvalidTransition> {
        let state = std::mem::replace(&mut self.state, JourneyState::Started);
        match state {
            JourneyState::Cycle3Asked { identity, .. } => {
                self.state = JourneyState::Matching { identity };
                Ok(())
            }
            other => {
                self.state = other;
                Err(self.invalid("answer the cycle-3 question"))
            }
        }
    }

    /// matching -> completed.
    pub fn complete(&mut self, outcome: MatchClaim) -> Result<(), InvalidTransition> {
        match self.state {
            JourneyState::Matching { .. } => {
                self.state = JourneyState::Completed { outcome };
                Ok(())
            }
            _ => Err(self.invalid("complete")),
        }
    }

    /// any unfinished state -> failed.
    pub fn fail(&mut self, reason: Reason) -> Result<(), InvalidTransition> {
        if self.state.is_finished() {
            return Err(self.invalid("fail"));
        }
        self.state = JourneyState::Failed { reason };
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::level::Levels;

    pub(crate) fn journey() -> Journey {
        let levels = Levels::new(vec!["P1".into(), "P2".into()]);
        // Read as from a stored journey: only the hub's checks make these from a request.
        let request = RpRequest {
            client_id: serde_json::from_value("rp".into()).unwrap(),
            redirect_uri: serde_json::from_value("https://rp/cb".into()).unwrap(),
            state: None,
            nonce: None,
            code_challenge: "c".into(),
            scope: vec!["openid".into()],
            minimum_level: levels.parse("P2").unwrap(),
            vectors: None,
            ui_locales: None,
        };
        Journey::new(
            JourneyId::from("j"),
            "b".into(),
            "csrf".into(),
            request,
            1000,
            5400,
        )
    }

    fn upstream() -> UpstreamRequest {
        UpstreamRequest {
            idp_id: "idp".into(),
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
        }
    }

    fn identity() -> VerifiedIdentity {
        VerifiedIdentity {
            idp_id: "idp".into(),
            idp_subject: "sub".into(),
            level: Levels::new(vec!["P2".into()]).parse("P2").unwrap(),
            auth_time: 1,
            dataset: matching::MatchingDataset::default(),
        }
    }

    #[test]
    fn happy_path_with_cycle3() {
        let mut j = journey();
        j.select_idp(upstream()).unwrap();
        j.idp_returned(identity()).unwrap();
        j.start_matching().unwrap();
        j.ask_cycle3("nino".into()).unwrap();
        assert_eq!(j.state.name(), "cycle3_asked");
        j.cycle3_answered().unwrap();
        j.complete(MatchClaim {
            status: MatchStatus::Matched,
            record_id: Some("1".into()),
        })
        .unwrap();
        assert!(j.state.is_finished());
    }

    #[test]
    fn back_button_after_completion_is_rejected() {
        let mut j = journey();
        j.select_idp(upstream()).unwrap();
        j.idp_returned(identity()).unwrap();
        j.start_matching().unwrap();
        j.complete(MatchClaim {
            status: MatchStatus::Created,
            record_id: None,
        })
        .unwrap();
        let err = j.select_idp(upstream()).unwrap_err();
        assert_eq!(err.current, "completed");
        assert!(
            j.fail(Reason::UserCancelled).is_err(),
            "a finished journey cannot fail again"
        );
        assert!(j.idp_returned(identity()).is_err());
    }

    #[test]
    fn reselecting_before_return_is_allowed_but_second_return_is_not() {
        let mut j = journey();
        j.select_idp(upstream()).unwrap();
        j.select_idp(upstream()).unwrap();
        j.idp_returned(identity()).unwrap();
        assert!(j.idp_returned(identity()).is_err());
        assert!(j.select_idp(upstream()).is_err());
    }

    #[test]
    fn skipping_steps_is_rejected_and_leaves_state_unchanged() {
        let mut j = journey();
        assert!(j.start_matching().is_err());
        assert!(j.ask_cycle3("nino".into()).is_err());
        assert!(j.cycle3_answered().is_err());
        assert!(j
            .complete(MatchClaim {
                status: MatchStatus::Matched,
                record_id: None
            })
            .is_err());
        assert_eq!(j.state.name(), "started");
        j.fail(Reason::UserCancelled).unwrap();
        assert_eq!(j.state.name(), "failed");
    }

    fn claim() -> MatchClaim {
        MatchClaim {
            status: MatchStatus::Matched,
            record_id: Some("1".into()),
        }
    }

    /// A journey brought to the state named `name` by allowed transitions.
    fn in_state(name: &str) -> Journey {
        let mut j = journey();
        let path: &[fn(&mut Journey)] = match name {
            "started" => &[],
            "idp_selected" => &[|j| j.select_idp(upstream()).unwrap()],
            "idp_failed" => &[
                |j| j.select_idp(upstream()).unwrap(),
                |j| j.idp_failed("idp", Reason::IdpUnavailable).unwrap(),
            ],
            "idp_returned" => &[
                |j| j.select_idp(upstream()).unwrap(),
                |j| j.idp_returned(identity()).unwrap(),
            ],
            "matching" => &[
                |j| j.select_idp(upstream()).unwrap(),
                |j| j.idp_returned(identity()).unwrap(),
                |j| {
                    j.start_matching().unwrap();
                },
            ],
            "cycle3_asked" => &[
                |j| j.select_idp(upstream()).unwrap(),
                |j| j.idp_returned(identity()).unwrap(),
                |j| {
                    j.start_matching().unwrap();
                },
                |j| j.ask_cycle3("nino".into()).unwrap(),
            ],
            "completed" => &[
                |j| j.select_idp(upstream()).unwrap(),
                |j| j.idp_returned(identity()).unwrap(),
                |j| {
                    j.start_matching().unwrap();
                },
                |j| j.complete(claim()).unwrap(),
            ],
            "failed" => &[|j| j.fail(Reason::NoMatch).unwrap()],
            other => panic!("no state {other}"),
        };
        for step in path {
            step(&mut j);
        }
        assert_eq!(j.state.name(), name);
        j
    }

    /// Every transition from every state: the state it leads to, or refused with the
    /// state unchanged (`-`).
    #[test]
    fn every_transition_from_every_state() {
        type Transition = fn(&mut Journey) -> bool;
        let transitions: [(&str, Transition); 8] = [
            ("select_idp", |j| j.select_idp(upstream()).is_ok()),
            ("idp_failed", |j| {
                j.idp_failed("idp", Reason::IdpError).is_ok()
            }),
            ("idp_returned", |j| j.idp_returned(identity()).is_ok()),
            ("start_matching", |j| j.start_matching().is_ok()),
            ("ask_cycle3", |j| j.ask_cycle3("nino".into()).is_ok()),
            ("cycle3_answered", |j| j.cycle3_answered().is_ok()),
            ("complete", |j| j.complete(claim()).is_ok()),
            ("fail", |j| j.fail(Reason::IdpError).is_ok()),
        ];
        #[rustfmt::skip]
        let table = [
            //  state            select_idp      idp_failed    idp_returned    start_matching ask_cycle3      cycle3_answered complete     fail
            ("started",      ["idp_selected", "idp_failed", "-",            "-",           "-",            "-",           "-",         "failed"]),
            ("idp_selected", ["idp_selected", "idp_failed", "idp_returned", "-",           "-",            "-",           "-",         "failed"]),
            ("idp_failed",   ["idp_selected", "idp_failed", "-",            "-",           "-",            "-",           "-",         "failed"]),
            ("idp_returned", ["-",            "-",          "-",            "matching",    "-",            "-",           "-",         "failed"]),
            ("matching",     ["-",            "-",          "-",            "-",           "cycle3_asked", "-",           "completed", "failed"]),
            ("cycle3_asked", ["-",            "-",          "-",            "-",           "-",            "matching",    "-",         "failed"]),
            ("completed",    ["-",            "-",          "-",            "-",           "-",            "-",           "-",         "-"]),
            ("failed",       ["-",            "-",          "-",            "-",           "-",            "-",           "-",         "-"]),
        ];
        for (state, expected) in table {
            for ((name, transition), next) in transitions.iter().zip(expected) {
                let mut j = in_state(state);
                let allowed = transition(&mut j);
                if next == "-" {
                    assert!(!allowed, "{state} --{name}--> must be refused");
                    assert_eq!(j.state.name(), state, "a refused {name} changed {state}");
                } else {
                    assert!(allowed, "{state} --{name}--> must be allowed");
                    assert_eq!(j.state.name(), next, "{state} --{name}-->");
                }
            }
        }
    }

    #[test]
    fn a_failed_journey_keeps_its_reason_as_its_code() {
        let j = in_state("failed");
        let json = serde_json::to_value(&j.state).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"step": "failed", "reason": "no_match"})
        );
        let back: JourneyState = serde_json::from_value(json).unwrap();
        assert!(matches!(
            back,
            JourneyState::Failed {
                reason: Reason::NoMatch
            }
        ));
    }

    #[test]
    fn expiry_and_round_trip() {
        let j = journey();
        assert!(!j.is_expired(1000 + 5399));
        assert!(j.is_expired(1000 + 5400));
        let json = serde_json::to_string(&j).unwrap();
        let back: Journey = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state.name(), "started");
    }
}
