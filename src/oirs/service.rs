//! OIRS operations against the store: parameters, filing, tracking, staff events, lists and
//! reports. Each change commits with its event, audit row and outbox messages in one
//! transaction.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::calendar::{shipped_holidays, DiasHabiles};
use super::domain::{transition, Channel, EventKind, Folio, Status};
use crate::store::{now_millis, Store, StoreError};
use crate::with_pool;

#[derive(Debug, thiserror::Error)]
pub enum OirsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(&'static str, String),
    #[error("{0}")]
    Conflict(String),
    #[error("not allowed")]
    Forbidden,
}

impl From<sqlx::Error> for OirsError {
    fn from(e: sqlx::Error) -> Self {
        OirsError::Store(e.into())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CaseType {
    pub id: String,
    pub name: String,
    pub deadline_days: i32,
    pub alert_days: i32,
    pub extension_days: i32,
    pub active: bool,
}

pub async fn case_types(store: &Store) -> Result<Vec<CaseType>, StoreError> {
    let rows: Vec<(String, String, i32, i32, i32, bool)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id, name, deadline_days, alert_days, extension_days, active FROM case_types ORDER BY id")
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(id, name, deadline_days, alert_days, extension_days, active)| CaseType {
                id,
                name,
                deadline_days,
                alert_days,
                extension_days,
                active,
            },
        )
        .collect())
}

pub async fn case_type(store: &Store, id: &str) -> Result<Option<CaseType>, StoreError> {
    Ok(case_types(store).await?.into_iter().find(|t| t.id == id))
}

pub async fn upsert_case_type(store: &Store, t: &CaseType) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO case_types (id, name, deadline_days, alert_days, extension_days, active) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = $2, \
             deadline_days = $3, alert_days = $4, extension_days = $5, active = $6",
        )
        .bind(&t.id).bind(&t.name).bind(t.deadline_days).bind(t.alert_days)
        .bind(t.extension_days).bind(t.active)
        .execute(pool)
        .await?;
    });
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub email: String,
    pub active: bool,
}

pub async fn departments(store: &Store) -> Result<Vec<Department>, StoreError> {
    let rows: Vec<(String, String, String, bool)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id, name, email, active FROM departments ORDER BY id")
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, name, email, active)| Department {
            id,
            name,
            email,
            active,
        })
        .collect())
}

pub async fn upsert_department(store: &Store, d: &Department) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO departments (id, name, email, active) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET name = $2, email = $3, active = $4",
        )
        .bind(&d.id).bind(&d.name).bind(&d.email).bind(d.active)
        .execute(pool)
        .await?;
    });
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RoutingRule {
    /// A case type id or `*`.
    pub case_type: String,
    /// A topic id or `*`.
    pub topic: String,
    pub department: String,
}

pub async fn routing_rules(store: &Store) -> Result<Vec<RoutingRule>, StoreError> {
    let rows: Vec<(String, String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT case_type, topic, department_id FROM routing_rules ORDER BY case_type, topic")
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(case_type, topic, department)| RoutingRule {
            case_type,
            topic,
            department,
        })
        .collect())
}

pub async fn upsert_routing_rule(store: &Store, r: &RoutingRule) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO routing_rules (case_type, topic, department_id) VALUES ($1, $2, $3) \
             ON CONFLICT (case_type, topic) DO UPDATE SET department_id = $3",
        )
        .bind(&r.case_type).bind(&r.topic).bind(&r.department)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub async fn delete_routing_rule(
    store: &Store,
    case_type: &str,
    topic: &str,
) -> Result<bool, StoreError> {
    let n = with_pool!(store, pool => {
        sqlx::query("DELETE FROM routing_rules WHERE case_type = $1 AND topic = $2")
            .bind(case_type).bind(topic).execute(pool).await?.rows_affected()
    });
    Ok(n > 0)
}

/// The department for (type, topic): exact rule, then type with any topic, then topic with
/// any type, then the catch-all.
pub fn route(rules: &[RoutingRule], case_type: &str, topic: &str) -> Option<String> {
    let pick = |t: &str, p: &str| {
        rules
            .iter()
            .find(|r| r.case_type == t && r.topic == p)
            .map(|r| r.department.clone())
    };
    pick(case_type, topic)
        .or_else(|| pick(case_type, "*"))
        .or_else(|| pick("*", topic))
        .or_else(|| pick("*", "*"))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
    /// `file` (shipped with the service) or `admin`.
    pub source: String,
}

