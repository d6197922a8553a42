//! Application state shared by every handler, and its construction from configuration.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono_tz::Tz;

use crate::analytics::Recorder;
use crate::chat::catalog::CatalogError;
use crate::chat::engine::{Engine, Thresholds};
use crate::chat::session::Sessions;
use crate::chat::ChatService;
use crate::config::Config;
use crate::http::middleware::Metrics;
use crate::oirs::calendar::DiasHabiles;
use crate::oirs::service;
use crate::store::{signals, Store, StoreError};

/// What every handler shares. Axum clones the state for every request (twice: with the
/// route, and into the handler), so it is one pointer to `AppStateInner`, whose fields read
/// through `Deref` as if they were its own.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub config: Arc<Config>,
    pub tz: Tz,
    /// Fully durable: everything a resident or staff member was promised.
    pub store: Store,
    /// Same database, relaxed durability: chat sessions and analytics events.
    pub soft_store: Store,
    pub metrics: Arc<Metrics>,
    pub chat: ChatService,
    pub recorder: Recorder,
    /// Chat sessions (on the relaxed-durability store).
    pub sessions: Sessions,
    /// A real argon2 hash of nothing useful, so failed logins for unknown users cost the same.
    pub dummy_hash: String,
    /// Business-day calendar, cached; refreshed on admin changes and periodically.
    pub calendar: Arc<tokio::sync::RwLock<Arc<DiasHabiles>>>,
    /// Wakes the outbox worker when a change commits new messages.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// The generation of the catalog signal the running engine reflects; another instance's
    /// reload moves the stored one past it (see [`signals`]).
    pub catalog_generation: Arc<AtomicI64>,
    /// Catalog review changes on this instance, one at a time: each is checked against the
    /// engine the previous one left.
    pub teaching: tokio::sync::Mutex<()>,
    /// The identity providers configured (staff single sign-on, ClaveÚnica).
    pub providers: Arc<crate::signin::Providers>,
}

