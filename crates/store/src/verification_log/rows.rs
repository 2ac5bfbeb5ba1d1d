//! The rows the log's SQL reads and writes (schema: migrations `audit_log`
//! and `audit_retention`), and the searchable columns an event is stored with.

use diesel::prelude::*;

use super::time::event_time;
use crate::schema::{audit_checkpoints, audit_events, audit_nodes};

/// An audit event as stored (see the migration and [`crate::verification_log`]).
/// `None` means SQL NULL, also in multi-row inserts (not "column default").
#[derive(Insertable, Debug)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub(crate) struct AuditEventRow {
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) time: String,
    pub(crate) max_time: String,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) body: String,
    pub(crate) leaf_hash: String,
}

/// Everything the self-check reads of an event row.
#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = audit_events)]
pub(crate) struct AuditCheckRow {
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) time: String,
    pub(crate) max_time: String,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) body: String,
    pub(crate) leaf_hash: String,
    /// 1 once the event was pruned (body and searchable columns removed).
    pub(crate) pruned: i32,
}

/// A tree node of level >= 1, hash in lowercase hex.
#[derive(Insertable, Debug)]
#[diesel(table_name = audit_nodes)]
pub(crate) struct AuditNodeRow {
    pub(crate) level: i32,
    pub(crate) idx: i64,
    pub(crate) hash: String,
}

/// An `audit::Checkpoint` as stored.
#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = audit_checkpoints)]
pub(crate) struct CheckpointRow {
    pub(crate) tree_size: i64,
    pub(crate) root_hash: String,
    pub(crate) time: String,
    pub(crate) signature: String,
}

/// The conditions of one audit event query (one RP at most: a list of RPs is
/// one query per RP, merged by the caller, so that each walks its own
/// `(rp_id, seq)` index range).
#[derive(Debug, Default)]
pub(crate) struct AuditEventQuery<'a> {
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) rp: Option<&'a str>,
    pub(crate) idp: Option<&'a str>,
    pub(crate) event_type: Option<&'a str>,
    pub(crate) outcome: Option<&'a str>,
    pub(crate) journey_id: Option<&'a str>,
    pub(crate) after_seq: Option<i64>,
    /// Seq window derived from the time range (`max_time`): `seq >= seq_from`.
    pub(crate) seq_from: Option<i64>,
    /// ... and `seq < seq_below`.
    pub(crate) seq_below: Option<i64>,
    pub(crate) limit: i64,
}

/// `audit_head`: (size, max_time, max_lag_ms).
pub(crate) type HeadRow = (i64, Option<String>, i64);

/// `audit_head` as an append reads it: [`HeadRow`] and the seal.
pub(crate) type SealedHeadRow = (i64, Option<String>, i64, Option<String>);

/// Self-check counts from one snapshot.
#[derive(Debug)]
pub(crate) struct TailRow {
    /// `audit_head`, if its row exists.
    pub(crate) head: Option<HeadRow>,
    /// `audit_head.pruned_below`, if its row exists.
    pub(crate) pruned_below: Option<i64>,
    /// Rows in `audit_events`.
    pub(crate) events: i64,
    /// The highest seq in `audit_events`.
    pub(crate) max_seq: Option<i64>,
    /// Rows in `audit_nodes`.
    pub(crate) nodes: i64,
}

/// The columns of `audit_events` that copy an event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventColumns {
    pub(crate) id: String,
    pub(crate) time: String,
    /// `time` in milliseconds since the epoch (not a column: for `max_time`).
    pub(crate) millis: i64,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
}

impl EventColumns {
    /// The columns of `event`; why not, when its time is not RFC 3339.
    pub(crate) fn of(event: &audit::Event) -> Result<Self, String> {
        let (time, millis) = event_time(&event.time)?;
        Ok(Self {
            id: event.id.clone(),
            time,
            millis,
            journey_id: event.journey_id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            rp_id: event.rp.clone(),
            idp_id: event.idp.clone(),
            outcome: event.outcome.clone(),
        })
    }

    /// Names of the columns of `row` that differ from `self`.
    pub(crate) fn differences(&self, row: &AuditCheckRow) -> Vec<&'static str> {
        let mut out = Vec::new();
        let pairs: [(&'static str, Option<&str>, Option<&str>); 7] = [
            ("id", Some(&self.id), Some(&row.id)),
            ("time", Some(&self.time), Some(&row.time)),
            (
                "journey_id",
                self.journey_id.as_deref(),
                row.journey_id.as_deref(),
            ),
            ("event_type", Some(&self.event_type), Some(&row.event_type)),
            ("rp_id", self.rp_id.as_deref(), row.rp_id.as_deref()),
            ("idp_id", self.idp_id.as_deref(), row.idp_id.as_deref()),
            ("outcome", self.outcome.as_deref(), row.outcome.as_deref()),
        ];
        for (name, ours, stored) in pairs {
            if ours != stored {
                out.push(name);
            }
        }
        out
    }
}
