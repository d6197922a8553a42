//! Data subjects (Ley 21.719): everything held about one person (by RUT), rectification of
//! their contact data, anonymisation of their closed cases, the block flag, and the retention
//! job that anonymises what has been kept long enough.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::oirs::domain::Status;
use crate::outbox::ANONYMIZED_PAYLOAD;
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// A case as the person's data: the record with its whole history.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubjectCase {
    #[serde(flatten)]
    pub case: CaseRecord,
    pub closed_at: Option<DateTime<Utc>>,
    pub anonymized_at: Option<DateTime<Utc>>,
    pub events: Vec<CaseEvent>,
}

/// A message the service sent, or will send, to the person.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubjectMessage {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub folio: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// One interaction of a chat conversation that led to a filing (its text masked).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubjectInteraction {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub button: Option<String>,
    pub intent: Option<String>,
    pub text: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubjectChat {
    pub session_id: String,
    pub interactions: Vec<SubjectInteraction>,
}

/// The contact data the cases hold, each value once.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct SubjectContact {
    pub names: Vec<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubjectBlock {
    pub since: DateTime<Utc>,
    pub actor: String,
    pub reason: String,
}

/// Everything held about a person: the portability format.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DataSubject {
    pub rut: String,
    pub generated_at: DateTime<Utc>,
    pub blocked: Option<SubjectBlock>,
    pub contact: SubjectContact,
    pub cases: Vec<SubjectCase>,
    pub messages: Vec<SubjectMessage>,
    pub chat_sessions: Vec<SubjectChat>,
}

/// Contact data to correct on every case of the person that still holds it.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rectification {
    /// 2 to 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// An e-mail address; blank clears it.
    #[serde(default)]
    pub email: Option<String>,
    /// A Chilean phone number; blank clears it.
    #[serde(default)]
    pub phone: Option<String>,
    /// Blank clears it.
    #[serde(default)]
    #[schema(max_length = 300)]
    pub address: Option<String>,
}

fn push_unique(v: &mut Vec<String>, s: &Option<String>) {
    if let Some(s) = s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    }
}

pub async fn blocked(store: &Store, rut: &str) -> Result<Option<SubjectBlock>, StoreError> {
    let row: Option<(i64, String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT since, actor, reason FROM data_subject_blocks WHERE rut = $1")
            .bind(rut).fetch_optional(pool).await?
    });
    Ok(row.map(|(since, actor, reason)| SubjectBlock {
        since: millis(since),
        actor,
        reason,
    }))
}

