//! What auditors read: events by filter, one event, the log's size, roots
//! and proofs (RFC 9162), each from one connection in a few indexed queries.

use audit::Hash;

use super::encoding::{decode_event, head_size, stored_seq, to_i64};
use super::rows::AuditEventQuery;
use super::sql;
use super::time::bound_time;
use super::tree::{node_coords, node_map, require_all};
use crate::database::{with_conn, Database};
use crate::error::StoreError;

/// Most events [`crate::Database::audit_events`] returns per call.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// Which events [`crate::Database::audit_events`] returns; every `Some` field
/// must match (AND). `Default` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events at or after this instant (RFC 3339, any offset).
    pub from: Option<String>,
    /// Events strictly before this instant (RFC 3339, any offset).
    pub to: Option<String>,
    /// Restricts the result to these RPs (an auditor scoped to some RPs):
    /// events without an RP never match, and an empty list matches nothing.
    pub rps: Option<Vec<String>>,
    /// Events of this RP only (within `rps` if both are given).
    pub rp: Option<String>,
    /// Events involving this IdP.
    pub idp: Option<String>,
    /// Events of this type (`audit::EventType` in its snake_case form).
    pub event_type: Option<String>,
    /// Events with this outcome.
    pub outcome: Option<String>,
    /// Events of this journey.
    pub journey_id: Option<String>,
}