pub async fn holidays(store: &Store) -> Result<Vec<Holiday>, StoreError> {
    let rows: Vec<(String, String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT day, name, source FROM holidays ORDER BY day").fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(d, name, source)| {
            Some(Holiday {
                date: NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()?,
                name,
                source,
            })
        })
        .collect())
}

pub async fn upsert_holiday(store: &Store, h: &Holiday) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query("INSERT INTO holidays (day, name, source) VALUES ($1, $2, $3) ON CONFLICT (day) DO UPDATE SET name = $2, source = $3")
            .bind(h.date.format("%Y-%m-%d").to_string()).bind(&h.name).bind(&h.source)
            .execute(pool).await?;
    });
    Ok(())
}

pub async fn delete_holiday(store: &Store, day: NaiveDate) -> Result<bool, StoreError> {
    let n = with_pool!(store, pool => {
        sqlx::query("DELETE FROM holidays WHERE day = $1")
            .bind(day.format("%Y-%m-%d").to_string()).execute(pool).await?.rows_affected()
    });
    Ok(n > 0)
}

/// Merges the shipped holiday file into the store when its version is newer than the one
/// applied; holidays an administrator added stay.
pub async fn sync_holidays(store: &Store) -> Result<(), StoreError> {
    let Ok(file) = shipped_holidays() else {
        tracing::error!("the shipped holiday file does not parse; holidays left as they are");
        return Ok(());
    };
    let current: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT value FROM settings WHERE key = 'holidays_version'").fetch_optional(pool).await?
    });
    let current: i64 = current.and_then(|(v,)| v.parse().ok()).unwrap_or(0);
    if current >= file.version {
        return Ok(());
    }
    with_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        for h in &file.holidays {
            sqlx::query("INSERT INTO holidays (day, name, source) VALUES ($1, $2, 'file') ON CONFLICT (day) DO UPDATE SET name = $2")
                .bind(h.date.format("%Y-%m-%d").to_string()).bind(&h.name)
                .execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO settings (key, value) VALUES ('holidays_version', $1) ON CONFLICT (key) DO UPDATE SET value = $1")
            .bind(file.version.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    tracing::info!(version = file.version, "holiday calendar updated");
    Ok(())
}

pub async fn calendar(store: &Store) -> Result<DiasHabiles, StoreError> {
    Ok(DiasHabiles::new(
        holidays(store).await?.into_iter().map(|h| h.date),
    ))
}

/// A validated case, ready to be filed.
#[derive(Clone, Debug)]
pub struct NewCase {
    pub case_type: String,
    pub topic: String,
    pub description: String,
    pub name: String,
    pub rut: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub chat_session_id: Option<String>,
    pub channel: Channel,
    pub received_at: DateTime<Utc>,
    pub created_by: Option<(i64, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Filed {
    pub folio: String,
    pub tracking_code: String,
    pub status: Status,
    pub department: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
}

/// Which outbox channels have a receiver. Messages for a channel nobody configured are not
/// queued at all (a configured receiver that is down is another matter: those wait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub webhook: bool,
    pub email: bool,
}

impl Channels {
    pub fn wants(&self, kind: &str) -> bool {
        match kind {
            "webhook" => self.webhook,
            "email" => self.email,
            _ => false,
        }
    }
}

/// Everything filing needs besides the store.
pub struct FilingContext<'a> {
    pub tz: Tz,
    pub calendar: &'a DiasHabiles,
    pub public_base_url: &'a str,
    pub channels: Channels,
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn tracking_hash(folio: &str, code: &str) -> String {
    sha256_hex(&format!("{folio}:{}", code.trim().to_ascii_uppercase()))
}

/// Files a case: folio, first events, routing, outbox messages (webhook to gestión
/// documental, acknowledgement e-mail, department notice) in one transaction, so the case is
/// durable before the caller answers 201.
pub async fn file_case(
    store: &Store,
    ctx: &FilingContext<'_>,
    c: &NewCase,
    idempotency: Option<(&str, &str)>,
) -> Result<(Filed, bool), OirsError> {
    if let Some((key, req_hash)) = idempotency {
        if let Some(prev) = idempotent_replay(store, key, req_hash).await? {
            return Ok((prev, true));
        }
    }
    let ct = case_type(store, &c.case_type)
        .await?
        .filter(|t| t.active)
        .ok_or_else(|| {
            OirsError::Invalid("type", format!("unknown case type {:?}", c.case_type))
        })?;
    let rules = routing_rules(store).await?;
    let department = route(&rules, &c.case_type, &c.topic)
        .ok_or_else(|| OirsError::Invalid("topic", "no routing rule applies".into()))?;
    let dept_email: Option<(String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT name, email FROM departments WHERE id = $1").bind(&department).fetch_optional(pool).await?
    });
    let (dept_name, dept_email) = dept_email.unwrap_or_default();

    let local = c.received_at.with_timezone(&ctx.tz);
    let year = chrono::Datelike::year(&local);
    let due = ctx
        .calendar
        .due_date(local.date_naive(), ct.deadline_days.max(1) as u32);
    let code = super::domain::new_tracking_code();
    let now = now_millis();
    let received_ms = c.received_at.timestamp_millis();
    let actor = c
        .created_by
        .as_ref()
        .map(|(_, u)| u.clone())
        .unwrap_or_else(|| "vecino".into());

    let gate = store.write_gate().await;
    let result: Result<Filed, OirsError> = with_pool!(store, pool => {
        async {
            let mut tx = pool.begin().await?;
            // The counter update is the transaction's first statement: it takes the write lock
            // at once (SQLite) or the row lock (PostgreSQL), so folios stay consecutive.
            let (seq,): (i64,) = sqlx::query_as(
                "INSERT INTO folio_counters (year, last_seq) VALUES ($1, 1) \
                 ON CONFLICT (year) DO UPDATE SET last_seq = folio_counters.last_seq + 1 RETURNING last_seq",
            )
            .bind(year)
            .fetch_one(&mut *tx)
            .await?;
            let folio = Folio { year, seq }.to_string();
            let (case_id,): (i64,) = sqlx::query_as(
                "INSERT INTO cases (folio, tracking_hash, case_type, topic, department_id, status, channel, \
                 description, name, rut, email, phone, address, chat_session_id, received_at, due_date, \
                 created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18) RETURNING id",
            )
            .bind(&folio)
            .bind(tracking_hash(&folio, &code))
            .bind(&c.case_type)
            .bind(&c.topic)
            .bind(&department)
            .bind(Status::Derivado.as_str())
            .bind(c.channel.as_str())
            .bind(&c.description)
            .bind(&c.name)
            .bind(&c.rut)
            .bind(&c.email)
            .bind(&c.phone)
            .bind(&c.address)
            .bind(&c.chat_session_id)
            .bind(received_ms)
            .bind(due.format("%Y-%m-%d").to_string())
            .bind(c.created_by.as_ref().map(|(id, _)| *id))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            // Both first events in one statement: fewer round trips while holding the lock.
            sqlx::query(
                "INSERT INTO case_events (case_id, at, kind, actor, from_status, to_status, department_id, note, public) \
                 VALUES ($1, $2, 'recibido', $3, NULL, $4, NULL, $5, TRUE), ($1, $2, 'derivar', 'sistema', $4, $6, $7, $8, TRUE)",
            )
            .bind(case_id)
            .bind(now)
            .bind(actor.as_str())
            .bind(Status::Recibido.as_str())
            .bind(format!("Recibido por canal {}", c.channel.as_str()))
            .bind(Status::Derivado.as_str())
            .bind(&department)
            .bind(format!("Derivado a {dept_name}"))
            .execute(&mut *tx)
            .await?;
            let webhook = json!({
                "event": "derivacion",
                "folio": folio,
                "type": c.case_type,
                "topic": c.topic,
                "department": department,
                "description": c.description,
                "received_at": c.received_at.to_rfc3339(),
                "due_date": due.format("%Y-%m-%d").to_string(),
            });
            let mut messages = vec![("webhook", webhook)];
            if let Some(to) = &c.email {
                messages.push(("email", json!({
                    "to": to,
                    "subject": format!("Hemos recibido su caso {folio}"),
                    "body": format!(
                        "Estimado(a) {}:\n\nRecibimos su {} con el folio {folio}. Su código de seguimiento es {code}.\n\
                         Puede revisar su estado en {}/seguimiento?folio={folio}\n\
                         Plazo de respuesta: {} (días hábiles).\n\nOIRS Municipal",
                        c.name, ct.name.to_lowercase(), ctx.public_base_url, due.format("%d-%m-%Y")),
                })));
            }
            if !dept_email.is_empty() {
                messages.push(("email", json!({
                    "to": dept_email,
                    "subject": format!("Nuevo caso derivado: {folio}"),
                    "body": format!("Se derivó a su unidad el caso {folio} ({}). Plazo: {}.", ct.name, due.format("%d-%m-%Y")),
                })));
            }
            messages.retain(|(k, _)| ctx.channels.wants(k));
            if !messages.is_empty() {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO outbox (kind, payload, next_attempt_at, created_at) ");
                qb.push_values(&messages, |mut b, (kind, payload)| {
                    b.push_bind(*kind).push_bind(payload.to_string()).push_bind(now).push_bind(now);
                });
                qb.build().execute(&mut *tx).await?;
            }
            if let Some((uid, uname)) = &c.created_by {
                sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, 'registrar', $4, $5)")
                    .bind(now).bind(uid).bind(uname).bind(&folio).bind(format!("canal {}", c.channel.as_str()))
                    .execute(&mut *tx).await?;
            }
            let filed = Filed {
                folio: folio.clone(),
                tracking_code: code.clone(),
                status: Status::Derivado,
                department: department.clone(),
                received_at: c.received_at,
                due_date: due,
            };
            if let Some((key, req_hash)) = idempotency {
                sqlx::query("INSERT INTO idempotency_keys (key, request_hash, response, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(key)
                    .bind(req_hash)
                    .bind(serde_json::to_string(&filed).unwrap_or_default())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(filed)
        }.await
    });
    drop(gate);
    match result {
        Ok(f) => Ok((f, false)),
        // Two requests with the same key raced: the loser answers with the winner's case.
        Err(OirsError::Store(e)) if e.unique_violation().is_some() && idempotency.is_some() => {
            let (key, req_hash) = idempotency.unwrap_or_default();
            match idempotent_replay(store, key, req_hash).await? {
                Some(prev) => Ok((prev, true)),
                None => Err(OirsError::Store(e)),
            }
        }
        Err(e) => Err(e),
    }
}

async fn idempotent_replay(
    store: &Store,
    key: &str,
    req_hash: &str,
) -> Result<Option<Filed>, OirsError> {
    let row: Option<(String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT request_hash, response FROM idempotency_keys WHERE key = $1")
            .bind(key).fetch_optional(pool).await?
    });
    match row {
        None => Ok(None),
        Some((h, _)) if h != req_hash => Err(OirsError::Conflict(
            "this Idempotency-Key was used with a different request".into(),
        )),
        Some((_, resp)) => Ok(serde_json::from_str(&resp).ok()),
    }
}

/// A case as stored.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CaseRecord {
    #[serde(skip)]
    pub id: i64,
    pub folio: String,
    #[serde(skip)]
    pub tracking_hash: String,
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    pub department: String,
    pub status: Status,
    pub channel: String,
    pub description: String,
    pub name: String,
    pub rut: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub paused_since: Option<NaiveDate>,
    pub extended: bool,
    pub alert_level: String,
    pub answer: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

const CASE_COLUMNS: &str =
    "id, folio, tracking_hash, case_type, topic, department_id, status, channel, \
    description, name, rut, email, phone, address, received_at, due_date, paused_since, extended, \
    alert_level, answer, answered_at";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Maps a row of `CASE_COLUMNS` (either backend) to a record. A macro because sqlx rows are
/// typed per backend and tuples stop at 16 columns.
macro_rules! case_from_row {
    ($r:expr) => {{
        use sqlx::Row as _;
        let r = &$r;
        let status: String = r.try_get(6)?;
        let due: String = r.try_get(15)?;
        let paused: Option<String> = r.try_get(16)?;
        let answered: Option<i64> = r.try_get(20)?;
        CaseRecord {
            id: r.try_get(0)?,
            folio: r.try_get(1)?,
            tracking_hash: r.try_get(2)?,
            case_type: r.try_get(3)?,
            topic: r.try_get(4)?,
            department: r.try_get(5)?,
            status: status.parse().unwrap_or(Status::Recibido),
            channel: r.try_get(7)?,
            description: r.try_get(8)?,
            name: r.try_get(9)?,
            rut: r.try_get(10)?,
            email: r.try_get(11)?,
            phone: r.try_get(12)?,
            address: r.try_get(13)?,
            received_at: millis(r.try_get(14)?),
            due_date: date(&due),
            paused_since: paused.as_deref().map(date),
            extended: r.try_get(17)?,
            alert_level: r.try_get(18)?,
            answer: r.try_get(19)?,
            answered_at: answered.map(millis),
        }
    }};
}

pub async fn find_case(store: &Store, folio: &str) -> Result<Option<CaseRecord>, StoreError> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE folio = $1");
    let case = with_pool!(store, pool => {
        match sqlx::query(&sql).bind(folio).fetch_optional(pool).await? {
            Some(r) => Some(case_from_row!(r)),
            None => None,
        }
    });
    Ok(case)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CaseEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub department: Option<String>,
    pub note: Option<String>,
    pub public: bool,
}