/// Everything held about the person with this (normalised) RUT, and nothing of anyone else.
pub async fn gather(store: &Store, rut: &str) -> Result<DataSubject, StoreError> {
    let sql = format!(
        "SELECT {CASE_COLUMNS}, closed_at, anonymized_at, chat_session_id FROM cases WHERE rut = $1 ORDER BY id"
    );
    let mut cases: Vec<SubjectCase> = Vec::new();
    let mut sessions: Vec<String> = Vec::new();
    with_pool!(store, pool => {
        for r in sqlx::query(&sql).bind(rut).fetch_all(pool).await? {
            use sqlx::Row as _;
            let closed: Option<i64> = r.try_get("closed_at")?;
            let anonymized: Option<i64> = r.try_get("anonymized_at")?;
            push_unique(&mut sessions, &r.try_get("chat_session_id")?);
            cases.push(SubjectCase {
                case: case_from_row!(r),
                closed_at: closed.map(millis),
                anonymized_at: anonymized.map(millis),
                events: Vec::new(),
            });
        }
    });
    let mut contact = SubjectContact::default();
    for c in &mut cases {
        c.events = case_events(store, c.case.id, false).await?;
        push_unique(&mut contact.names, &Some(c.case.name.clone()));
        push_unique(&mut contact.emails, &c.case.email);
        push_unique(&mut contact.phones, &c.case.phone);
        push_unique(&mut contact.addresses, &c.case.address);
    }
    // Messages addressed to the person: e-mails to one of their addresses.
    type MsgRow = (
        i64,
        String,
        String,
        Option<String>,
        i64,
        Option<i64>,
        String,
    );
    let rows: Vec<MsgRow> = if contact.emails.is_empty() {
        Vec::new()
    } else {
        with_pool!(store, pool => {
            sqlx::query_as(
                "SELECT id, kind, status, folio, created_at, sent_at, payload FROM outbox \
                 WHERE kind = 'email' ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        })
    };
    let mut messages = Vec::new();
    for (id, kind, status, folio, created, sent, payload) in rows {
        let payload: serde_json::Value =
            serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
        let addressed = payload["to"]
            .as_str()
            .is_some_and(|t| contact.emails.iter().any(|e| t.eq_ignore_ascii_case(e)));
        if addressed {
            messages.push(SubjectMessage {
                id,
                kind,
                status,
                folio,
                created_at: millis(created),
                sent_at: sent.map(millis),
                payload,
            });
        }
    }
    messages.sort_by_key(|m| m.id);
    let mut chat_sessions = Vec::new();
    for sid in sessions {
        type Row = (i64, String, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = with_pool!(store, pool => {
            sqlx::query_as(
                "SELECT occurred_at, kind, button_id, intent, text_masked FROM interactions \
                 WHERE session_id = $1 ORDER BY occurred_at, id",
            )
            .bind(&sid)
            .fetch_all(pool)
            .await?
        });
        chat_sessions.push(SubjectChat {
            session_id: sid,
            interactions: rows
                .into_iter()
                .map(|(at, kind, button, intent, text)| SubjectInteraction {
                    at: millis(at),
                    kind,
                    button,
                    intent,
                    text,
                })
                .collect(),
        });
    }
    Ok(DataSubject {
        rut: rut.to_string(),
        generated_at: Utc::now(),
        blocked: blocked(store, rut).await?,
        contact,
        cases,
        messages,
        chat_sessions,
    })
}

/// Corrects the person's contact data on each of their cases not yet anonymised; each case
/// gets an internal `rectificar` event saying which fields changed, and the audit log a row.
/// Returns how many cases changed.
pub async fn rectify(
    store: &Store,
    actor: &Actor,
    rut: &str,
    r: &Rectification,
) -> Result<usize, OirsError> {
    let mut fields: Vec<(&str, Option<String>)> = Vec::new();
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).map(String::from);
    // Lengths are counted as sent (the document's `maxLength`); the minimum once trimmed.
    let too_long =
        |s: &Option<String>, max: usize| s.as_ref().is_some_and(|s| s.chars().count() > max);
    for (field, max) in [("name", 200), ("email", 254), ("address", 300)] {
        let value = match field {
            "name" => &r.name,
            "email" => &r.email,
            _ => &r.address,
        };
        if too_long(value, max) {
            return Err(OirsError::Invalid(
                field,
                format!("at most {max} characters"),
            ));
        }
    }
    if let Some(n) = clean(&r.name) {
        if n.chars().count() < 2 {
            return Err(OirsError::Invalid(
                "name",
                "between 2 and 200 characters".into(),
            ));
        }
        fields.push(("name", Some(n)));
    }
    if let Some(e) = clean(&r.email) {
        let v = if e.is_empty() {
            None
        } else {
            Some(
                crate::oirs::domain::Email::parse(&e)
                    .ok_or_else(|| OirsError::Invalid("email", "not an e-mail address".into()))?
                    .as_str()
                    .to_string(),
            )
        };
        fields.push(("email", v));
    }
    if let Some(p) = clean(&r.phone) {
        let v = if p.is_empty() {
            None
        } else {
            Some(
                crate::oirs::domain::Phone::parse(&p)
                    .ok_or_else(|| {
                        OirsError::Invalid("phone", "not a Chilean phone number".into())
                    })?
                    .as_str()
                    .to_string(),
            )
        };
        fields.push(("phone", v));
    }
    if let Some(a) = clean(&r.address) {
        if a.chars().count() > 300 {
            return Err(OirsError::Invalid(
                "address",
                "at most 300 characters".into(),
            ));
        }
        fields.push(("address", (!a.is_empty()).then_some(a)));
    }
    if fields.is_empty() {
        return Err(OirsError::Invalid(
            "name",
            "nothing to rectify: give name, email, phone or address".into(),
        ));
    }
    let changed: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    let note = format!("Datos de contacto rectificados: {}", changed.join(", "));
    let now = now_millis();
    let n = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let ids: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, folio, status FROM cases WHERE rut = $1 AND anonymized_at IS NULL ORDER BY id",
        )
        .bind(rut)
        .fetch_all(&mut *tx)
        .await?;
        for (id, folio, status) in &ids {
            for (field, value) in &fields {
                // The column names come from the fixed list above, never from input.
                let sql = format!("UPDATE cases SET {field} = $1, updated_at = $2, version = version + 1 WHERE id = $3");
                if *field == "name" {
                    sqlx::query(&sql).bind(value.clone().unwrap_or_default()).bind(now).bind(id)
                        .execute(&mut *tx).await?;
                } else {
                    sqlx::query(&sql).bind(value).bind(now).bind(id).execute(&mut *tx).await?;
                }
            }
            sqlx::query(
                "INSERT INTO case_events (case_id, at, kind, actor, from_status, to_status, department_id, note, public) \
                 VALUES ($1, $2, 'rectificar', $3, $4, $4, NULL, $5, FALSE)",
            )
            .bind(id).bind(now).bind(&actor.username).bind(status).bind(&note)
            .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, 'rectificar_datos', $4, $5)")
                .bind(now).bind(actor.user_id).bind(&actor.username).bind(folio).bind(&note)
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        ids.len()
    });
    Ok(n)
}

