//! Slowing down guesses (tracking codes, passwords) per client and target.
//!
//! A lock keyed by the target alone lets anyone lock a resident out of their case or an
//! administrator out of the console by failing on purpose. Here failures count per client
//! address and target: after a few, that client waits for that target, longer after each
//! further failure (exponential backoff, capped by the window); and a client failing across
//! many targets waits for all of them. Nobody else is affected. Counters are stored (so every
//! instance sees them) as digests, not as addresses, usernames or folios.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::app::AppState;
use crate::store::{now_millis, sha256_hex, Store, StoreError};
use crate::{with_pool, write_pool};

/// The client's address as the rate limiter sees it (the TCP peer, or the forwarded address
/// when the peer is a trusted proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(super::middleware::client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// How a kind of guess is slowed down.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    /// `tracking`, `login`.
    pub scope: &'static str,
    /// Failures are forgotten after this long.
    pub window_ms: i64,
    /// Failures on one target a client makes before it has to wait.
    pub free: i64,
    /// The first wait; it doubles with each further failure, up to the window.
    pub base_wait_ms: i64,
    /// Failures on any target after which a client waits for all of them until the oldest
    /// leaves the window.
    pub per_client: i64,
}

impl Throttle {
    /// The wait (ms) a client owes after `failures` on one target, the last at `last`.
    pub fn wait_ms(&self, failures: i64, last: i64, now: i64) -> i64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(20) as u32;
        let wait = self
            .base_wait_ms
            .saturating_mul(1 << doublings)
            .min(self.window_ms);
        (last + wait - now).max(0)
    }

    fn pair(&self, client: IpAddr, target: &str) -> String {
        sha256_hex(format!("{}|{client}|{}", self.scope, target.trim().to_lowercase()).as_bytes())
    }

    fn client(&self, client: IpAddr) -> String {
        sha256_hex(format!("{}|{client}", self.scope).as_bytes())
    }

    /// `Some(seconds)` when this client must wait before guessing this target again.
    pub async fn retry_after(
        &self,
        store: &Store,
        client: IpAddr,
        target: &str,
    ) -> Result<Option<u64>, StoreError> {
        let now = now_millis();
        let since = now - self.window_ms;
        let sql =
            "SELECT COUNT(*), COALESCE(MAX(at), 0), COALESCE(MIN(at), 0) FROM attempt_failures \
                   WHERE scope = $1 AND subject = $2 AND at >= $3";
        let (pair, pair_last, _): (i64, i64, i64) = with_pool!(store, pool => {
            sqlx::query_as(sql).bind(self.scope).bind(self.pair(client, target)).bind(since).fetch_one(pool).await?
        });
        let (all, _, oldest): (i64, i64, i64) = with_pool!(store, pool => {
            sqlx::query_as(sql).bind(self.scope).bind(self.client(client)).bind(since).fetch_one(pool).await?
        });
        let mut wait = self.wait_ms(pair, pair_last, now);
        if all >= self.per_client {
            wait = wait.max(oldest + self.window_ms - now);
        }
        Ok((wait > 0).then(|| (wait as u64).div_ceil(1000)))
    }

    /// Counts a failed guess.
    pub async fn failed(
        &self,
        store: &Store,
        client: IpAddr,
        target: &str,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        write_pool!(store, pool => {
            let mut tx = pool.begin().await?;
            for subject in [self.pair(client, target), self.client(client)] {
                sqlx::query("INSERT INTO attempt_failures (scope, subject, at) VALUES ($1, $2, $3)")
                    .bind(self.scope).bind(subject).bind(now).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM attempt_failures WHERE at < $1")
                .bind(now - 24 * 3_600_000).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A right guess forgets this client's failures on this target.
    pub async fn succeeded(
        &self,
        store: &Store,
        client: IpAddr,
        target: &str,
    ) -> Result<(), StoreError> {
        write_pool!(store, pool => {
            sqlx::query("DELETE FROM attempt_failures WHERE scope = $1 AND subject = $2")
                .bind(self.scope).bind(self.pair(client, target)).execute(pool).await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Throttle = Throttle {
        scope: "t",
        window_ms: 900_000,
        free: 5,
        base_wait_ms: 2_000,
        per_client: 30,
    };

    #[test]
    fn waits_double_after_the_free_failures_and_stop_at_the_window() {
        let now = 1_000_000;
        assert_eq!(T.wait_ms(4, now, now), 0);
        assert_eq!(T.wait_ms(5, now, now), 2_000);
        assert_eq!(T.wait_ms(6, now, now), 4_000);
        assert_eq!(T.wait_ms(8, now, now), 16_000);
        assert_eq!(T.wait_ms(40, now, now), 900_000);
        // Time already waited counts.
        assert_eq!(T.wait_ms(5, now - 1_500, now), 500);
        assert_eq!(T.wait_ms(5, now - 5_000, now), 0);
    }

    #[test]
    fn counters_are_digests_per_client_and_target() {
        let a: IpAddr = "10.0.0.1".parse().expect("valid");
        let b: IpAddr = "10.0.0.2".parse().expect("valid");
        assert_ne!(T.pair(a, "2026-000001"), T.pair(b, "2026-000001"));
        assert_ne!(T.pair(a, "2026-000001"), T.pair(a, "2026-000002"));
        assert_eq!(T.pair(a, "Admin"), T.pair(a, "admin "));
        assert!(!T.pair(a, "admin").contains("admin"));
    }
}
