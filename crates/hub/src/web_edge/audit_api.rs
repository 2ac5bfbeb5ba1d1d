//! The auditor API (`/audit/v1/...`), described by the OpenAPI document it serves.
//!
//! Auditors authenticate with OAuth client credentials at the hub's own `/token` (scope
//! `audit:read`). An auditor limited to some relying parties sees only their events: in
//! queries, exports and inclusion proofs alike.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use audit::EventType;
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;
use store::AuditFilter;

use super::service_clients::{self, ApiError, ClientGrant, ServiceClient};
use super::token_endpoint::OAuthError;
use crate::verification_log::checkpoints as log_checkpoints;
use crate::verification_log::VerificationLog;

const READ_SCOPE: &str = "audit:read";
const PAGE: u32 = 500;

/// What an auditor's access token stands for.
type AuditorGrant = ClientGrant;

/// `grant_type=client_credentials` at `/token` for auditor clients.
pub(crate) async fn auditor_token(
    log: &VerificationLog,
    req: &HttpRequest,
    scope: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let auditors = log.auditors.iter().map(|a| ServiceClient {
        client_id: &a.client_id,
        secret: &a.client_secret,
        scopes: &a.scopes,
        rps: a.rps.as_deref(),
    });
    let Some(auditor) = service_clients::authenticated(req, auditors) else {
        log.trail.rejected(None, None, "auditor_auth_failed").await;
        return Err(OAuthError::invalid_client("Client authentication failed"));
    };
    let mut event = log.trail.event(EventType::AuditorTokenIssued);
    event.outcome = Some(auditor.client_id.to_owned());
    service_clients::issue(
        &log.sessions,
        &log.trail,
        auditor,
        scope,
        log.token_ttl,
        event,
    )
    .await
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such event")
    }
}

/// The caller's grant: 401 without a valid token, 403 without `audit:read`. A refusal
/// is a `request_rejected` event, as a failed client authentication at `/token` is.
async fn auditor(log: &VerificationLog, req: &HttpRequest) -> Result<AuditorGrant, ApiError> {
    let refusals = ["auditor_token_invalid", "auditor_scope_insufficient"];
    service_clients::grant(&log.sessions, &log.trail, req, READ_SCOPE, refusals).await
}

/// Filters of `/events` and the exports.
#[derive(Debug, Deserialize)]
pub(crate) struct EventQuery {
    from: Option<String>,
    to: Option<String>,
    rp: Option<String>,
    idp: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    outcome: Option<String>,
    journey: Option<String>,
    cursor: Option<u64>,
    limit: Option<u32>,
    tree_size: Option<u64>,
}

impl EventQuery {
    /// True when the export is a subset of the log (filters, or a scoped auditor): each
    /// event then carries an inclusion proof. A complete export carries none: the verifier
    /// recomputes the root from all events, which also proves that none is missing.
    fn is_partial(&self, grant: &AuditorGrant) -> bool {
        grant.rps.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.rp.is_some()
            || self.idp.is_some()
            || self.event_type.is_some()
            || self.outcome.is_some()
            || self.journey.is_some()
    }

    /// The store's filter for this query; times that are not RFC 3339 are the
    /// auditor's mistake (400), not an outage.
    fn filter(&self, grant: &AuditorGrant) -> Result<AuditFilter, ApiError> {
        for (name, value) in [("from", &self.from), ("to", &self.to)] {
            if value
                .as_deref()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
            {
                return Err(ApiError::bad_request(format!(
                    "{name} must be an RFC 3339 time"
                )));
            }
        }
        Ok(AuditFilter {
            from: self.from.clone(),
            to: self.to.clone(),
            rps: grant.rps.clone(),
            rp: self.rp.clone(),
            idp: self.idp.clone(),
            event_type: self.event_type.clone(),
            outcome: self.outcome.clone(),
            journey_id: self.journey.clone(),
        })
    }
}

/// GET /audit/v1/events: a page of events, oldest first, and the cursor of the next page.
pub(crate) async fn events(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let grant = auditor(&log, &req).await?;
    let filter = q.filter(&grant)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = log
        .db
        .audit_events(&filter, q.cursor, limit)
        .await
        .map_err(ApiError::unavailable)?;
    let next = if page.len() as u32 == limit {
        page.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    let events: Vec<_> = page
        .iter()
        .map(|(seq, e)| audit::ExportedEvent::new(*seq, e.clone()))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"events": events, "next_cursor": next})))
}

/// The checkpoint an export is proved against: the current one, or one of `tree_size`
/// (the published one if there is one, else signed now over the stored tree: the log's
/// root at that size does not change). Stores nothing.
async fn export_checkpoint(
    log: &VerificationLog,
    tree_size: Option<u64>,
) -> Result<audit::Checkpoint, ApiError> {
    let current = log_checkpoints::current(&log.db, &log.seal.key())
        .await
        .map_err(ApiError::unavailable)?;
    let Some(size) = tree_size.filter(|&s| s != current.tree_size) else {
        return Ok(current);
    };
    if size > current.tree_size {
        return Err(ApiError::bad_request(
            "tree_size must not exceed the log's size",
        ));
    }
    log_checkpoints::at_size(&log.db, &log.seal.key(), size)
        .await
        .map_err(ApiError::unavailable)
}

