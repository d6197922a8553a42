//! Support access under the municipality's remote-support procedure: an administrator grants
//! a `support` user a stated reason, a number of minutes and a scope; outside an active
//! grant that user reaches nothing. Every request made under a grant is audited with the
//! grant's id, and when the grant ends (revoked, or its time up) a summary of what was done
//! is kept on the grant and e-mailed to the administrators through the outbox.
//!
//! Enforcement is central: the session lookup (`auth::session_user`) asks [`allows`] about
//! every request of a support user and checks the grant in the database each time, so a
//! revocation or an expiry takes effect on the next request on every instance.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

pub const MAX_MINUTES: i64 = 8 * 60;
pub const MAX_REASON: usize = 500;

/// What a grant opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Administration without personal data: parameters, catalog, templates, outbox, health.
    Config,
    /// Also case details (read only, audited as any read).
    Cases,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Config => "config",
            Scope::Cases => "cases",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(Scope::Config),
            "cases" => Some(Scope::Cases),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Scope::Config => "configuración",
            Scope::Cases => "configuración y casos",
        }
    }
}

/// The active grant a support user's request runs under.
#[derive(Clone, Debug)]
pub struct SupportAccess {
    pub grant_id: i64,
    pub scope: Scope,
    pub expires_at: i64,
}

impl SupportAccess {
    /// Whole minutes left, rounded up (what the banner says).
    pub fn minutes_left(&self, now: i64) -> i64 {
        ((self.expires_at - now).max(0) + 59_999) / 60_000
    }
}

/// Administration pages and endpoints without personal data. Users, support grants, the
/// audit log (it names people and cases), data subjects and cases are not among them.
const CONFIG_PREFIXES: &[&str] = &[
    "/api/v1/admin/departments",
    "/api/v1/admin/case-types",
    "/api/v1/admin/routing-rules",
    "/api/v1/admin/holidays",
    "/api/v1/admin/catalog/",
    "/api/v1/admin/templates",
    "/api/v1/admin/outbox",
    "/staff/admin/parametros",
    "/staff/admin/catalogo",
    "/staff/admin/plantillas",
    "/staff/admin/envios",
];

/// Case details, read only, for the `cases` scope.
const CASE_PREFIXES: &[&str] = &[
    "/api/v1/staff/cases",
    "/api/v1/staff/reports/pending",
    "/staff/casos",
];

/// The support user's own pages: the console's entry, logout and the second factor.
const ALWAYS: &[&str] = &["/staff", "/staff/salir", "/api/v1/auth/logout"];

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// Whether a request may be made under a grant of `scope`.
pub fn allows(scope: Scope, method: &Method, path: &str) -> bool {
    if ALWAYS.contains(&path) || path.starts_with("/api/v1/auth/2fa/") || path == "/staff/2fa" {
        return true;
    }
    if CONFIG_PREFIXES.iter().any(|p| under(path, p)) {
        return true;
    }
    scope == Scope::Cases
        && method.is_safe()
        && path != "/staff/casos/nuevo"
        && path != "/staff/casos.csv"
        && CASE_PREFIXES.iter().any(|p| under(path, p))
}

/// The folio a request reads, when it reads one case (counted as a record read).
pub fn folio_read(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v1/staff/cases/")
        .or_else(|| path.strip_prefix("/staff/casos/"))?;
    let folio = rest.split('/').next()?;
    folio.starts_with("OIRS-").then_some(folio)
}

/// The active grant of a support user, if any.
pub async fn active(store: &Store, user_id: i64) -> Result<Option<SupportAccess>, StoreError> {
    let row: Option<(i64, String, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, scope, expires_at FROM support_grants \
             WHERE user_id = $1 AND ended_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(grant_id, scope, expires_at)| {
        Some(SupportAccess {
            grant_id,
            scope: Scope::parse(&scope)?,
            expires_at,
        })
    }))
}

/// Audits one request made under a grant: method and path only (no query string, no body),
/// and the folio when it reads a case.
pub async fn audit_request(
    store: &Store,
    user_id: i64,
    username: &str,
    grant_id: i64,
    method: &Method,
    path: &str,
) -> Result<(), StoreError> {
    let action = format!("{method} {path}");
    let folio = folio_read(path);
    write_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO audit_log (at, user_id, username, action, folio, detail, grant_id) \
             VALUES ($1, $2, $3, 'soporte', $4, $5, $6)",
        )
        .bind(now_millis())
        .bind(user_id)
        .bind(username)
        .bind(folio)
        .bind(&action)
        .bind(grant_id)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// A request made under a grant, as the live view and the summary list it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantAction {
    /// RFC 3339.
    pub at: String,
    /// `METHOD /path`.
    pub action: String,
    /// The case read, if the request read one.
    pub folio: Option<String>,
}

