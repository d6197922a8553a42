//! Filing a case and reading it back: folios, idempotency, the first events and outbox
//! messages in one transaction; tracking lookups.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::*;
use crate::oirs::calendar::{Clock, DiasHabiles};
use crate::oirs::domain::{Channel, DataRight, Folio, Status};
use crate::oirs::location::Location;
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

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
    pub location: Option<Location>,
    /// The resident chose to publish the description in the public GeoReport listing.
    pub public_description: bool,
    pub chat_session_id: Option<String>,
    /// For a data-rights request (`datos_personales`): the right exercised.
    pub data_right: Option<DataRight>,
    pub channel: Channel,
    pub received_at: DateTime<Utc>,
    pub created_by: Option<(i64, String)>,
    /// The Open311 key (id, name) an app filed it with; the filing is audited under it.
    pub open311_key: Option<(i64, String)>,
    /// Filed by a resident signed in with ClaveÚnica: the RUT is the State's, not typed.
    pub identity_verified: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Filed {
    pub folio: String,
    pub tracking_code: String,
    pub status: Status,
    pub department: String,
    /// The department's name, as residents read it.
    #[serde(default)]
    pub department_name: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    /// Whether a confirmation e-mail to the resident was queued.
    #[serde(default)]
    pub confirmation_email: bool,
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

pub fn tracking_hash(folio: &str, code: &str) -> String {
    crate::store::sha256_hex(format!("{folio}:{}", code.trim().to_ascii_uppercase()).as_bytes())
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
        .due_on(ct.clock, local.date_naive(), ct.deadline_days.max(1) as u32);
    let code = crate::oirs::domain::new_tracking_code();
    let now = now_millis();
    let received_ms = c.received_at.timestamp_millis();
    let actor = c
        .created_by
        .as_ref()
        .map(|(_, u)| u.clone())
        .unwrap_or_else(|| "vecino".into());

    // A blocked person's data does not leave the service (Ley 21.719, bloqueo).
    let blocked = match &c.rut {
        Some(rut) => super::blocked(store, rut).await?.is_some(),
        None => false,
    };
    let result: Result<Filed, OirsError> = write_pool!(store, pool => {
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
                 created_by, updated_at, clock, data_right, latitude, longitude, public_description, identity_verified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) RETURNING id",
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
            .bind(ct.clock.as_str())
            .bind(c.data_right.map(DataRight::as_str))
            .bind(c.location.map(|l| l.lat()))
            .bind(c.location.map(|l| l.long()))
            .bind(c.public_description)
            .bind(c.identity_verified)
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
                "description": if blocked { "" } else { c.description.as_str() },
                "blocked": blocked,
                "received_at": c.received_at.to_rfc3339(),
                "due_date": due.format("%Y-%m-%d").to_string(),
            });
            let mut messages = vec![("webhook", webhook)];
            if let Some(to) = c.email.as_ref().filter(|_| !blocked) {
                messages.push(("email", json!({
                    "to": to,
                    "subject": format!("Hemos recibido su caso {folio}"),
                    "body": format!(
                        "Estimado(a) {}:\n\nRecibimos su {} con el folio {folio}.\n\
                         Puede revisar su estado en {}/seguimiento?folio={folio} con el código de seguimiento \
                         que recibió al ingresar el caso (o con su RUT, si lo indicó).\n\
                         Plazo de respuesta: {} ({}).\n\nOIRS Municipal",
                        c.name, ct.name.to_lowercase(), ctx.public_base_url, due.format("%d-%m-%Y"), ct.clock.unit()),
                })));
            }
            if !dept_email.is_empty() {
                messages.push(("email", json!({
                    "to": dept_email,
                    "subject": format!("Nuevo caso derivado: {folio}"),
                    "body": format!("Se derivó a su unidad el caso {folio} ({}). Plazo: {}.\n\n{}/staff/casos/{folio}",
                        ct.name, due.format("%d-%m-%Y"), ctx.public_base_url),
                })));
            }
            messages.retain(|(k, _)| ctx.channels.wants(k));
            let confirmation_email = c.email.is_some() && ctx.channels.wants("email");
            if !messages.is_empty() {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO outbox (kind, payload, next_attempt_at, created_at, folio) ");
                qb.push_values(&messages, |mut b, (kind, payload)| {
                    b.push_bind(*kind).push_bind(payload.to_string()).push_bind(now).push_bind(now).push_bind(folio.clone());
                });
                qb.build().execute(&mut *tx).await?;
            }
            if let Some((uid, uname)) = &c.created_by {
                sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, 'registrar', $4, $5)")
                    .bind(now).bind(uid).bind(uname).bind(&folio).bind(format!("canal {}", c.channel.as_str()))
                    .execute(&mut *tx).await?;
            }
            // Every GeoReport filing is attributed to the key it came with.
            if let Some((key_id, key_name)) = &c.open311_key {
                sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, NULL, $2, 'open311_registrar', $3, $4)")
                    .bind(now).bind(format!("open311:{key_name}")).bind(&folio).bind(format!("clave {key_id}"))
                    .execute(&mut *tx).await?;
            }
            let filed = Filed {
                folio: folio.clone(),
                tracking_code: code.clone(),
                status: Status::Derivado,
                department: department.clone(),
                department_name: dept_name.clone(),
                received_at: c.received_at,
                due_date: due,
                confirmation_email,
            };
            if let Some((key, req_hash)) = idempotency {
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(now - IDEMPOTENCY_TTL_MS)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO idempotency_keys (key, request_hash, response, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(idempotency_digest(key))
                    .bind(req_hash)
                    .bind(sealed_filed(key, &filed))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(filed)
        }.await
    });
    match result {
        Ok(f) => Ok((f, false)),
        // Two requests with the same key raced: the loser answers with the winner's case.
        Err(OirsError::Store(e))
            if e.violates(&crate::store::IDEMPOTENCY_KEY) && idempotency.is_some() =>
        {
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
        sqlx::query_as("SELECT request_hash, response FROM idempotency_keys WHERE key = $1 AND created_at >= $2")
            .bind(idempotency_digest(key)).bind(now_millis() - IDEMPOTENCY_TTL_MS).fetch_optional(pool).await?
    });
    match row {
        None => Ok(None),
        Some((h, _)) if h != req_hash => Err(OirsError::Conflict(
            "this Idempotency-Key was used with a different request".into(),
        )),
        Some((_, resp)) => Ok(unseal_filed(key, &resp)),
    }
}

