use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::hash::{leaf_hash, Hash};
use crate::AuditError;
use crate::Checkpoint;

/// One audit event. Field names (and order) are the public export format.
///
/// **Never put personal data in an event**: no names, dates of birth,
/// addresses, or IdP subjects, nor any other attribute. Events are kept for
/// good, copied to auditors and hashed into a log that can never be edited,
/// so personal data in one could never be erased. `subject` is only ever the
/// pairwise pseudonymous id; `reasons` and `outcome` are codes. Because of
/// this rule `Debug` prints every field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique id (UUID v4).
    pub id: String,
    /// When it happened: RFC 3339 UTC with millisecond precision.
    pub time: String,
    /// The journey it belongs to, if any.
    pub journey_id: Option<String>,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Relying party (client id), if any.
    pub rp: Option<String>,
    /// Identity provider id, if any.
    pub idp: Option<String>,
    /// Level of assurance asked for.
    pub level_requested: Option<String>,
    /// Level of assurance reached.
    pub level_achieved: Option<String>,
    /// e.g. `success`, `matched`, `no_match`, or a failure reason code.
    pub outcome: Option<String>,
    /// The pairwise pseudonymous id: never an IdP subject or any attribute.
    pub subject: Option<String>,
    /// Matching cycle (0, 1 or 3) that decided the match.
    pub match_cycle: Option<u8>,
    /// Matching reason codes (codes only, no personal data).
    pub reasons: Vec<String>,
    /// Id of the hub instance that recorded it.
    pub instance: String,
    /// For [`EventType::CheckpointPublished`]: the checkpoint, as signed. Left
    /// out of the JSON when absent, so events without it hash as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// For [`EventType::LogPruned`]: every event below this seq was pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_below: Option<u64>,
    /// For [`EventType::RegistryChanged`]: who made the change (an operator's client id,
    /// or `config` when the configuration file seeded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// For [`EventType::RegistryChanged`]: the names of the settings that changed (never
    /// their values, which may be secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl Event {
    /// An event of `event_type` recorded by `instance` now, with a fresh id and
    /// every optional field empty (fill them with struct update syntax).
    pub fn new(event_type: EventType, instance: impl Into<String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            time: rfc3339_now(),
            journey_id: None,
            event_type,
            rp: None,
            idp: None,
            level_requested: None,
            level_achieved: None,
            outcome: None,
            subject: None,
            match_cycle: None,
            reasons: Vec::new(),
            instance: instance.into(),
            checkpoint: None,
            pruned_below: None,
            actor: None,
            fields: None,
        }
    }

    /// The bytes that are hashed into the log (the leaf data of RFC 9162):
    /// compact `serde_json` of this struct, fields in declaration order, so
    /// anyone can recompute them from an exported event.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        // Cannot fail: every field is a string, an integer, a list of strings
        // or a unit enum variant, and writing to a Vec does no I/O.
        #[allow(clippy::expect_used)]
        serde_json::to_writer(&mut out, self).expect("an Event always serialises");
        out
    }

    /// `leaf_hash(canonical_bytes())`: the event's leaf in the tree.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