/// Folio, RUT, e-mail, name and chat session of a case.
type PersonRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// Removes the person from the given cases (which must be closed): name, RUT, e-mail, phone,
/// address, description, answer and event notes; their outbox messages' payloads; their chat
/// text; the audit rows that named them; replays of their filings. Folio, type, topic,
/// department, dates and status stay, so every statistic stays true. Returns how many cases.
async fn anonymize_cases(store: &Store, ids: &[i64]) -> Result<usize, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let now = now_millis();
    let n = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let mut n = 0;
        for id in ids {
            let row: Option<PersonRow> = sqlx::query_as(
                "SELECT folio, rut, email, name, chat_session_id FROM cases \
                 WHERE id = $1 AND status = 'cerrado' AND anonymized_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((folio, rut, email, name, session)) = row else { continue };
            sqlx::query(
                "UPDATE cases SET name = '', rut = NULL, email = NULL, phone = NULL, address = NULL, latitude = NULL, longitude = NULL, \
                 description = '', answer = NULL, chat_session_id = NULL, anonymized_at = $1, version = version + 1 WHERE id = $2",
            )
            .bind(now).bind(id).execute(&mut *tx).await?;
            sqlx::query("UPDATE case_events SET note = NULL WHERE case_id = $1")
                .bind(id).execute(&mut *tx).await?;
            // The score stays for the statistics; the resident's own words go.
            sqlx::query("UPDATE case_satisfaction SET comment = NULL WHERE case_id = $1")
                .bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM attachments WHERE case_id = $1")
                .bind(id).execute(&mut *tx).await?;
            let like = format!("%{folio}%");
            // Its messages, and any e-mail to the person's address.
            let to = email.as_ref().map(|e| format!("%\"to\":\"{e}\"%"));
            sqlx::query(
                "UPDATE outbox SET payload = $3, last_error = NULL, \
                 status = CASE WHEN status IN ('sent', 'dead', 'skipped') THEN status ELSE 'skipped' END \
                 WHERE folio = $1 OR payload LIKE $2 OR (kind = 'email' AND payload LIKE $4)",
            )
            .bind(&folio).bind(&like).bind(ANONYMIZED_PAYLOAD).bind(&to).execute(&mut *tx).await?;
            // Audit rows keep who did what to which folio, not the person's identifiers.
            let mut marks: Vec<String> = Vec::new();
            marks.extend(rut.clone());
            marks.extend(email.clone());
            if name.chars().count() >= 4 {
                marks.push(name.clone());
            }
            for m in &marks {
                sqlx::query("UPDATE audit_log SET detail = '[anonimizado]' WHERE detail LIKE $1")
                    .bind(format!("%{m}%")).execute(&mut *tx).await?;
            }
            if let Some(s) = &session {
                sqlx::query("UPDATE interactions SET text_masked = NULL WHERE session_id = $1")
                    .bind(s).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM chat_sessions WHERE id = $1").bind(s).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM idempotency_keys WHERE response LIKE $1")
                .bind(&like).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO case_events (case_id, at, kind, actor, from_status, to_status, department_id, note, public) \
                 VALUES ($1, $2, 'anonimizar', 'sistema', 'cerrado', 'cerrado', NULL, NULL, FALSE)",
            )
            .bind(id).bind(now).execute(&mut *tx).await?;
            n += 1;
        }
        tx.commit().await?;
        n
    });
    Ok(n)
}