/// How long a filing's Idempotency-Key is remembered: replays within it answer the same case;
/// older records are purged.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Idempotency records are looked up by the key's digest, never the key itself.
fn idempotency_digest(key: &str) -> String {
    crate::store::sha256_hex(format!("idempotency:{key}").as_bytes())
}

/// The pad that hides a tracking code in an idempotency record: HMAC-SHA256 keyed by the
/// Idempotency-Key, which only the client that filed knows. A copy of the database holds the
/// key's digest and the sealed code, from which the code cannot be recovered.
fn code_pad(key: &str, folio: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"ventanilla tracking code:");
    mac.update(folio.as_bytes());
    mac.finalize().into_bytes().into()
}

fn seal_code(key: &str, folio: &str, code: &str) -> String {
    let pad = code_pad(key, folio);
    code.bytes()
        .zip(pad.iter().cycle())
        .map(|(b, p)| format!("{:02x}", b ^ p))
        .collect()
}

fn unseal_code(key: &str, folio: &str, sealed: &str) -> Option<String> {
    let pad = code_pad(key, folio);
    let bytes = (0..sealed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(sealed.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let plain: Vec<u8> = bytes
        .iter()
        .zip(pad.iter().cycle())
        .map(|(b, p)| b ^ p)
        .collect();
    String::from_utf8(plain).ok()
}

/// The record of a filing, its tracking code sealed with the key.
fn sealed_filed(key: &str, filed: &Filed) -> String {
    let mut f = filed.clone();
    f.tracking_code = seal_code(key, &f.folio, &filed.tracking_code);
    serde_json::to_string(&f).unwrap_or_default()
}

fn unseal_filed(key: &str, record: &str) -> Option<Filed> {
    let mut f: Filed = serde_json::from_str(record).ok()?;
    f.tracking_code = unseal_code(key, &f.folio, &f.tracking_code)?;
    Some(f)
}

/// The answer a filing with this Idempotency-Key got, if it was filed less than `max_age_ms`
/// ago: the receipt the /oirs page shows after redirecting (Post/Redirect/Get).
pub async fn filed_by_key(
    store: &Store,
    key: &str,
    max_age_ms: i64,
) -> Result<Option<Filed>, StoreError> {
    let row: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT response FROM idempotency_keys WHERE key = $1 AND created_at >= $2")
            .bind(idempotency_digest(key))
            .bind(now_millis() - max_age_ms.min(IDEMPOTENCY_TTL_MS))
            .fetch_optional(pool)
            .await?
    });
    Ok(row.and_then(|(r,)| unseal_filed(key, &r)))
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
    /// The folio this case repeats, when it was closed as a duplicate.
    pub duplicate_of: Option<String>,
    /// The clock its term runs on (the case type's when it was filed).
    pub clock: Clock,
    /// For a data-rights request: the right exercised.
    #[serde(rename = "right")]
    pub data_right: Option<String>,
    /// Bumped by every change; staff actions write only if it is still the one they read.
    #[serde(skip)]
    pub version: i64,
    /// The staff member (username) the case is assigned to within its department.
    pub assignee: Option<String>,
    /// Where the problem is (WGS 84 degrees), when the resident said.
    pub lat: Option<f64>,
    pub long: Option<f64>,
    /// The resident chose to publish the description in the public GeoReport listing.
    pub public_description: bool,
    /// Filed by a resident signed in with ClaveÚnica (the RUT was not typed).
    #[serde(default)]
    pub identity_verified: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

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