/// The current time as the log writes it: RFC 3339 UTC with milliseconds
/// (`2025-01-31T12:00:00.123Z`), so that times sort as strings.
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What happened. The `snake_case` names are the export format and the
/// store's `event_type` column.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An RP's authorization request was accepted.
    JourneyStarted,
    /// The user chose an IdP (or `idp_hint` chose one).
    IdpSelected,
    /// The IdP sent the user back and its response was validated.
    IdpReturned,
    /// Matching ran (cycle 0/1).
    Matching,
    /// The user was asked cycle 3 questions.
    Cycle3Asked,
    /// The user answered cycle 3.
    Cycle3Answered,
    /// A new account was created instead of a match.
    AccountCreated,
    /// A code was issued to the RP.
    AssertionIssued,
    /// The RP redeemed its code for tokens.
    TokensIssued,
    /// Userinfo was served.
    UserinfoServed,
    /// The journey ended in an error.
    JourneyFailed,
    /// A token request was refused.
    TokenRejected,
    /// A request was refused as malformed or hostile before anything was issued: a
    /// foreign `state`, a bad CSRF token, an unregistered `redirect_uri`, a failed
    /// client authentication, an invalid request object. `outcome` names the check.
    RequestRejected,
    /// An auditor obtained an access token.
    AuditorTokenIssued,
    /// An auditor exported events.
    AuditExported,
    /// A checkpoint was published (listed at `/audit/v1/checkpoints`): the
    /// event carries it, so a checkpoint deleted from storage is noticed.
    CheckpointPublished,
    /// The oldest events' bodies were pruned (retention); `pruned_below` says
    /// how far. A prune without this event is tampering.
    LogPruned,
    /// An operator obtained an access token for the admin API.
    OperatorTokenIssued,
    /// A relying party or identity provider was added, changed, disabled, enabled or
    /// retired in the registry: `rp` or `idp` names it, `outcome` says what was done,
    /// `actor` who did it, `fields` which settings changed.
    RegistryChanged,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 19] = [
        Self::JourneyStarted,
        Self::IdpSelected,
        Self::IdpReturned,
        Self::Matching,
        Self::Cycle3Asked,
        Self::Cycle3Answered,
        Self::AccountCreated,
        Self::AssertionIssued,
        Self::TokensIssued,
        Self::UserinfoServed,
        Self::JourneyFailed,
        Self::TokenRejected,
        Self::RequestRejected,
        Self::AuditorTokenIssued,
        Self::AuditExported,
        Self::CheckpointPublished,
        Self::LogPruned,
        Self::OperatorTokenIssued,
        Self::RegistryChanged,
    ];

    /// The `snake_case` name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JourneyStarted => "journey_started",
            Self::IdpSelected => "idp_selected",
            Self::IdpReturned => "idp_returned",
            Self::Matching => "matching",
            Self::Cycle3Asked => "cycle3_asked",
            Self::Cycle3Answered => "cycle3_answered",
            Self::AccountCreated => "account_created",
            Self::AssertionIssued => "assertion_issued",
            Self::TokensIssued => "tokens_issued",
            Self::UserinfoServed => "userinfo_served",
            Self::JourneyFailed => "journey_failed",
            Self::TokenRejected => "token_rejected",
            Self::RequestRejected => "request_rejected",
            Self::AuditorTokenIssued => "auditor_token_issued",
            Self::AuditExported => "audit_exported",
            Self::CheckpointPublished => "checkpoint_published",
            Self::LogPruned => "log_pruned",
            Self::OperatorTokenIssued => "operator_token_issued",
            Self::RegistryChanged => "registry_changed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = AuditError;

    /// Parses the `snake_case` name (e.g. a query filter).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| AuditError::UnknownEventType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Event {
        Event {
            id: "6f1c1d2e-8a54-4c1b-9b7e-0a4f3c2d1e0f".into(),
            time: "2025-03-01T10:15:30.123Z".into(),
            journey_id: Some("j-1".into()),
            rp: Some("rp-tax".into()),
            idp: Some("idp-post".into()),
            level_requested: Some("LEVEL_2".into()),
            level_achieved: Some("LEVEL_2".into()),
            outcome: Some("matched".into()),
            subject: Some("pw-abc".into()),
            match_cycle: Some(1),
            reasons: vec!["surname_exact".into()],
            ..Event::new(EventType::Matching, "hub-a")
        }
    }

    #[test]
    fn canonical_bytes_have_fixed_field_order() {
        let s = String::from_utf8(sample().canonical_bytes()).unwrap();
        assert_eq!(
            s,
            r#"{"id":"6f1c1d2e-8a54-4c1b-9b7e-0a4f3c2d1e0f","time":"2025-03-01T10:15:30.123Z","journey_id":"j-1","type":"matching","rp":"rp-tax","idp":"idp-post","level_requested":"LEVEL_2","level_achieved":"LEVEL_2","outcome":"matched","subject":"pw-abc","match_cycle":1,"reasons":["surname_exact"],"instance":"hub-a"}"#
        );
        assert_eq!(sample().leaf_hash(), leaf_hash(s.as_bytes()));
        let back: Event = serde_json::from_str(&s).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.canonical_bytes(), s.as_bytes());
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!(matches!(
            "JourneyStarted".parse::<EventType>(),
            Err(AuditError::UnknownEventType(_))
        ));
    }

    #[test]
    fn new_event_has_uuid_and_millisecond_utc_time() {
        let e = Event::new(EventType::JourneyStarted, "hub-a");
        assert!(uuid::Uuid::parse_str(&e.id).is_ok());
        assert_eq!(e.time.len(), "2025-03-01T10:15:30.123Z".len(), "{}", e.time);
        assert!(e.time.ends_with('Z'));
        assert_ne!(e.id, Event::new(EventType::JourneyStarted, "hub-a").id);
    }
}