impl Database {
    /// How many events the audit log holds (the next event's seq).
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let size = with_conn!(self, sql, |conn, q| q::audit_size(&mut conn).await?);
        head_size(size)
    }

    /// Up to `limit` (at most [`MAX_AUDIT_PAGE`]) events matching `filter`
    /// with seq greater than `after_seq`, in seq order: pass the last seq
    /// returned to get the next page. Pruned events are never returned: the
    /// seq range starts after them, so no page walks over them.
    ///
    /// With a list of RPs ([`AuditFilter::rps`]) each RP is one query along
    /// its `(rp_id, seq)` index, merged here, so every query reads at most
    /// `limit` rows however large the log. Fails with
    /// [`StoreError::InvalidInput`] for a bound that is not RFC 3339.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, audit::Event)>, StoreError> {
        let limit = limit.min(MAX_AUDIT_PAGE);
        let from = filter
            .from
            .as_deref()
            .map(|t| bound_time("from", t))
            .transpose()?;
        let to = filter
            .to
            .as_deref()
            .map(|t| bound_time("to", t))
            .transpose()?;
        // The RPs to query: `None` for any RP, else the allowed ones.
        let rps: Option<Vec<&str>> = match (&filter.rps, &filter.rp) {
            (None, None) => None,
            (None, Some(rp)) => Some(vec![rp.as_str()]),
            (Some(allowed), None) => {
                let mut list: Vec<&str> = allowed.iter().map(String::as_str).collect();
                list.sort_unstable();
                list.dedup();
                Some(list)
            }
            (Some(allowed), Some(rp)) => Some(if allowed.contains(rp) {
                vec![rp.as_str()]
            } else {
                Vec::new()
            }),
        };
        if limit == 0 || rps.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut base = AuditEventQuery {
            from: from.as_ref().map(|b| b.text.as_str()),
            to: to.as_ref().map(|b| b.text.as_str()),
            rp: None,
            idp: filter.idp.as_deref(),
            event_type: filter.event_type.as_deref(),
            outcome: filter.outcome.as_deref(),
            journey_id: filter.journey_id.as_deref(),
            after_seq: after_seq.map(to_i64).transpose()?,
            seq_from: None,
            seq_below: None,
            limit: i64::from(limit),
        };
        let rows = with_conn!(self, sql, |conn, q| {
            let pruned_below = q::audit_pruned_below(&mut conn)
                .await?
                .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
            // A time range becomes a seq window (see the migration): events
            // at or after `from` have max_time >= from; events before `to`
            // have max_time < to + max_lag_ms. Both ends are one index
            // descent, and the page query then reads only that window.
            let mut nothing = false;
            if from.is_some() || to.is_some() {
                let (_, _, lag) = q::audit_head_row(&mut conn)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
                if let Some(from) = &from {
                    base.seq_from = q::audit_first_seq_reaching(&mut conn, &from.text).await?;
                    nothing = base.seq_from.is_none();
                }
                if let Some(bound) = to.as_ref().and_then(|to| to.plus_lag(lag)) {
                    base.seq_below = q::audit_first_seq_reaching(&mut conn, &bound).await?;
                }
            }
            if pruned_below > 0 {
                base.seq_from = Some(base.seq_from.map_or(pruned_below, |s| s.max(pruned_below)));
            }
            match &rps {
                _ if nothing => Vec::new(),
                None => q::audit_event_page(&mut conn, &base).await?,
                Some(list) => {
                    let mut merged = Vec::new();
                    for rp in list {
                        let query = AuditEventQuery {
                            rp: Some(rp),
                            ..base
                        };
                        merged.extend(q::audit_event_page(&mut conn, &query).await?);
                    }
                    merged.sort_unstable_by_key(|r| r.0);
                    merged.truncate(limit as usize);
                    merged
                }
            }
        });
        rows.into_iter()
            .map(|(seq, body)| Ok((stored_seq(seq)?, decode_event(seq, &body)?)))
            .collect()
    }

    /// The event at `seq`, if the log has one and it was not pruned.
    pub async fn audit_event(&self, seq: u64) -> Result<Option<audit::Event>, StoreError> {
        let seq = to_i64(seq)?;
        let body = with_conn!(self, sql, |conn, q| q::audit_event_body(&mut conn, seq)
            .await?);
        body.map(|b| decode_event(seq, &b)).transpose()
    }

    /// The Merkle tree hash (RFC 9162) of the first `size` events; fails with
    /// [`StoreError::InvalidInput`] when the log is smaller.
    pub async fn audit_root(&self, size: u64) -> Result<Hash, StoreError> {
        self.with_tree(size, |s| audit::root(size, s)).await
    }

    /// The inclusion proof of event `seq` in the tree of the first `size`
    /// events (RFC 9162 §2.1.3.1).
    pub async fn audit_inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if seq >= size {
            return Err(StoreError::InvalidInput(format!(
                "event {seq} is not in a tree of {size} events"
            )));
        }
        self.with_tree(size, |s| audit::inclusion_proof(seq, size, s))
            .await
    }

    /// The consistency proof between the trees of the first `first` and
    /// `second` events (RFC 9162 §2.1.4.1).
    pub async fn audit_consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if first > second {
            return Err(StoreError::InvalidInput(format!(
                "no consistency proof from size {first} back to {second}"
            )));
        }
        self.with_tree(second, |s| audit::consistency_proof(first, second, s))
            .await
    }

    /// Runs a tree function against the stored nodes: records the nodes it
    /// reads (`audit::required_nodes`), fetches them in one query, runs it
    /// again for real. `size` (the largest tree `f` reads) must be within the log.
    async fn with_tree<T>(
        &self,
        size: u64,
        f: impl Fn(&dyn audit::NodeSource) -> Result<T, audit::AuditError>,
    ) -> Result<T, StoreError> {
        let needed = audit::required_nodes(&f);
        let coords = node_coords(&needed)?;
        let (head, rows) = with_conn!(self, sql, |conn, q| {
            let head = q::audit_size(&mut conn).await?;
            (head, q::audit_node_rows(&mut conn, &coords).await?)
        });
        let head = head_size(head)?;
        if size > head {
            return Err(StoreError::InvalidInput(format!(
                "the audit log has {head} events, not {size}"
            )));
        }
        let map = node_map(rows)?;
        require_all(&map, &needed)?;
        // Every node it reads is present: any error is about the arguments.
        f(&map).map_err(|e| StoreError::InvalidInput(e.to_string()))
    }
}