/// What was done under a grant, kept on it when it ends.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// Changes made (every request that was not a read), by time.
    pub actions: Vec<GrantAction>,
    /// Every request made, reads included.
    pub requests: i64,
    /// Case records read.
    pub records_read: i64,
    /// `revoked` or `expired`.
    pub ended_by: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Grant {
    pub id: i64,
    pub username: String,
    pub reason: String,
    pub scope: Scope,
    pub granted_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    /// Whether the grant is in force now.
    pub active: bool,
    /// Present once the grant has ended (revoked or expired).
    pub summary: Option<Summary>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

type GrantRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

const GRANT_COLUMNS: &str = "id, username, reason, scope, granted_by, created_at, expires_at, \
                             revoked_at, revoked_by, ended_at, summary";

fn grant_of(r: GrantRow, now: i64) -> Grant {
    let (
        id,
        username,
        reason,
        scope,
        granted_by,
        created,
        expires,
        revoked,
        revoked_by,
        ended,
        summary,
    ) = r;
    Grant {
        id,
        username,
        reason,
        scope: Scope::parse(&scope).unwrap_or(Scope::Config),
        granted_by,
        created_at: rfc3339(created),
        expires_at: rfc3339(expires),
        revoked_at: revoked.map(rfc3339),
        revoked_by,
        active: ended.is_none() && revoked.is_none() && expires > now,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
    }
}

/// Why a grant cannot be made.
#[derive(Debug, PartialEq, Eq)]
pub enum GrantRefusal {
    NoSuchSupportUser,
    AlreadyActive,
}

/// Grants `username` (a support user) access for `minutes`; returns the id and expiry.
pub async fn grant(
    store: &Store,
    by: &str,
    username: &str,
    reason: &str,
    minutes: i64,
    scope: Scope,
) -> Result<Result<(i64, i64), GrantRefusal>, StoreError> {
    let now = now_millis();
    let expires = now + minutes * 60_000;
    let out = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let user: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM users WHERE username = $1 AND role = 'support' AND active",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
        let out = match user {
            None => Err(GrantRefusal::NoSuchSupportUser),
            Some((user_id,)) => {
                let open: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM support_grants WHERE user_id = $1 AND ended_at IS NULL \
                     AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(user_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if open.is_some() {
                    Err(GrantRefusal::AlreadyActive)
                } else {
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO support_grants (user_id, username, reason, scope, granted_by, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(user_id)
                    .bind(username)
                    .bind(reason)
                    .bind(scope.as_str())
                    .bind(by)
                    .bind(now)
                    .bind(expires)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO audit_log (at, username, action, detail, grant_id) \
                         VALUES ($1, $2, 'conceder_soporte', $3, $4)",
                    )
                    .bind(now)
                    .bind(by)
                    .bind(format!("{username}: {} min, {}", minutes, scope.as_str()))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    Ok((id, expires))
                }
            }
        };
        tx.commit().await?;
        out
    });
    Ok(out)
}

/// The requests made under a grant, by time.
pub async fn actions(store: &Store, grant_id: i64) -> Result<Vec<GrantAction>, StoreError> {
    let rows: Vec<(i64, Option<String>, Option<String>)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT at, detail, folio FROM audit_log WHERE grant_id = $1 AND action = 'soporte' \
             ORDER BY at, id",
        )
        .bind(grant_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(at, detail, folio)| GrantAction {
            at: rfc3339(at),
            action: detail.unwrap_or_default(),
            folio,
        })
        .collect())
}

/// The summary of a grant from its audited requests.
pub fn summarise(all: Vec<GrantAction>, ended_by: &str) -> Summary {
    let requests = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let records_read =
        i64::try_from(all.iter().filter(|a| a.folio.is_some()).count()).unwrap_or(i64::MAX);
    let actions = all
        .into_iter()
        .filter(|a| !(a.action.starts_with("GET ") || a.action.starts_with("HEAD ")))
        .collect();
    Summary {
        actions,
        requests,
        records_read,
        ended_by: ended_by.into(),
    }
}