pub async fn case_events(
    store: &Store,
    case_id: i64,
    public_only: bool,
) -> Result<Vec<CaseEvent>, StoreError> {
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
    );
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT at, kind, actor, from_status, to_status, department_id, note, public FROM case_events \
             WHERE case_id = $1 AND (public OR NOT $2) ORDER BY id",
        )
        .bind(case_id)
        .bind(public_only)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(at, kind, actor, from_status, to_status, department, note, public)| CaseEvent {
                at: millis(at),
                kind,
                actor,
                from_status,
                to_status,
                department,
                note,
                public,
            },
        )
        .collect())
}

/// Records a failed attempt (tracking guess, login) and says how many happened in the window.
pub async fn note_failure(
    store: &Store,
    scope: &str,
    subject: &str,
    window_ms: i64,
) -> Result<i64, StoreError> {
    let now = now_millis();
    let _gate = store.write_gate().await;
    let (n,): (i64,) = with_pool!(store, pool => {
        sqlx::query("INSERT INTO attempt_failures (scope, subject, at) VALUES ($1, $2, $3)")
            .bind(scope).bind(subject).bind(now).execute(pool).await?;
        sqlx::query("DELETE FROM attempt_failures WHERE at < $1").bind(now - 24 * 3_600_000).execute(pool).await?;
        sqlx::query_as("SELECT COUNT(*) FROM attempt_failures WHERE scope = $1 AND subject = $2 AND at >= $3")
            .bind(scope).bind(subject).bind(now - window_ms).fetch_one(pool).await?
    });
    Ok(n)
}

