//! Records interactions off the request path: handlers push into a bounded queue, one task
//! writes batches. A full queue drops the event and counts it (exported in /metrics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

use crate::store::{Store, StoreError};
use crate::write_pool;

/// What happened in the chat, with no personal data beyond masked text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interaction {
    pub occurred_at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub kind: InteractionKind,
    pub button_id: Option<String>,
    pub parent_id: Option<String>,
    pub intent: Option<String>,
    pub topic: Option<String>,
    pub confidence: Option<f64>,
    pub fallback: bool,
    pub text_masked: Option<String>,
    /// For a message: `answer`, `clarify` or `fallback` (the catalog review lists the last two).
    pub decision: Option<&'static str>,
    /// For a message the assistant did not answer: its best guess all the same.
    pub best_intent: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InteractionKind {
    #[default]
    SessionStarted,
    Message,
    Button,
    CaseFiled,
    CaseTracked,
    ContactRequested,
}

impl InteractionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session_started",
            Self::Message => "message",
            Self::Button => "button",
            Self::CaseFiled => "case_filed",
            Self::CaseTracked => "case_tracked",
            Self::ContactRequested => "contact_requested",
        }
    }
}

/// Spanish weekday names, Monday first, as the reports and the API use them.
pub const WEEKDAYS: [&str; 7] = [
    "lunes",
    "martes",
    "miercoles",
    "jueves",
    "viernes",
    "sabado",
    "domingo",
];

/// Local calendar fields of an instant: (month `YYYY-MM`, date `YYYY-MM-DD`, weekday 0=Monday, hour).
pub fn local_fields(at: DateTime<Utc>, tz: Tz) -> (String, String, i16, i16) {
    let local = at.with_timezone(&tz);
    (
        local.format("%Y-%m").to_string(),
        local.format("%Y-%m-%d").to_string(),
        local.weekday().num_days_from_monday() as i16,
        local.hour() as i16,
    )
}

pub async fn insert_batch(store: &Store, tz: Tz, batch: &[Interaction]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    // 16 parameters a row; stay well under SQLite's parameter limit.
    for chunk in batch.chunks(1000) {
        write_pool!(store, pool => {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO interactions (occurred_at, local_month, local_date, weekday, hour, \
                 session_id, kind, button_id, parent_id, intent, topic, confidence, fallback, text_masked, decision, best_intent) ",
            );
            qb.push_values(chunk, |mut b, ev| {
                let (month, date, weekday, hour) = local_fields(ev.occurred_at, tz);
                b.push_bind(ev.occurred_at.timestamp_millis())
                    .push_bind(month)
                    .push_bind(date)
                    .push_bind(weekday)
                    .push_bind(hour)
                    .push_bind(ev.session_id.clone())
                    .push_bind(ev.kind.as_str())
                    .push_bind(ev.button_id.clone())
                    .push_bind(ev.parent_id.clone())
                    .push_bind(ev.intent.clone())
                    .push_bind(ev.topic.clone())
                    .push_bind(ev.confidence)
                    .push_bind(ev.fallback)
                    .push_bind(ev.text_masked.clone())
                    .push_bind(ev.decision)
                    .push_bind(ev.best_intent.clone());
            });
            qb.build().execute(pool).await?;
        });
    }
    Ok(())
}

/// How long the writer waits for a batch to fill after its first event.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Interaction>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    stop: Arc<watch::Sender<bool>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Recorder {
    pub fn start(store: Store, tz: Tz, capacity: usize, batch_size: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let written = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(writer(
            store,
            tz,
            rx,
            stop_rx,
            batch_size.max(1),
            written.clone(),
        ));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            written,
            stop: Arc::new(stop),
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Never waits: when the queue is full the event is counted as dropped.
    pub fn record(&self, ev: Interaction) {
        if self.tx.try_send(ev).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Writes everything queued so far and stops the writer.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn writer(
    store: Store,
    tz: Tz,
    mut rx: mpsc::Receiver<Interaction>,
    mut stop: watch::Receiver<bool>,
    batch_size: usize,
    written: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let first = tokio::select! {
            ev = rx.recv() => ev,
            _ = stop.changed() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { break };
        batch.push(first);
        // Give the batch a moment to fill: under load, one insert of many rows instead of many
        // inserts of a few (each a round trip to the store and a wake-up of this task).
        if !*stop.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(BATCH_WINDOW) => {}
                // Shutting down: what is queued is written, then the loop ends.
                _ = stop.changed() => rx.close(),
            }
        }
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        // Retry a failed batch a few times (the database may be restarting); after that the
        // events are dropped and logged, never silently.
        let mut attempt = 0;
        loop {
            match insert_batch(&store, tz, &batch).await {
                Ok(()) => {
                    written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "analytics batch failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.len(), "analytics batch lost");
                    break;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn overload_drops_are_counted_never_silent() {
        let dir = std::env::temp_dir().join(format!("vt-rec-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}/r.db", dir.display());
        let store = Store::connect(&url).await.expect("store");
        store.migrate().await.expect("migrate");
        let tz: Tz = "America/Santiago".parse().expect("tz");
        let rec = Recorder::start(store.clone(), tz, 10, 5);
        // The test runtime is single-threaded: the writer cannot run between these calls,
        // so the queue of 10 overflows.
        for _ in 0..100 {
            rec.record(Interaction::default());
        }
        assert_eq!(rec.dropped(), 90);
        rec.shutdown().await;
        assert_eq!(rec.written(), 10, "shutdown flushes what was queued");
        let (n,): (i64,) = crate::with_pool!(&store, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM interactions").fetch_one(pool).await.expect("count")
        });
        assert_eq!(n, 10);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn local_fields_follow_santiago_time() {
        let tz: Tz = "America/Santiago".parse().expect("tz");
        // 2026-04-21 13:30 UTC is a Tuesday, 09:30 in Santiago (UTC-4 after April's change).
        let at = Utc
            .with_ymd_and_hms(2026, 4, 21, 13, 30, 0)
            .single()
            .expect("date");
        assert_eq!(
            local_fields(at, tz),
            ("2026-04".into(), "2026-04-21".into(), 1, 9)
        );
        // 02:00 UTC on 1 May is still 30 April in Santiago.
        let at = Utc
            .with_ymd_and_hms(2026, 5, 1, 2, 0, 0)
            .single()
            .expect("date");
        assert_eq!(local_fields(at, tz).1, "2026-04-30");
    }
}
