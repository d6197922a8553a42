//! The staff second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of
//! clock drift either way) with single-use recovery codes.
//!
//! The shared secret must be readable to check codes, so it is stored as is (see the
//! README's "Acceso de soporte y segundo factor" for why it is not sealed with a key).
//! A code is accepted once: the step it belongs to is remembered, so a code seen over a
//! shoulder cannot be replayed within its 90-second window. Recovery codes are 50 random
//! bits each, shown once and stored as SHA-256 digests (enough for codes with that entropy:
//! a digest cannot be searched back within a code's lifetime).

use argon2::password_hash::rand_core::{OsRng, RngCore};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::store::{now_millis, sha256_hex, Store, StoreError};
use crate::{with_pool, write_pool};

pub const ISSUER: &str = "Ventanilla";
pub const RECOVERY_CODES: usize = 10;
const STEP_SECS: u64 = 30;

/// Where a user stands with the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enrolment {
    None,
    /// A secret was issued but no code confirmed it yet.
    Pending,
    Confirmed,
}

fn totp(secret_b32: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECS,
        bytes,
        Some(ISSUER.to_string()),
        account.to_string(),
    )
    .ok()
}

/// A fresh 160-bit secret, base32 as authenticator apps take it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    totp(secret_b32, account)
        .map(|t| t.get_url())
        .unwrap_or_default()
}

/// The QR code of `uri` as inline SVG.
pub fn qr_svg(uri: &str) -> String {
    qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default()
}

/// The step `code` is valid for at `unix_secs` (allowing one step of drift), if any.
pub fn matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_b32, "")?;
    let now = unix_secs / STEP_SECS;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|step| crate::staff::auth::same_token(&t.generate(step * STEP_SECS), code))
}

/// The code of the step `steps_ahead` steps from now (what an authenticator app shows then;
/// for tests).
pub fn code_in_steps(secret_b32: &str, steps_ahead: i64) -> String {
    let at = i64::try_from(unix_now()).unwrap_or(0) + steps_ahead * STEP_SECS as i64;
    totp(secret_b32, "")
        .map(|t| t.generate(u64::try_from(at).unwrap_or(0)))
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap_or(0)
}

/// Ten recovery codes like `k3f9q-x2m7p`: what the user writes down, and their digests.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect();
    let digests = codes.iter().map(|c| recovery_digest(c)).collect();
    (codes, digests)
}

fn recovery_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256_hex(format!("recovery:{normal}").as_bytes())
}

pub async fn enrolment(store: &Store, user_id: i64) -> Result<Enrolment, StoreError> {
    let row: Option<(Option<i64>,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT confirmed_at FROM staff_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(match row {
        None => Enrolment::None,
        Some((None,)) => Enrolment::Pending,
        Some((Some(_),)) => Enrolment::Confirmed,
    })
}

/// Issues a new pending secret (replacing an unconfirmed one). `None` when the user has a
/// confirmed factor already: only `user reset-2fa` removes it.
pub async fn start(store: &Store, user_id: i64) -> Result<Option<String>, StoreError> {
    let secret = new_secret();
    let changed = write_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO staff_totp (user_id, secret, confirmed_at, created_at) VALUES ($1, $2, NULL, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = $2, created_at = $3 \
             WHERE staff_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(&secret)
        .bind(now_millis())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok((changed == 1).then_some(secret))
}

/// The pending secret of a user, to show again on the enrolment page.
pub async fn pending_secret(store: &Store, user_id: i64) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT secret FROM staff_totp WHERE user_id = $1 AND confirmed_at IS NULL")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|r| r.0))
}

/// Confirms a pending secret with a first code: stores fresh recovery codes and returns them
/// (shown once). `None` when the code is wrong or nothing is pending.
pub async fn confirm(
    store: &Store,
    user_id: i64,
    code: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let Some(secret) = pending_secret(store, user_id).await? else {
        return Ok(None);
    };
    let Some(step) = matching_step(&secret, code, unix_now()) else {
        return Ok(None);
    };
    let (codes, digests) = new_recovery_codes();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let confirmed = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let n = sqlx::query(
            "UPDATE staff_totp SET confirmed_at = $2, last_step = $3 \
             WHERE user_id = $1 AND confirmed_at IS NULL AND secret = $4",
        )
        .bind(user_id)
        .bind(now_millis())
        .bind(step)
        .bind(&secret)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for d in &digests {
                sqlx::query("INSERT INTO staff_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(d)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        n == 1
    });
    Ok(confirmed.then_some(codes))
}

/// Checks a login's second factor: a current TOTP code not used before, or an unused
/// recovery code (which is used up).
pub async fn verify(store: &Store, user_id: i64, code: &str) -> Result<bool, StoreError> {
    let row: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT secret FROM staff_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
    });
    let Some((secret,)) = row else {
        return Ok(false);
    };
    if let Some(step) = matching_step(&secret, code, unix_now()) {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        // Compare-and-set on the last step used: a replayed code finds it taken.
        let n = write_pool!(store, pool => {
            sqlx::query(
                "UPDATE staff_totp SET last_step = $2 \
                 WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .execute(pool)
            .await?
            .rows_affected()
        });
        return Ok(n == 1);
    }
    let n = write_pool!(store, pool => {
        sqlx::query(
            "UPDATE staff_recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(recovery_digest(code))
        .bind(now_millis())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Removes a user's second factor and recovery codes and ends their sessions (the CLI's
/// `user reset-2fa`, for the locked-out). Returns whether the user exists.
pub async fn reset(store: &Store, username: &str) -> Result<bool, StoreError> {
    let done = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let user: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((id,)) = user {
            for sql in [
                "DELETE FROM staff_totp WHERE user_id = $1",
                "DELETE FROM staff_recovery_codes WHERE user_id = $1",
                "DELETE FROM staff_sessions WHERE user_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO audit_log (at, user_id, username, action, detail) \
                 VALUES ($1, NULL, 'cli', 'reset_2fa', $2)",
            )
            .bind(now_millis())
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        user.is_some()
    });
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        for (t, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
        ] {
            assert_eq!(matching_step(&secret, code, t), Some(t / 30), "t={t}");
        }
        // One step of drift either way, not two.
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 60), None);
        assert_eq!(matching_step(&secret, "28708", 59), None);
        assert_eq!(matching_step(&secret, "abcdef", 59), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_typed_loosely() {
        let (codes, digests) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = digests.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(
            recovery_digest(&codes[0]),
            recovery_digest(&codes[0].to_uppercase().replace('-', " "))
        );
        assert!(codes[0].len() == 11 && codes[0].as_bytes()[5] == b'-');
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let s = new_secret();
        let uri = otpauth_uri(&s, "admin");
        assert!(uri.starts_with("otpauth://totp/Ventanilla:admin?"), "{uri}");
        assert!(uri.contains(&format!("secret={s}")), "{uri}");
        assert!(qr_svg(&uri).contains("<svg"));
    }
}