pub async fn recent_failures(
    store: &Store,
    scope: &str,
    subject: &str,
    window_ms: i64,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_pool!(store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM attempt_failures WHERE scope = $1 AND subject = $2 AND at >= $3")
            .bind(scope).bind(subject).bind(now_millis() - window_ms).fetch_one(pool).await?
    });
    Ok(n)
}

pub async fn clear_failures(store: &Store, scope: &str, subject: &str) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query("DELETE FROM attempt_failures WHERE scope = $1 AND subject = $2")
            .bind(scope).bind(subject).execute(pool).await?;
    });
    Ok(())
}

/// Who acts on a case.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub username: String,
    pub role: crate::staff::auth::Role,
    pub department: Option<String>,
}

impl Actor {
    /// Coordinators and admins act on every case; department staff on their own only.
    pub fn may_act_on(&self, case_department: &str) -> bool {
        use crate::staff::auth::Role;
        match self.role {
            Role::Admin | Role::Coordinator => true,
            Role::Department => self.department.as_deref() == Some(case_department),
            Role::Analyst => false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    pub kind: EventKind,
    /// Target department (derivar).
    #[serde(default)]
    pub department: Option<String>,
    /// Reason, comment, question to the resident, or the answer text (responder).
    #[serde(default)]
    pub text: Option<String>,
}

/// Applies a staff event with the status machine, pause/extension rules, audit and outbox.
#[allow(clippy::too_many_arguments)]
pub async fn apply_event(
    store: &Store,
    tz: Tz,
    calendar: &DiasHabiles,
    channels: Channels,
    actor: &Actor,
    folio: &str,
    ev: &EventIn,
) -> Result<CaseRecord, OirsError> {
    use crate::staff::auth::Role;
    let case = find_case(store, folio).await?.ok_or(OirsError::NotFound)?;
    if !actor.may_act_on(&case.department) {
        return Err(OirsError::Forbidden);
    }
    if ev.kind == EventKind::Derivar && !matches!(actor.role, Role::Admin | Role::Coordinator) {
        return Err(OirsError::Forbidden);
    }
    let to = transition(case.status, ev.kind).ok_or_else(|| {
        OirsError::Conflict(format!(
            "cannot {} a case that is {}",
            ev.kind.as_str(),
            case.status.as_str()
        ))
    })?;
    let text = ev.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 10_000) {
        return Err(OirsError::Invalid(
            "text",
            "at most 10,000 characters".into(),
        ));
    }
    let needs_text = matches!(
        ev.kind,
        EventKind::Derivar
            | EventKind::Comentar
            | EventKind::PedirInformacion
            | EventKind::Responder
    );
    if needs_text && text.is_none() {
        return Err(OirsError::Invalid(
            "text",
            format!("{} needs a text", ev.kind.as_str()),
        ));
    }
    let today = Utc::now().with_timezone(&tz).date_naive();
    let mut department = case.department.clone();
    let mut due = case.due_date;
    let mut paused_since = case.paused_since;
    let mut extended = case.extended;
    match ev.kind {
        EventKind::Derivar => {
            let target = ev.department.clone().ok_or_else(|| {
                OirsError::Invalid("department", "derivar needs a department".into())
            })?;
            let exists = departments(store)
                .await?
                .iter()
                .any(|d| d.id == target && d.active);
            if !exists {
                return Err(OirsError::Invalid(
                    "department",
                    format!("unknown department {target:?}"),
                ));
            }
            if target == case.department {
                return Err(OirsError::Conflict(
                    "the case is already in that department".into(),
                ));
            }
            department = target;
        }
        EventKind::PedirInformacion => paused_since = Some(today),
        EventKind::Reanudar => {
            // Business days spent waiting for the resident do not count against the deadline.
            if let Some(since) = paused_since.take() {
                let waited = calendar.between(since, today).max(0) as u32;
                due = calendar.add(due, waited);
            }
        }
        EventKind::Prorrogar => {
            let ct = case_type(store, &case.case_type).await?;
            let days = ct.map(|t| t.extension_days).unwrap_or(0);
            if days <= 0 {
                return Err(OirsError::Conflict(
                    "this case type has no extension".into(),
                ));
            }
            if extended {
                return Err(OirsError::Conflict(
                    "the deadline was already extended".into(),
                ));
            }
            due = calendar.add(due, days as u32);
            extended = true;
        }
        _ => {}
    }
    let now = now_millis();
    let public = !matches!(ev.kind, EventKind::Comentar);
    let note = match ev.kind {
        EventKind::Derivar => Some(format!("Derivado a {department}: {}", text.unwrap_or(""))),
        EventKind::Prorrogar => Some(format!("Plazo prorrogado hasta {}", due.format("%d-%m-%Y"))),
        _ => text.map(String::from),
    };
    let answer = (ev.kind == EventKind::Responder).then(|| text.unwrap_or("").to_string());
    let dept_email: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT email FROM departments WHERE id = $1").bind(&department).fetch_optional(pool).await?
    });
    let mut outbox: Vec<serde_json::Value> = Vec::new();
    let wants = |k: &str| channels.wants(k);
    if ev.kind == EventKind::Derivar {
        outbox.push(json!({"kind": "webhook", "payload": {
            "event": "derivacion", "folio": case.folio, "type": case.case_type, "topic": case.topic,
            "department": department, "description": case.description,
            "received_at": case.received_at.to_rfc3339(), "due_date": due.format("%Y-%m-%d").to_string(),
        }}));
        if let Some((email,)) = dept_email.filter(|(e,)| !e.is_empty()) {
            outbox.push(json!({"kind": "email", "payload": {
                "to": email, "subject": format!("Caso derivado a su unidad: {}", case.folio),
                "body": format!("Se derivó a su unidad el caso {}. Motivo: {}", case.folio, text.unwrap_or("")),
            }}));
        }
    }
    if let Some(email) = &case.email {
        let resident_mail = match ev.kind {
            EventKind::Responder => Some((format!("Respuesta a su caso {}", case.folio), format!(
                "Estimado(a) {}:\n\n{}\n\nPuede revisar su caso en /seguimiento?folio={}.\n\nOIRS Municipal",
                case.name, text.unwrap_or(""), case.folio))),
            EventKind::PedirInformacion => Some((format!("Necesitamos información sobre su caso {}", case.folio), format!(
                "Estimado(a) {}:\n\nPara continuar con su caso {} necesitamos: {}\n\nOIRS Municipal",
                case.name, case.folio, text.unwrap_or("")))),
            _ => None,
        };
        if let Some((subject, body)) = resident_mail {
            outbox.push(json!({"kind": "email", "payload": {"to": email, "subject": subject, "body": body}}));
        }
    }
    let gate = store.write_gate().await;
    let changed: Result<u64, OirsError> = with_pool!(store, pool => {
        async {
            let mut tx = pool.begin().await?;
            // Optimistic check: the status must still be what we decided on.
            let n = sqlx::query(
                "UPDATE cases SET status = $1, department_id = $2, due_date = $3, paused_since = $4, \
                 extended = $5, answer = COALESCE($6, answer), answered_at = CASE WHEN $6 IS NULL THEN answered_at ELSE $7 END, \
                 closed_at = CASE WHEN $1 = 'cerrado' THEN $7 ELSE closed_at END, alert_level = CASE WHEN $1 IN ('respondido', 'cerrado') THEN 'none' ELSE alert_level END, \
                 updated_at = $7 WHERE id = $8 AND status = $9",
            )
            .bind(to.as_str())
            .bind(&department)
            .bind(due.format("%Y-%m-%d").to_string())
            .bind(paused_since.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(extended)
            .bind(&answer)
            .bind(now)
            .bind(case.id)
            .bind(case.status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(0);
            }
            sqlx::query(
                "INSERT INTO case_events (case_id, at, kind, actor, from_status, to_status, department_id, note, public) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(case.id).bind(now).bind(ev.kind.as_str()).bind(&actor.username)
            .bind(case.status.as_str()).bind(to.as_str()).bind(&department).bind(&note).bind(public)
            .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(now).bind(actor.user_id).bind(&actor.username).bind(ev.kind.as_str()).bind(&case.folio)
                .bind(format!("{} -> {}", case.status.as_str(), to.as_str()))
                .execute(&mut *tx).await?;
            for m in outbox.iter().filter(|m| wants(m["kind"].as_str().unwrap_or(""))) {
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $3)")
                    .bind(m["kind"].as_str().unwrap_or("email"))
                    .bind(m["payload"].to_string())
                    .bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n)
        }.await
    });
    drop(gate);
    if changed? == 0 {
        return Err(OirsError::Conflict(
            "the case changed meanwhile; reload and try again".into(),
        ));
    }
    find_case(store, folio).await?.ok_or(OirsError::NotFound)
}