/// Anonymises the person's closed cases (their open ones still need them). Audited with the
/// folios, never the RUT.
pub async fn anonymize(store: &Store, actor: &Actor, rut: &str) -> Result<usize, StoreError> {
    let folios: Vec<(i64, String)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, folio FROM cases WHERE rut = $1 AND status = 'cerrado' \
             AND anonymized_at IS NULL ORDER BY id",
        )
        .bind(rut)
        .fetch_all(pool)
        .await?
    });
    let n = anonymize_cases(store, &folios.iter().map(|f| f.0).collect::<Vec<_>>()).await?;
    for (_, folio) in &folios {
        audit(
            store,
            actor,
            "anonimizar",
            folio,
            "anonimización a pedido del titular",
        )
        .await?;
    }
    Ok(n)
}

/// The retention job: anonymises every closed case whose closing is older than `keep_days`.
pub async fn anonymize_expired(store: &Store, keep_days: i64) -> Result<usize, StoreError> {
    let cutoff = now_millis() - keep_days * 86_400_000;
    let rows: Vec<(i64,)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id FROM cases WHERE status = 'cerrado' AND anonymized_at IS NULL \
             AND closed_at IS NOT NULL AND closed_at < $1 ORDER BY id",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?
    });
    anonymize_cases(store, &rows.into_iter().map(|r| r.0).collect::<Vec<_>>()).await
}

/// Flags the person: while the flag stands no e-mail goes to them and their cases' webhooks
/// leave their free text behind; e-mails to them still waiting are skipped at once.
pub async fn block(
    store: &Store,
    actor: &Actor,
    rut: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let subject = gather(store, rut).await?;
    let now = now_millis();
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO data_subject_blocks (rut, since, actor, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (rut) DO UPDATE SET reason = $4",
        )
        .bind(rut).bind(now).bind(&actor.username).bind(reason)
        .execute(&mut *tx).await?;
        for m in subject.messages.iter().filter(|m| m.status == "pending" || m.status == "failing") {
            sqlx::query("UPDATE outbox SET status = 'skipped', last_error = 'bloqueo del titular' WHERE id = $1 AND status IN ('pending', 'failing')")
                .bind(m.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    for c in &subject.cases {
        audit(
            store,
            actor,
            "bloquear_titular",
            &c.case.folio,
            "bloqueo de datos",
        )
        .await?;
    }
    Ok(())
}

pub async fn unblock(store: &Store, actor: &Actor, rut: &str) -> Result<bool, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query("DELETE FROM data_subject_blocks WHERE rut = $1").bind(rut).execute(pool).await?.rows_affected()
    });
    let folios: Vec<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT folio FROM cases WHERE rut = $1 ORDER BY id").bind(rut).fetch_all(pool).await?
    });
    for (folio,) in folios {
        audit(
            store,
            actor,
            "desbloquear_titular",
            &folio,
            "fin del bloqueo",
        )
        .await?;
    }
    Ok(n > 0)
}