/// Ends a grant once: writes its summary and queues the e-mail to every administrator with
/// an address. `revoked_by` is the administrator revoking it, or `None` when its time is up.
/// Returns false when the grant had already ended (another instance or request did it).
async fn finish(
    store: &Store,
    grant_id: i64,
    revoked_by: Option<&str>,
    public_base_url: &str,
) -> Result<bool, StoreError> {
    let now = now_millis();
    let summary = summarise(
        actions(store, grant_id).await?,
        if revoked_by.is_some() {
            "revoked"
        } else {
            "expired"
        },
    );
    let text = serde_json::to_string(&summary).unwrap_or_default();
    let ended = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let row: Option<(String, String, String)> = sqlx::query_as(
            "UPDATE support_grants SET ended_at = $2, summary = $3, \
             revoked_at = CASE WHEN $4 IS NULL THEN revoked_at ELSE $2 END, \
             revoked_by = COALESCE($4, revoked_by) \
             WHERE id = $1 AND ended_at IS NULL AND ($4 IS NOT NULL OR expires_at <= $2) \
             RETURNING username, reason, scope",
        )
        .bind(grant_id)
        .bind(now)
        .bind(&text)
        .bind(revoked_by)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((username, reason, scope)) = &row {
            let admins: Vec<(String,)> = sqlx::query_as(
                "SELECT email FROM users WHERE role = 'admin' AND active \
                 AND email IS NOT NULL AND email <> ''",
            )
            .fetch_all(&mut *tx)
            .await?;
            let body = summary_mail(grant_id, username, reason, scope, &summary, revoked_by, public_base_url);
            for (to,) in admins {
                let payload = json!({
                    "to": to,
                    "subject": format!("Acceso de soporte terminado: autorización N° {grant_id}"),
                    "body": body,
                });
                sqlx::query(
                    "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) VALUES ('email', $1, $2, $2)",
                )
                .bind(payload.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO audit_log (at, username, action, detail, grant_id) \
                 VALUES ($1, $2, 'terminar_soporte', $3, $4)",
            )
            .bind(now)
            .bind(revoked_by.unwrap_or("sistema"))
            .bind(if revoked_by.is_some() { "revocada" } else { "vencida" })
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        row.is_some()
    });
    Ok(ended)
}

fn summary_mail(
    id: i64,
    username: &str,
    reason: &str,
    scope: &str,
    s: &Summary,
    revoked_by: Option<&str>,
    base: &str,
) -> String {
    let how = match revoked_by {
        Some(admin) => format!("revocado por {admin}"),
        None => "terminado al cumplirse su plazo".into(),
    };
    let scope = Scope::parse(scope).unwrap_or(Scope::Config).label();
    let mut text = format!(
        "El acceso de soporte N° {id} de {username} ({scope}) fue {how}.\n\
         Motivo: {reason}\n\n\
         Solicitudes realizadas: {}\nRegistros de casos leídos: {}\nCambios realizados: {}\n",
        s.requests,
        s.records_read,
        s.actions.len()
    );
    for a in &s.actions {
        text.push_str(&format!("- {} {}\n", a.at, a.action));
    }
    text.push_str(&format!(
        "\nDetalle en la consola: {base}/staff/admin/soporte/{id}\n"
    ));
    text
}

/// Revokes a grant at once. `None` when there is no such grant; `Some(false)` when it had
/// already ended.
pub async fn revoke(
    store: &Store,
    grant_id: i64,
    by: &str,
    public_base_url: &str,
) -> Result<Option<bool>, StoreError> {
    if get_raw(store, grant_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(
        finish(store, grant_id, Some(by), public_base_url).await?,
    ))
}

/// Ends every grant whose time is up (summary and e-mail); returns how many this call ended.
/// Run periodically by every instance; each grant is ended once.
pub async fn end_expired(store: &Store, public_base_url: &str) -> Result<usize, StoreError> {
    let due: Vec<(i64,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id FROM support_grants WHERE ended_at IS NULL AND expires_at <= $1")
            .bind(now_millis())
            .fetch_all(pool)
            .await?
    });
    let mut n = 0;
    for (id,) in due {
        if finish(store, id, None, public_base_url).await? {
            n += 1;
        }
    }
    Ok(n)
}

async fn get_raw(store: &Store, id: i64) -> Result<Option<GrantRow>, StoreError> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE id = $1");
    let row: Option<GrantRow> = with_pool!(store, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    Ok(row)
}