/// Pages through the filtered events below `tree_size`, in log order.
fn pages(
    log: web::Data<VerificationLog>,
    filter: AuditFilter,
    tree_size: u64,
) -> impl futures::Stream<Item = Result<Vec<(u64, audit::Event)>, ApiError>> {
    stream::unfold(Some(None::<u64>), move |cursor| {
        let (log, filter) = (log.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            match log.db.audit_events(&filter, cursor, PAGE).await {
                Err(e) => Some((Err(ApiError::unavailable(e)), None)),
                Ok(page) => {
                    let full = page.len() as u32 == PAGE;
                    let page: Vec<_> = page
                        .into_iter()
                        .filter(|(seq, _)| *seq < tree_size)
                        .collect();
                    let next = match page.last() {
                        Some((seq, _)) if full => Some(Some(*seq)),
                        _ => None,
                    };
                    if page.is_empty() && next.is_none() {
                        return None;
                    }
                    Some((Ok(page), next))
                }
            }
        }
    })
}

async fn record_export(
    log: &VerificationLog,
    grant: &AuditorGrant,
    format: &str,
) -> Result<(), ApiError> {
    let mut event = log.trail.event(EventType::AuditExported);
    event.outcome = Some(format!("{}:{format}", grant.client_id));
    log.trail.record(event).await.map_err(ApiError::unavailable)
}

/// GET /audit/v1/export.jsonl: streamed JSON lines of the events below the checkpoint named
/// in the `audit-checkpoint-tree-size` header; in a partial export each with its inclusion
/// proof against that checkpoint.
pub(crate) async fn export_jsonl(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let grant = auditor(&log, &req).await?;
    let filter = q.filter(&grant)?;
    let checkpoint = export_checkpoint(&log, q.tree_size).await?;
    record_export(&log, &grant, "jsonl").await?;
    let size = checkpoint.tree_size;
    // After retention pruned the oldest events, even an unfiltered export is partial.
    let pruned = log
        .db
        .audit_pruned_below()
        .await
        .map_err(ApiError::unavailable)?
        > 0;
    let partial = pruned || q.is_partial(&grant);
    let proving = log.clone();
    let body = pages(log.clone(), filter, size).then(move |page| {
        let log = proving.clone();
        async move {
            let mut out = Vec::new();
            for (seq, event) in page? {
                let mut line = audit::ExportedEvent::new(seq, event);
                if partial {
                    let proof = log
                        .db
                        .audit_inclusion_proof(seq, size)
                        .await
                        .map_err(ApiError::unavailable)?;
                    line = line.with_proof(&proof);
                }
                let line = serde_json::to_vec(&line).map_err(ApiError::unavailable)?;
                out.extend_from_slice(&line);
                out.push(b'\n');
            }
            Ok::<_, ApiError>(web::Bytes::from(out))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("audit-checkpoint-tree-size", size.to_string()))
        .streaming(body))
}

const CSV_HEADER: &str =
    "index,id,time,journey_id,type,rp,idp,level_requested,level_achieved,outcome,subject,match_cycle,reasons,instance\n";

fn csv_row(seq: u64, e: &audit::Event) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let kind = serde_json::to_value(e.event_type).map_err(ApiError::unavailable)?;
    let cycle = e.match_cycle.map(|c| c.to_string());
    w.write_record([
        seq.to_string().as_str(),
        &e.id,
        &e.time,
        e.journey_id.as_deref().unwrap_or(""),
        kind.as_str().unwrap_or(""),
        e.rp.as_deref().unwrap_or(""),
        e.idp.as_deref().unwrap_or(""),
        e.level_requested.as_deref().unwrap_or(""),
        e.level_achieved.as_deref().unwrap_or(""),
        e.outcome.as_deref().unwrap_or(""),
        e.subject.as_deref().unwrap_or(""),
        cycle.as_deref().unwrap_or(""),
        &e.reasons.join("|"),
        &e.instance,
    ])
    .map_err(ApiError::unavailable)?;
    w.into_inner().map_err(ApiError::unavailable)
}

/// GET /audit/v1/export.csv: the same events as CSV (no proofs), streamed.
pub(crate) async fn export_csv(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let grant = auditor(&log, &req).await?;
    let filter = q.filter(&grant)?;
    let checkpoint = export_checkpoint(&log, q.tree_size).await?;
    record_export(&log, &grant, "csv").await?;
    let header =
        stream::once(async { Ok::<_, ApiError>(web::Bytes::from_static(CSV_HEADER.as_bytes())) });
    let rows = pages(log.clone(), filter, checkpoint.tree_size).map(|page| {
        let mut out = Vec::new();
        for (seq, event) in page? {
            out.extend(csv_row(seq, &event)?);
        }
        Ok(web::Bytes::from(out))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "audit-checkpoint-tree-size",
            checkpoint.tree_size.to_string(),
        ))
        .streaming(header.chain(rows)))
}