pub async fn audit(
    store: &Store,
    actor: &Actor,
    action: &str,
    folio: &str,
    detail: &str,
) -> Result<(), StoreError> {
    with_pool!(store, pool => {
        sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now_millis()).bind(actor.user_id).bind(&actor.username).bind(action).bind(folio).bind(detail)
            .execute(pool).await?;
    });
    Ok(())
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub department: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub case_type: Option<String>,
    pub overdue: Option<bool>,
    pub due_before: Option<NaiveDate>,
    /// `alerta` or `vencido`.
    pub alert: Option<String>,
    /// At most this many cases (default 500).
    pub limit: Option<i64>,
}

/// Cases matching the filter, oldest due first. `today` decides what is overdue.
pub async fn list_cases(
    store: &Store,
    f: &CaseFilter,
    today: NaiveDate,
) -> Result<Vec<CaseRecord>, StoreError> {
    let limit = f.limit.unwrap_or(500).clamp(1, 5000);
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR department_id = $2) \
         AND ($3 IS NULL OR case_type = $3) AND ($4 IS NULL OR due_date < $4) AND ($5 IS NULL OR due_date < $5) \
         AND ($6 IS NULL OR alert_level = $6) AND ($7 = FALSE OR status NOT IN ('respondido', 'cerrado')) \
         ORDER BY due_date, id LIMIT $8"
    );
    let overdue = f.overdue.unwrap_or(false);
    let today_s = overdue.then(|| today.format("%Y-%m-%d").to_string());
    let cases = with_pool!(store, pool => {
        let rows = sqlx::query(&sql)
            .bind(&f.status)
            .bind(&f.department)
            .bind(&f.case_type)
            .bind(today_s)
            .bind(f.due_before.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(&f.alert)
            .bind(overdue)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(case_from_row!(r));
        }
        out
    });
    Ok(cases)
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct PendingRow {
    pub department: String,
    pub pending: i64,
    pub in_alert: i64,
    pub overdue: i64,
    pub waiting_resident: i64,
}

