//! The verification log as the hub writes it: every journey step appends an event and
//! waits until it is durable before it answers. If the log cannot be written, the step
//! fails closed: nothing is issued that could not be audited.
//!
//! Appends from concurrent requests are gathered by one writer task per instance into
//! batches, each written in one transaction (the store gives the total order across
//! instances).

use std::sync::{Arc, Mutex};

use audit::{Event, EventType};
use store::{Database, LogSeal};
use tokio::sync::{mpsc, oneshot};

use crate::journey::Journey;
use crate::metrics::AuditAppendMetrics;

/// The log could not be written; the step must not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("verification log unavailable: {0}")]
pub struct AuditUnavailable(String);

/// Events appended together (one request's), and who waits for them.
struct Pending {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Appends events for this hub instance.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    tx: mpsc::Sender<Pending>,
    /// The writer until it starts: see [`AuditTrail::start`].
    unstarted: Arc<Mutex<Option<Writer>>>,
    instance: String,
}

#[derive(Debug)]
struct Writer {
    db: Database,
    seal: LogSeal,
    rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    metrics: AuditAppendMetrics,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("events", &self.events.len())
            .finish()
    }
}

impl AuditTrail {
    /// The trail of this instance. Its writer task starts with the first
    /// append, on that caller's runtime: a request worker's event loop, where
    /// the database connections it opens then live too, so that appends,
    /// queries and their replies are not handed between threads.
    /// Every append seals the log's head with `seal` (the hub's keys); each batch's
    /// time and failure go to `metrics`.
    pub fn start(
        db: Database,
        seal: LogSeal,
        instance: String,
        max_batch: usize,
        metrics: AuditAppendMetrics,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let writer = Writer {
            db,
            seal,
            rx,
            max_batch,
            metrics,
        };
        Self {
            tx,
            unstarted: Arc::new(Mutex::new(Some(writer))),
            instance,
        }
    }

    fn start_writer(&self) {
        let writer = self
            .unstarted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            tokio::spawn(write_batches(writer));
        }
    }

    /// The id this instance writes into its events.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A new event of `event_type`, stamped with id, time and instance.
    pub fn event(&self, event_type: EventType) -> Event {
        Event::new(event_type, self.instance.as_str())
    }

    /// An event about `journey`: journey id, RP, requested level and IdP filled in.
    pub fn journey_event(&self, event_type: EventType, journey: &Journey) -> Event {
        let mut event = self.event(event_type);
        event.journey_id = Some(journey.id.to_string());
        event.rp = Some(journey.request.client_id.to_string());
        event.level_requested = Some(journey.request.minimum_level.to_string());
        event.idp = journey.idp.clone();
        event.level_achieved = journey.level_achieved.as_ref().map(|l| l.to_string());
        event
    }

    /// Records that a request was refused by the check named `outcome` (codes only).
    /// The refusal stands whether or not the log can be written: it issues nothing.
    pub async fn rejected(&self, rp: Option<&str>, journey_id: Option<&str>, outcome: &str) {
        let mut event = self.event(EventType::RequestRejected);
        event.rp = rp.map(str::to_owned);
        event.journey_id = journey_id.map(str::to_owned);
        event.outcome = Some(outcome.to_owned());
        let _ = self.record(event).await;
    }

    /// Appends `event` and waits until it is durable.
    pub async fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        self.record_all(vec![event]).await
    }

    /// Appends `events` in one append, in order, and waits until they are durable: a
    /// step's events held back until the one that ends it (one commit to wait for).
    pub async fn record_all(&self, events: Vec<Event>) -> Result<(), AuditUnavailable> {
        let Some(kind) = events.last().map(|e| e.event_type) else {
            return Ok(());
        };
        self.start_writer();
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { events, done })
            .await
            .map_err(|_| AuditUnavailable("writer stopped".into()))?;
        let result = wait
            .await
            .map_err(|_| AuditUnavailable("writer stopped".into()))?;
        result.map_err(|e| {
            tracing::error!(error = %e, event = ?kind, "could not append to the verification log");
            AuditUnavailable(e)
        })
    }
}

async fn write_batches(writer: Writer) {
    let Writer {
        db,
        seal,
        mut rx,
        max_batch,
        metrics,
    } = writer;
    while let Some(first) = rx.recv().await {
        // Let the requests already woken on this event loop run first: those that
        // append join this batch, and wait for the same commit instead of the next.
        tokio::task::yield_now().await;
        let mut events = first.events.len();
        let mut batch = vec![first];
        while events < max_batch {
            match rx.try_recv() {
                Ok(p) => {
                    events += p.events.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(events);
        let mut waiting = Vec::with_capacity(batch.len());
        for pending in batch {
            events.extend(pending.events);
            waiting.push(pending.done);
        }
        let started = std::time::Instant::now();
        let result = db
            .append_audit_events(&events, &seal)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        metrics.appended(started, result.is_err());
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::tests::journey;
    use store::AuditFilter;

    async fn logged_types(db: &Database) -> Vec<EventType> {
        let events = db.audit_events(&AuditFilter::default(), None, 100).await;
        events
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.event_type)
            .collect()
    }

    #[tokio::test]
    async fn events_recorded_together_are_appended_in_order() {
        let db = Database::open("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        let metrics = crate::metrics::Metrics::new();
        let trail = AuditTrail::start(
            db.clone(),
            LogSeal::generate().unwrap(),
            "test".into(),
            16,
            metrics.audit_append(),
        );
        let journey = journey();
        trail.record_all(Vec::new()).await.unwrap();
        assert!(logged_types(&db).await.is_empty(), "nothing to append");
        let held = vec![
            trail.journey_event(EventType::IdpReturned, &journey),
            trail.journey_event(EventType::Matching, &journey),
            trail.journey_event(EventType::AssertionIssued, &journey),
        ];
        trail.record_all(held).await.unwrap();
        assert_eq!(
            logged_types(&db).await,
            vec![
                EventType::IdpReturned,
                EventType::Matching,
                EventType::AssertionIssued
            ]
        );
        let exposed = metrics.render(store::PoolState::default());
        assert!(
            exposed.contains("hub_audit_append_duration_seconds_count 1"),
            "one batch timed: {exposed}"
        );
        assert!(
            exposed.contains("hub_audit_append_failures_total 0"),
            "{exposed}"
        );
    }
}
