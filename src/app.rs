//! Application state shared by every handler, and its construction from configuration.

use std::sync::Arc;

use chrono_tz::Tz;

use crate::analytics::Recorder;
use crate::chat::catalog::CatalogError;
use crate::chat::engine::{Engine, Thresholds};
use crate::chat::ChatService;
use crate::config::Config;
use crate::http::middleware::Metrics;
use crate::store::{Durability, Store};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub tz: Tz,
    /// Fully durable: everything a resident or staff member was promised.
    pub store: Store,
    /// Same database, relaxed durability: chat sessions and analytics events.
    pub soft_store: Store,
    pub metrics: Arc<Metrics>,
    pub chat: ChatService,
    pub recorder: Recorder,
    /// A real argon2 hash of nothing useful, so failed logins for unknown users cost the same.
    pub dummy_hash: String,
}

impl AppState {
    /// Connects to the store, applies migrations, loads the catalog and starts background
    /// writers.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tz = config.tz()?;
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        let soft_store = Store::connect_with(&config.database_url, Durability::Relaxed).await?;
        let thresholds = thresholds(&config);
        let dir = config.intents_dir.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::load(&dir, thresholds)).await??;
        let recorder = Recorder::start(
            soft_store.clone(),
            tz,
            config.analytics.queue_capacity,
            config.analytics.batch_size,
        );
        let dummy_hash = tokio::task::spawn_blocking(|| {
            crate::staff::auth::hash_password("ventanilla-timing-equaliser")
        })
        .await?
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        Ok(Self {
            config: Arc::new(config),
            tz,
            store,
            soft_store,
            metrics: Arc::new(Metrics::new()),
            chat: ChatService::new(engine),
            recorder,
            dummy_hash,
        })
    }

    pub async fn reload_catalog(&self) -> Result<Arc<Engine>, CatalogError> {
        let engine = self
            .chat
            .reload(self.config.intents_dir.clone(), thresholds(&self.config))
            .await?;
        tracing::info!(intents = engine.catalog.intents.len(), "catalog reloaded");
        Ok(engine)
    }

    /// Gauges read at scrape time.
    pub fn refresh_gauges(&self) {
        let dropped = self.recorder.dropped();
        let written = self.recorder.written();
        let queued = self.recorder.queued();
        self.metrics.record(|| {
            metrics::gauge!("analytics_events_dropped_total").set(dropped as f64);
            metrics::gauge!("analytics_events_written_total").set(written as f64);
            metrics::gauge!("analytics_queue_depth").set(queued as f64);
        });
    }

    /// Flushes background writers and closes the store.
    pub async fn shutdown(&self) {
        self.recorder.shutdown().await;
        self.soft_store.close().await;
        self.store.close().await;
    }
}

pub fn thresholds(config: &Config) -> Thresholds {
    Thresholds {
        answer: config.chat.answer_threshold,
        suggest: config.chat.suggest_threshold,
    }
}