impl AppState {
    /// Connects to the store, applies migrations, loads the catalog and starts background
    /// writers.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tz = config.tz()?;
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        service::sync_holidays(&store).await?;
        let calendar = service::calendar(&store).await?;
        let soft_store = store.relaxed_twin(&config.database_url).await?;
        // Read before the catalog: a reload signalled meanwhile is caught up by the poller.
        let catalog_generation = signals::generation(&store, signals::CATALOG).await?;
        let thresholds = thresholds(&config);
        let dir = config.intents_dir.clone();
        let overlay = crate::chat::overlay::load(&store).await?;
        let engine =
            tokio::task::spawn_blocking(move || Engine::load_with(&dir, thresholds, &overlay))
                .await??;
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
        let providers = Arc::new(crate::signin::Providers::from_config(&config)?);
        Ok(Self(Arc::new(AppStateInner {
            providers,
            config: Arc::new(config),
            tz,
            store,
            metrics: Arc::new(Metrics::new()),
            chat: ChatService::new(engine),
            recorder,
            sessions: Sessions::new(soft_store.clone()),
            soft_store,
            dummy_hash,
            calendar: Arc::new(tokio::sync::RwLock::new(Arc::new(calendar))),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            catalog_generation: Arc::new(AtomicI64::new(catalog_generation)),
            teaching: tokio::sync::Mutex::new(()),
        })))
    }

    pub async fn calendar(&self) -> Arc<DiasHabiles> {
        self.calendar.read().await.clone()
    }

    pub async fn refresh_calendar(&self) -> Result<(), StoreError> {
        let fresh = service::calendar(&self.store).await?;
        *self.calendar.write().await = Arc::new(fresh);
        Ok(())
    }

    /// The configured "horario hábil".
    pub fn business_hours(&self) -> crate::analytics::aggregate::BusinessHours {
        crate::analytics::aggregate::BusinessHours {
            start: self.config.analytics.business_hours_start,
            end: self.config.analytics.business_hours_end,
        }
    }

    /// The outbox channels that have a receiver configured.
    pub fn channels(&self) -> service::Channels {
        service::Channels {
            webhook: self.config.outbox.webhook_url.is_some(),
            email: self.config.smtp.host.is_some(),
        }
    }

    /// Acts on a case (derivar, responder, cerrar…) with today's calendar, the catalog's case
    /// topics and the configured channels, and wakes the outbox for the messages it queued.
    pub async fn apply_event(
        &self,
        actor: &service::Actor,
        folio: &str,
        ev: &service::EventIn,
    ) -> Result<service::CaseRecord, service::OirsError> {
        let calendar = self.calendar().await;
        let engine = self.chat.engine();
        let topics = engine.catalog.case_topic_ids();
        let ctx = service::WorkContext {
            tz: self.tz,
            calendar: &calendar,
            channels: self.channels(),
            topics: &topics,
            public_base_url: &self.config.public_base_url,
        };
        let case = service::apply_event(&self.store, &ctx, actor, folio, ev).await?;
        self.outbox_wake.notify_one();
        Ok(case)
    }

    /// Today in the municipality's time zone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&self.tz).date_naive()
    }

    /// Starts the outbox worker and the periodic jobs (deadline alerts, calendar refresh,
    /// idle-session purge, signals from other instances). The handles stop them when aborted.
    pub fn start_background(&self) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let worker = crate::outbox::Worker::new(
            self.store.clone(),
            self.config.clone(),
            self.outbox_wake.clone(),
        )?;
        let mut handles = vec![tokio::spawn(worker.run())];
        handles.extend(self.sessions.start_flusher());
        let state = self.clone();
        handles.push(tokio::spawn(async move {
            let every = std::time::Duration::from_secs(state.config.alerts_interval_secs.max(1));
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = state.refresh_calendar().await {
                    tracing::warn!(error = %e, "calendar refresh failed");
                }
                let cal = state.calendar().await;
                match service::run_alerts(&state.store, &cal, state.channels(), state.today()).await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(cases = n, "deadline alerts updated");
                        state.outbox_wake.notify_one();
                    }
                    Err(e) => tracing::warn!(error = %e, "alert job failed"),
                }
            }
        }));
        let state = self.clone();
        handles.push(tokio::spawn(async move {
            let every = std::time::Duration::from_millis(state.config.signal_poll_ms.max(50));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.follow_signals().await {
                    tracing::warn!(error = %e, "reading signals from other instances failed");
                }
                // Support grants whose time is up are ended (summary, e-mail) even if nobody
                // asks; every instance sweeps, each grant ends once.
                match crate::staff::support::end_expired(
                    &state.store,
                    &state.config.public_base_url,
                )
                .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(grants = n, "support grants ended at their time");
                        state.outbox_wake.notify_one();
                    }
                    Err(e) => tracing::warn!(error = %e, "ending expired support grants failed"),
                }
            }
        }));
        // Retention (Ley 21.719): closed cases kept long enough lose their personal data.
        let state = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
            loop {
                tick.tick().await;
                let keep = state.config.retention.case_personal_data_days;
                match crate::oirs::service::anonymize_expired(&state.store, keep).await {
                    Ok(n) if n > 0 => tracing::info!(cases = n, "cases past retention anonymised"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention job failed"),
                }
            }
        }));
        let state = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let ttl = state.config.chat.session_ttl_minutes * 60_000;
                let cutoff = crate::store::now_millis() - ttl;
                match state.sessions.purge_idle(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(sessions = n, "idle chat sessions purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "session purge failed"),
                }
                // Masked chat text is kept only for the retention period; counts stay.
                let keep = state.config.analytics.text_retention_days * 86_400_000;
                let cutoff = crate::store::now_millis() - keep;
                match crate::analytics::aggregate::purge_text(&state.soft_store, cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "chat text past retention purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "chat text purge failed"),
                }
                match crate::staff::auth::purge_sessions(&state.store).await {
                    Ok(n) if n > 0 => tracing::info!(sessions = n, "expired staff sessions purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "staff session purge failed"),
                }
                match crate::signin::purge(&state.store).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(rows = n, "expired sign-ins and resident sessions purged")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sign-in purge failed"),
                }
            }
        }));
        Ok(handles)
    }

    /// Reloads the catalog from disk and signals the other instances sharing the database
    /// to do the same.
    pub async fn reload_catalog(&self) -> Result<Arc<Engine>, CatalogError> {
        let engine = self.load_catalog().await?;
        self.signal_catalog().await;
        Ok(engine)
    }

    /// Tells the other instances sharing the database that the catalog (files or overlay)
    /// changed.
    pub async fn signal_catalog(&self) {
        match signals::bump(&self.store, signals::CATALOG).await {
            Ok(generation) => {
                self.catalog_generation
                    .fetch_max(generation, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "catalog reloaded on this instance only: the others could not be signalled"
            ),
        }
    }

    async fn load_catalog(&self) -> Result<Arc<Engine>, CatalogError> {
        let overlay = crate::chat::overlay::load(&self.store).await.map_err(|e| {
            CatalogError(vec![crate::chat::catalog::Finding {
                file: crate::chat::overlay::OVERLAY_FILE.into(),
                line: None,
                message: format!("cannot read the catalog overlay: {e}"),
            }])
        })?;
        let engine = self
            .chat
            .reload(
                self.config.intents_dir.clone(),
                thresholds(&self.config),
                overlay,
            )
            .await?;
        tracing::info!(intents = engine.catalog.intents.len(), "catalog reloaded");
        Ok(engine)
    }

    /// Catches up with what other instances signalled: a catalog reloaded on one of them is
    /// reloaded here.
    pub async fn follow_signals(&self) -> Result<(), StoreError> {
        let stored = signals::generation(&self.store, signals::CATALOG).await?;
        // Taken before loading, so a catalog broken on disk is reported once, not every poll.
        if self.catalog_generation.fetch_max(stored, Ordering::SeqCst) < stored {
            match self.load_catalog().await {
                Ok(_) => tracing::info!(
                    generation = stored,
                    "catalog reload signalled by another instance done"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "catalog reload signalled by another instance rejected; previous catalog stays"
                ),
            }
        }
        Ok(())
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
        if let Err(e) = self.sessions.flush().await {
            tracing::warn!(error = %e, "chat sessions not written at shutdown");
        }
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