/// One grant; an expired one not yet swept is ended (with its summary) on the way.
pub async fn get(
    store: &Store,
    id: i64,
    public_base_url: &str,
) -> Result<Option<Grant>, StoreError> {
    let Some(row) = get_raw(store, id).await? else {
        return Ok(None);
    };
    let now = now_millis();
    if row.9.is_none() && row.6 <= now {
        finish(store, id, None, public_base_url).await?;
        return Ok(get_raw(store, id).await?.map(|r| grant_of(r, now)));
    }
    Ok(Some(grant_of(row, now)))
}

/// Grants, newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<Grant>, StoreError> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants ORDER BY id DESC LIMIT $1");
    let rows: Vec<GrantRow> = with_pool!(store, pool => {
        sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
    });
    let now = now_millis();
    Ok(rows.into_iter().map(|r| grant_of(r, now)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reaches_administration_but_not_people() {
        let get = Method::GET;
        let put = Method::PUT;
        for path in [
            "/api/v1/admin/case-types",
            "/api/v1/admin/case-types/reclamo",
            "/api/v1/admin/catalog/review",
            "/api/v1/admin/outbox",
            "/staff/admin/parametros",
            "/staff",
            "/staff/salir",
        ] {
            assert!(allows(Scope::Config, &get, path), "{path}");
        }
        assert!(allows(
            Scope::Config,
            &put,
            "/api/v1/admin/case-types/reclamo"
        ));
        for path in [
            "/api/v1/admin/users",
            "/api/v1/admin/support-grants",
            "/api/v1/admin/audit",
            "/api/v1/staff/cases",
            "/api/v1/staff/cases/OIRS-2026-000001",
            "/staff/casos/OIRS-2026-000001",
            "/staff/titulares/12345678-5",
            "/staff/admin/usuarios",
            "/staff/admin/soporte",
            "/staff/admin/parametrosx",
            "/api/v1/analytics/export",
        ] {
            assert!(!allows(Scope::Config, &get, path), "{path}");
        }
    }

    #[test]
    fn cases_adds_reading_cases_only() {
        assert!(allows(
            Scope::Cases,
            &Method::GET,
            "/api/v1/staff/cases/OIRS-2026-000001"
        ));
        assert!(allows(
            Scope::Cases,
            &Method::GET,
            "/staff/casos/OIRS-2026-000001"
        ));
        assert!(!allows(
            Scope::Cases,
            &Method::POST,
            "/api/v1/staff/cases/OIRS-2026-000001/events"
        ));
        assert!(!allows(
            Scope::Cases,
            &Method::POST,
            "/staff/casos/OIRS-2026-000001"
        ));
        assert!(!allows(Scope::Cases, &Method::GET, "/staff/casos.csv"));
        assert!(!allows(Scope::Cases, &Method::GET, "/api/v1/admin/users"));
    }

    #[test]
    fn a_case_read_names_its_folio() {
        assert_eq!(
            folio_read("/api/v1/staff/cases/OIRS-2026-000007"),
            Some("OIRS-2026-000007")
        );
        assert_eq!(
            folio_read("/staff/casos/OIRS-2026-000007/adjuntos/3"),
            Some("OIRS-2026-000007")
        );
        assert_eq!(folio_read("/api/v1/staff/cases"), None);
        assert_eq!(folio_read("/staff/casos/nuevo"), None);
    }

    #[test]
    fn the_summary_lists_changes_and_counts_reads() {
        let a = |action: &str, folio: Option<&str>| GrantAction {
            at: "2026-11-30T12:00:00Z".into(),
            action: action.into(),
            folio: folio.map(String::from),
        };
        let s = summarise(
            vec![
                a("GET /staff/admin/parametros", None),
                a("POST /staff/admin/parametros", None),
                a(
                    "GET /api/v1/staff/cases/OIRS-2026-000001",
                    Some("OIRS-2026-000001"),
                ),
            ],
            "revoked",
        );
        assert_eq!(s.requests, 3);
        assert_eq!(s.records_read, 1);
        assert_eq!(s.actions.len(), 1);
        assert_eq!(s.actions[0].action, "POST /staff/admin/parametros");
    }

    #[test]
    fn minutes_left_round_up() {
        let g = SupportAccess {
            grant_id: 1,
            scope: Scope::Config,
            expires_at: 15 * 60_000,
        };
        assert_eq!(g.minutes_left(0), 15);
        assert_eq!(g.minutes_left(60_001), 14);
        assert_eq!(g.minutes_left(15 * 60_000 - 1), 1);
        assert_eq!(g.minutes_left(20 * 60_000), 0);
    }
}