pub async fn pending_report(
    store: &Store,
    department: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<PendingRow>, StoreError> {
    let rows: Vec<(String, i64, i64, i64, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT department_id, COUNT(*), \
             SUM(CASE WHEN alert_level = 'alerta' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN due_date < $1 AND status <> 'pendiente_informacion' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN status = 'pendiente_informacion' THEN 1 ELSE 0 END) \
             FROM cases WHERE status NOT IN ('respondido', 'cerrado') AND ($2 IS NULL OR department_id = $2) \
             GROUP BY department_id ORDER BY department_id",
        )
        .bind(today.format("%Y-%m-%d").to_string())
        .bind(department)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(department, pending, in_alert, overdue, waiting_resident)| PendingRow {
                department,
                pending,
                in_alert,
                overdue,
                waiting_resident,
            },
        )
        .collect())
}

/// The alert level of an open case on `today`: `vencido` past the due date, `alerta` within
/// the type's alert threshold, else `none`. Paused cases do not alert.
pub fn alert_level(
    status: Status,
    due: NaiveDate,
    alert_days: i32,
    today: NaiveDate,
    cal: &DiasHabiles,
) -> &'static str {
    if !status.is_open() || status == Status::PendienteInformacion {
        return "none";
    }
    let left = cal.days_left(today, due);
    if left < 0 {
        "vencido"
    } else if left <= alert_days as i64 {
        "alerta"
    } else {
        "none"
    }
}

