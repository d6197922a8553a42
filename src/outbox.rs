//! The durable outbox: messages committed with the change that caused them (derivation
//! webhooks to gestión documental, e-mails to residents and departments), delivered by a
//! background worker with exponential backoff, dead-lettered after `max_attempts`.
//! Delivery is at least once: receivers deduplicate on `X-Ventanilla-Delivery`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::config::{Config, Secret, SmtpTls};
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// A claimed message is leased to its worker for the delivery timeout plus this; other
/// instances' workers skip it until the lease runs out.
const LEASE_MARGIN_MS: i64 = 5_000;
const BATCH: i64 = 20;

/// `sha256=<hex>` of HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Retry delay after `attempts` failed deliveries.
pub fn backoff_ms(attempts: i32, base: i64, max: i64) -> i64 {
    let exp = attempts.clamp(0, 30) as u32;
    base.saturating_mul(1i64 << exp.min(40)).min(max)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// Folio or subject, for the admin view (no personal data).
    pub summary: String,
}

pub async fn list(
    store: &Store,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxMessage>, StoreError> {
    type Row = (
        i64,
        String,
        String,
        i32,
        i64,
        Option<String>,
        i64,
        Option<i64>,
        String,
    );
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, kind, status, attempts, next_attempt_at, last_error, created_at, sent_at, payload \
             FROM outbox WHERE ($1 IS NULL OR status = $1 OR ($1 = 'failing' AND status = 'pending' AND attempts > 0)) \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                kind,
                status,
                attempts,
                next_attempt_at,
                last_error,
                created_at,
                sent_at,
                payload,
            )| {
                let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                let summary = v["folio"]
                    .as_str()
                    .or_else(|| v["subject"].as_str())
                    .unwrap_or("")
                    .to_string();
                OutboxMessage {
                    id,
                    kind,
                    status,
                    attempts,
                    next_attempt_at,
                    last_error,
                    created_at,
                    sent_at,
                    summary,
                }
            },
        )
        .collect())
}

/// What an anonymised message's payload becomes (Ley 21.719): nothing left to deliver.
pub const ANONYMIZED_PAYLOAD: &str = r#"{"anonimizado":true}"#;

/// Puts a failed or dead message back in the queue (not one whose content was anonymised).
pub async fn retry(store: &Store, id: i64) -> Result<bool, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL \
                     WHERE id = $2 AND status IN ('dead', 'skipped') AND payload <> $3")
            .bind(now_millis()).bind(id).bind(ANONYMIZED_PAYLOAD).execute(pool).await?.rows_affected()
    });
    Ok(n == 1)
}