/// How a checkpoint is served.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckpointFormat {
    /// JSON with the JWS the hub's JWKS verifies.
    #[default]
    Json,
    /// A C2SP tlog-checkpoint signed note, for witnesses.
    Note,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckpointQuery {
    tree_size: Option<u64>,
    #[serde(default)]
    format: CheckpointFormat,
}

/// GET /audit/v1/checkpoint: the current checkpoint (the head's seal, signed by the
/// append that made it), or one of `tree_size` (e.g. the one an export names), as JSON
/// or (`format=note`) as a signed note. Reading it stores nothing.
pub(crate) async fn checkpoint(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<CheckpointQuery>,
) -> Result<HttpResponse, ApiError> {
    auditor(&log, &req).await?;
    let checkpoint = export_checkpoint(&log, q.tree_size).await?;
    match q.format {
        CheckpointFormat::Json => Ok(HttpResponse::Ok().json(checkpoint)),
        CheckpointFormat::Note => {
            let note =
                log_checkpoints::note(&checkpoint, &log.note).map_err(ApiError::unavailable)?;
            Ok(HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(note))
        }
    }
}

/// GET /audit/v1/log: the log's identity for witnesses and monitors: its origin and the
/// verifier key of its checkpoint notes.
pub(crate) async fn log(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auditor(&log, &req).await?;
    Ok(HttpResponse::Ok().json(json!({
        "origin": log.note.name().as_str(),
        "note_verifier_key": log.note.verifier_key(),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckpointsQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// GET /audit/v1/checkpoints: the published checkpoints (one per
/// `audit.checkpoint_interval_secs` while the log grows), oldest first, a page at a
/// time: pass the last `tree_size` as `after` for the next.
pub(crate) async fn checkpoints(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<CheckpointsQuery>,
) -> Result<HttpResponse, ApiError> {
    auditor(&log, &req).await?;
    let limit = q.limit.unwrap_or(PAGE).clamp(1, store::MAX_AUDIT_PAGE);
    let page = log
        .db
        .checkpoints_after(q.after, limit)
        .await
        .map_err(ApiError::unavailable)?;
    let next = (page.len() as u32 == limit)
        .then(|| page.last().map(|c| c.tree_size))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({"checkpoints": page, "next_after": next})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct InclusionQuery {
    index: u64,
    tree_size: Option<u64>,
}

/// GET /audit/v1/proof/inclusion: proof that event `index` is in the tree of `tree_size`.
/// Only for events the auditor may see. A `tree_size` beyond the log is the auditor's
/// mistake (400, as for `/proof/consistency`), not an outage.
pub(crate) async fn inclusion(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let grant = auditor(&log, &req).await?;
    let size = match q.tree_size {
        Some(s) => {
            let log_size = log.db.audit_size().await.map_err(ApiError::unavailable)?;
            if s > log_size {
                return Err(ApiError::bad_request(
                    "tree_size must not exceed the log's size",
                ));
            }
            s
        }
        None => {
            log_checkpoints::current(&log.db, &log.seal.key())
                .await
                .map_err(ApiError::unavailable)?
                .tree_size
        }
    };
    if q.index >= size {
        return Err(ApiError::bad_request("index must be below tree_size"));
    }
    let event = log
        .db
        .audit_event(q.index)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(ApiError::not_found)?;
    if let Some(rps) = &grant.rps {
        if !event.rp.as_ref().is_some_and(|rp| rps.contains(rp)) {
            return Err(ApiError::not_found());
        }
    }
    let proof = log
        .db
        .audit_inclusion_proof(q.index, size)
        .await
        .map_err(ApiError::unavailable)?;
    let root = log
        .db
        .audit_root(size)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(audit::InclusionProof::new(
        q.index, size, event, &proof, &root,
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// GET /audit/v1/proof/consistency: proof that the tree of `second` extends that of `first`.
pub(crate) async fn consistency(
    log: web::Data<VerificationLog>,
    req: HttpRequest,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    auditor(&log, &req).await?;
    let size = log.db.audit_size().await.map_err(ApiError::unavailable)?;
    if q.first > q.second || q.second > size {
        return Err(ApiError::bad_request(
            "need first <= second <= the log's size",
        ));
    }
    let proof = log
        .db
        .audit_consistency_proof(q.first, q.second)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(audit::ConsistencyProof::new(q.first, q.second, &proof)))
}

/// GET /audit/v1/openapi.json.
pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("../../openapi/audit-v1.json"))
}