/// Marks cases whose alert level changed and tells their department through the outbox.
/// Returns how many cases changed level.
pub async fn run_alerts(
    store: &Store,
    cal: &DiasHabiles,
    channels: Channels,
    today: NaiveDate,
) -> Result<usize, StoreError> {
    let types = case_types(store).await?;
    let depts = departments(store).await?;
    let open: Vec<(i64, String, String, String, String, String, String)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, folio, case_type, department_id, status, due_date, alert_level FROM cases \
             WHERE status NOT IN ('respondido', 'cerrado')",
        )
        .fetch_all(pool)
        .await?
    });
    let mut changed = 0;
    let now = now_millis();
    for (id, folio, ct, dept, status, due, level) in open {
        let alert_days = types
            .iter()
            .find(|t| t.id == ct)
            .map(|t| t.alert_days)
            .unwrap_or(5);
        let new = alert_level(
            status.parse().unwrap_or(Status::Recibido),
            date(&due),
            alert_days,
            today,
            cal,
        );
        if new == level {
            continue;
        }
        let email = depts
            .iter()
            .find(|d| d.id == dept)
            .map(|d| d.email.clone())
            .unwrap_or_default();
        with_pool!(store, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE cases SET alert_level = $1 WHERE id = $2 AND alert_level = $3")
                .bind(new).bind(id).bind(&level).execute(&mut *tx).await?.rows_affected();
            if n == 1 && new != "none" && !email.is_empty() && channels.email {
                let subject = if new == "vencido" {
                    format!("Caso vencido: {folio}")
                } else {
                    format!("Caso por vencer: {folio}")
                };
                let body = format!("El caso {folio} vence el {} ({}).", date(&due).format("%d-%m-%Y"), new);
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at) VALUES ('email', $1, $2, $2)")
                    .bind(json!({"to": email, "subject": subject, "body": body}).to_string())
                    .bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            changed += n as usize;
        });
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(t: &str, p: &str, d: &str) -> RoutingRule {
        RoutingRule {
            case_type: t.into(),
            topic: p.into(),
            department: d.into(),
        }
    }

    #[test]
    fn routing_prefers_the_most_specific_rule() {
        let rules = vec![
            rule("*", "*", "oirs"),
            rule("*", "alumbrado_publico", "aseo_ornato"),
            rule("transparencia", "*", "transparencia"),
            rule("reclamo", "alumbrado_publico", "dom"),
        ];
        assert_eq!(
            route(&rules, "reclamo", "alumbrado_publico").as_deref(),
            Some("dom")
        );
        assert_eq!(
            route(&rules, "solicitud", "alumbrado_publico").as_deref(),
            Some("aseo_ornato")
        );
        assert_eq!(
            route(&rules, "transparencia", "alumbrado_publico").as_deref(),
            Some("transparencia")
        );
        assert_eq!(
            route(&rules, "consulta", "turismo").as_deref(),
            Some("oirs")
        );
        assert_eq!(route(&[], "consulta", "turismo"), None);
    }

    #[test]
    fn alert_levels() {
        let cal = DiasHabiles::default();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("d");
        let due = d("2026-12-10"); // Thursday
        assert_eq!(
            alert_level(Status::EnProceso, due, 3, d("2026-12-01"), &cal),
            "none"
        );
        assert_eq!(
            alert_level(Status::EnProceso, due, 3, d("2026-12-07"), &cal),
            "alerta"
        );
        assert_eq!(
            alert_level(Status::EnProceso, due, 3, d("2026-12-11"), &cal),
            "vencido"
        );
        assert_eq!(
            alert_level(Status::PendienteInformacion, due, 3, d("2026-12-11"), &cal),
            "none"
        );
        assert_eq!(
            alert_level(Status::Respondido, due, 3, d("2026-12-11"), &cal),
            "none"
        );
    }

    #[test]
    fn tracking_hash_ignores_case_and_spaces_of_the_code() {
        assert_eq!(
            tracking_hash("OIRS-2026-000001", " abcd "),
            tracking_hash("OIRS-2026-000001", "ABCD")
        );
        assert_ne!(
            tracking_hash("OIRS-2026-000001", "ABCD"),
            tracking_hash("OIRS-2026-000002", "ABCD")
        );
    }
}