/// Messages per status, plus `failing`: pending ones that already failed at least once
/// (the receiver is down or refusing; they will be retried with backoff).
pub async fn counts(store: &Store) -> Result<Vec<(String, i64)>, StoreError> {
    let rows: Vec<(String, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status \
             UNION ALL SELECT 'failing', COUNT(*) FROM outbox WHERE status = 'pending' AND attempts > 0",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[derive(Deserialize)]
struct EmailPayload {
    to: String,
    subject: String,
    body: String,
}

enum Outcome {
    Sent,
    Skipped(String),
    Failed(String),
}

pub struct Worker {
    store: Store,
    cfg: Arc<Config>,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    pub wake: Arc<Notify>,
}

impl Worker {
    pub fn new(store: Store, cfg: Arc<Config>, wake: Arc<Notify>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.outbox.timeout_ms))
            .build()?;
        let smtp = match &cfg.smtp.host {
            None => None,
            Some(host) => {
                let mut b = match cfg.smtp.tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                }
                .port(cfg.smtp.port)
                .timeout(Some(Duration::from_millis(cfg.outbox.timeout_ms)));
                if let Some(user) = &cfg.smtp.username {
                    b = b.credentials(Credentials::new(
                        user.clone(),
                        cfg.smtp.password.expose().to_string(),
                    ));
                }
                Some(b.build())
            }
        };
        Ok(Self {
            store,
            cfg,
            http,
            smtp,
            wake,
        })
    }

    /// Delivers what is due now; returns how many messages were handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = now_millis();
        let due: Vec<(i64, String, String, i32, i64)> = with_pool!(&self.store, pool => {
            sqlx::query_as(
                "SELECT id, kind, payload, attempts, next_attempt_at FROM outbox \
                 WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
            )
            .bind(now)
            .bind(BATCH)
            .fetch_all(pool)
            .await?
        });
        let mut handled = 0;
        for (id, kind, payload, attempts, seen_next) in due {
            // Claim it (compare-and-set on what was read) so another instance does not
            // deliver it at the same time. The lease counts from now, not from the start of
            // the batch: deliveries before this one may have used up that time.
            let lease = now_millis() + self.cfg.outbox.timeout_ms as i64 + LEASE_MARGIN_MS;
            let claimed = write_pool!(&self.store, pool => {
                sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3")
                    .bind(lease).bind(id).bind(seen_next).execute(pool).await?.rows_affected()
            });
            if claimed != 1 {
                continue;
            }
            let outcome = match kind.as_str() {
                "webhook" => self.deliver_webhook(id, &payload).await,
                "email" => self.deliver_email(&payload).await,
                other => Outcome::Skipped(format!("unknown kind {other}")),
            };
            self.settle(id, &kind, attempts, lease, outcome).await?;
            handled += 1;
        }
        Ok(handled)
    }

    /// Records the outcome of a delivery made under `lease`. Only while the lease holds: a
    /// worker that overran it must not undo what the instance that took over recorded.
    async fn settle(
        &self,
        id: i64,
        kind: &str,
        attempts: i32,
        lease: i64,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let settled = match outcome {
            Outcome::Sent => {
                // E-mail bodies carry personal data and tracking codes: keep only the subject.
                write_pool!(&self.store, pool => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                         payload = CASE WHEN kind = 'email' THEN $2 ELSE payload END \
                         WHERE id = $3 AND status = 'pending' AND next_attempt_at = $4",
                    )
                    .bind(now)
                    .bind(serde_json::json!({"scrubbed": true}).to_string())
                    .bind(id)
                    .bind(lease)
                    .execute(pool)
                    .await?
                    .rows_affected()
                })
            }
            Outcome::Skipped(why) => {
                let why = crate::analytics::mask::mask_personal_data(&why);
                write_pool!(&self.store, pool => {
                    sqlx::query("UPDATE outbox SET status = 'skipped', last_error = $1 \
                                 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3")
                        .bind(why).bind(id).bind(lease).execute(pool).await?.rows_affected()
                })
            }
            Outcome::Failed(err) => {
                // SMTP and HTTP errors may quote addresses: neither the log nor the row keeps them.
                let err = crate::analytics::mask::mask_personal_data(&err);
                let attempts = attempts + 1;
                let o = &self.cfg.outbox;
                let dead = attempts >= o.max_attempts;
                tracing::warn!(id, kind, attempts, dead, error = %err, "outbox delivery failed");
                let next = now + backoff_ms(attempts - 1, o.base_backoff_ms, o.max_backoff_ms);
                write_pool!(&self.store, pool => {
                    sqlx::query("UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4 \
                                 WHERE id = $5 AND status = 'pending' AND next_attempt_at = $6")
                        .bind(if dead { "dead" } else { "pending" })
                        .bind(attempts).bind(next).bind(err).bind(id).bind(lease)
                        .execute(pool).await?.rows_affected()
                })
            }
        };
        if settled == 0 {
            tracing::warn!(
                id,
                kind,
                "outbox message changed during delivery (lease ran out, or blocked); outcome not recorded"
            );
        }
        Ok(())
    }

    async fn deliver_webhook(&self, id: i64, payload: &str) -> Outcome {
        let Some(url) = &self.cfg.outbox.webhook_url else {
            return Outcome::Skipped("no webhook_url configured".into());
        };
        let ts = chrono::Utc::now().timestamp();
        let sig = signature(&self.cfg.webhook_secret, ts, payload.as_bytes());
        let res = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-ventanilla-signature", sig)
            .header("x-ventanilla-timestamp", ts.to_string())
            .header("x-ventanilla-delivery", id.to_string())
            .body(payload.to_string())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Outcome::Sent,
            Ok(r) => Outcome::Failed(format!("receiver answered {}", r.status())),
            Err(e) => Outcome::Failed(format!("cannot reach receiver: {e}")),
        }
    }

    async fn deliver_email(&self, payload: &str) -> Outcome {
        let Some(smtp) = &self.smtp else {
            return Outcome::Skipped("no SMTP host configured".into());
        };
        let Ok(p) = serde_json::from_str::<EmailPayload>(payload) else {
            return Outcome::Skipped("malformed e-mail payload".into());
        };
        let (Ok(from), Ok(to)) = (
            self.cfg.smtp.from.parse::<Mailbox>(),
            p.to.parse::<Mailbox>(),
        ) else {
            return Outcome::Skipped("invalid sender or recipient address".into());
        };
        let msg = match Message::builder()
            .from(from)
            .to(to)
            .subject(p.subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(p.body)
        {
            Ok(m) => m,
            Err(e) => return Outcome::Skipped(format!("cannot build message: {e}")),
        };
        match smtp.send(msg).await {
            Ok(_) => Outcome::Sent,
            Err(e) => Outcome::Failed(format!("smtp: {e}")),
        }
    }

    /// Runs until the process ends: wakes on new messages or every `poll_ms`.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.cfg.outbox.poll_ms.max(10));
        loop {
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // Reference value computed independently (Python's hmac module).
        let s = signature(&Secret::new("secreto"), 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "sha256=b066ea5660a5cec64764b2352f7f0817fd722e527a09b7225028bb29454d1595"
        );
        assert_ne!(
            s,
            signature(&Secret::new("otro"), 1_700_000_000, br#"{"a":1}"#)
        );
        assert_ne!(
            s,
            signature(&Secret::new("secreto"), 1_700_000_001, br#"{"a":1}"#)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_ms(0, 1000, 60_000), 1000);
        assert_eq!(backoff_ms(1, 1000, 60_000), 2000);
        assert_eq!(backoff_ms(3, 1000, 60_000), 8000);
        assert_eq!(backoff_ms(10, 1000, 60_000), 60_000);
        assert_eq!(backoff_ms(1000, 1000, 60_000), 60_000);
    }
}
