//! Staff work on cases: events and the status machine, audit, lists, the pending report,
//! deadline alerts, and the counters that slow down guessing.

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::*;
use crate::oirs::calendar::{Clock, DiasHabiles};
use crate::oirs::domain::{transition, EventKind, Status};
use crate::store::{now_millis, Store, StoreError};
use crate::with_pool;

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
    /// Cerrar: the folio of the case this one repeats (closes it from any open status; the
    /// resident is told where their request continues).
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// Corregir_tema: the right topic.
    #[serde(default)]
    pub topic: Option<String>,
}

/// Applies a staff event with the status machine, pause/extension rules, audit and outbox.
#[allow(clippy::too_many_arguments)]
pub async fn apply_event(
    store: &Store,
    tz: Tz,
    calendar: &DiasHabiles,
    channels: Channels,
    topics: &[&str],
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
    let duplicate_of = match (ev.kind, ev.duplicate_of.as_deref().map(str::trim)) {
        (EventKind::Cerrar, Some(d)) if !d.is_empty() => {
            let other = crate::oirs::domain::Folio::parse(d)
                .map(|f| f.to_string())
                .ok_or_else(|| {
                    OirsError::Invalid("duplicate_of", format!("{d:?} is not a folio"))
                })?;
            if other == case.folio {
                return Err(OirsError::Invalid(
                    "duplicate_of",
                    "a case cannot repeat itself".into(),
                ));
            }
            if find_case(store, &other).await?.is_none() {
                return Err(OirsError::Invalid(
                    "duplicate_of",
                    format!("no case has the folio {other}"),
                ));
            }
            Some(other)
        }
        _ => None,
    };
    let new_topic = match ev.kind {
        EventKind::CorregirTema => {
            let t = ev.topic.as_deref().map(str::trim).unwrap_or("");
            if !topics.contains(&t) {
                return Err(OirsError::Invalid(
                    "topic",
                    format!("{t:?} is not a topic a case can be about"),
                ));
            }
            if t == case.topic {
                return Err(OirsError::Conflict(
                    "the case already has that topic".into(),
                ));
            }
            Some(t.to_string())
        }
        _ => None,
    };
    let allowed = if duplicate_of.is_some() {
        crate::oirs::domain::close_as_duplicate(case.status)
    } else {
        transition(case.status, ev.kind)
    };
    let to = allowed.ok_or_else(|| {
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
            // Days (on the case's clock) spent waiting for the resident do not count against
            // the deadline.
            if let Some(since) = paused_since.take() {
                let waited = calendar.elapsed(case.clock, since, today).max(0) as u32;
                due = calendar.extend(case.clock, due, waited);
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
            due = calendar.extend(case.clock, due, days as u32);
            extended = true;
        }
        _ => {}
    }
    let now = now_millis();
    let public = !matches!(ev.kind, EventKind::Comentar);
    let note = match ev.kind {
        EventKind::Derivar => Some(format!("Derivado a {department}: {}", text.unwrap_or(""))),
        EventKind::Cerrar if duplicate_of.is_some() => Some(format!(
            "Cerrado por repetir el caso {}, donde continúa la atención",
            duplicate_of.as_deref().unwrap_or("")
        )),
        EventKind::CorregirTema => Some(format!(
            "Tema corregido: {} → {}",
            case.topic,
            new_topic.as_deref().unwrap_or("")
        )),
        EventKind::Prorrogar => Some(format!("Plazo prorrogado hasta {}", due.format("%d-%m-%Y"))),
        _ => text.map(String::from),
    };
    let answer = (ev.kind == EventKind::Responder).then(|| text.unwrap_or("").to_string());
    let dept_email: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT email FROM departments WHERE id = $1").bind(&department).fetch_optional(pool).await?
    });
    let mut outbox: Vec<serde_json::Value> = Vec::new();
    let wants = |k: &str| channels.wants(k);
    // A blocked person's data does not leave the service (Ley 21.719, bloqueo).
    let blocked = match &case.rut {
        Some(rut) => super::blocked(store, rut).await?.is_some(),
        None => false,
    };
    if ev.kind == EventKind::Derivar {
        outbox.push(json!({"kind": "webhook", "payload": {
            "event": "derivacion", "folio": case.folio, "type": case.case_type, "topic": case.topic,
            "department": department, "description": if blocked { "" } else { case.description.as_str() },
            "blocked": blocked,
            "received_at": case.received_at.to_rfc3339(), "due_date": due.format("%Y-%m-%d").to_string(),
        }}));
        if let Some((email,)) = dept_email.filter(|(e,)| !e.is_empty()) {
            outbox.push(json!({"kind": "email", "payload": {
                "to": email, "subject": format!("Caso derivado a su unidad: {}", case.folio),
                "body": format!("Se derivó a su unidad el caso {}. Motivo: {}", case.folio, text.unwrap_or("")),
            }}));
        }
    }
    if let Some(email) = case.email.as_ref().filter(|_| !blocked) {
        let resident_mail = match ev.kind {
            EventKind::Responder => Some((format!("Respuesta a su caso {}", case.folio), format!(
                "Estimado(a) {}:\n\n{}\n\nPuede revisar su caso en /seguimiento?folio={}.\n\nOIRS Municipal",
                case.name, text.unwrap_or(""), case.folio))),
            EventKind::PedirInformacion => Some((format!("Necesitamos información sobre su caso {}", case.folio), format!(
                "Estimado(a) {}:\n\nPara continuar con su caso {} necesitamos: {}\n\nOIRS Municipal",
                case.name, case.folio, text.unwrap_or("")))),
            EventKind::Cerrar if duplicate_of.is_some() => Some((format!("Su caso {} continúa en otro folio", case.folio), format!(
                "Estimado(a) {}:\n\nSu caso {} repite lo que ya pidió en el caso {}, donde seguimos atendiéndolo; por eso cerramos {}.\n\
                 Puede seguir el caso {} en /seguimiento.\n\nOIRS Municipal",
                case.name, case.folio, duplicate_of.as_deref().unwrap_or(""), case.folio, duplicate_of.as_deref().unwrap_or("")))),
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
                 duplicate_of = COALESCE($10, duplicate_of), topic = COALESCE($11, topic), \
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
            .bind(&duplicate_of)
            .bind(&new_topic)
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
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at, folio) VALUES ($1, $2, $3, $3, $4)")
                    .bind(m["kind"].as_str().unwrap_or("email"))
                    .bind(m["payload"].to_string())
                    .bind(now)
                    .bind(&case.folio)
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
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    #[param(value_type = Option<crate::oirs::domain::Status>)]
    #[schema(value_type = Option<crate::oirs::domain::Status>)]
    pub status: Option<String>,
    pub department: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub case_type: Option<String>,
    pub overdue: Option<bool>,
    pub due_before: Option<NaiveDate>,
    /// `alerta`, `vencido` or `none`.
    #[param(pattern = "^(alerta|vencido|none)$")]
    #[schema(pattern = "^(alerta|vencido|none)$")]
    pub alert: Option<String>,
    /// Only open cases (not answered, not closed).
    pub open: Option<bool>,
    /// At most this many cases (default 500; values outside 1–5,000 are clamped).
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
            .bind(overdue || f.open.unwrap_or(false))
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

/// The inbox's counters for one department (or all): new (not started), in progress
/// (including waiting for the resident), near the deadline and overdue.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct InboxCounts {
    pub nuevos: i64,
    pub en_proceso: i64,
    pub por_vencer: i64,
    pub vencidos: i64,
}

pub async fn inbox_counts(
    store: &Store,
    department: Option<&str>,
) -> Result<InboxCounts, StoreError> {
    let row: (i64, i64, i64, i64) = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT \
             COALESCE(SUM(CASE WHEN status IN ('recibido', 'derivado') THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status IN ('en_proceso', 'pendiente_informacion') THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN alert_level = 'alerta' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN alert_level = 'vencido' THEN 1 ELSE 0 END), 0) \
             FROM cases WHERE status NOT IN ('respondido', 'cerrado') AND ($1 IS NULL OR department_id = $1)",
        )
        .bind(department)
        .fetch_one(pool)
        .await?
    });
    Ok(InboxCounts {
        nuevos: row.0,
        en_proceso: row.1,
        por_vencer: row.2,
        vencidos: row.3,
    })
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
    clock: Clock,
    due: NaiveDate,
    alert_days: i32,
    today: NaiveDate,
    cal: &DiasHabiles,
) -> &'static str {
    if !status.is_open() || status == Status::PendienteInformacion {
        return "none";
    }
    let left = cal.left(clock, today, due);
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
    type Row = (i64, String, String, String, String, String, String, String);
    let open: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, folio, case_type, department_id, status, due_date, alert_level, clock FROM cases \
             WHERE status NOT IN ('respondido', 'cerrado')",
        )
        .fetch_all(pool)
        .await?
    });
    let mut changed = 0;
    let now = now_millis();
    for (id, folio, ct, dept, status, due, level, clock) in open {
        let alert_days = types
            .iter()
            .find(|t| t.id == ct)
            .map(|t| t.alert_days)
            .unwrap_or(5);
        let new = alert_level(
            status.parse().unwrap_or(Status::Recibido),
            Clock::parse(&clock).unwrap_or_default(),
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
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at, folio) VALUES ('email', $1, $2, $2, $3)")
                    .bind(json!({"to": email, "subject": subject, "body": body}).to_string())
                    .bind(now)
                    .bind(&folio)
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

    #[test]
    fn alert_levels() {
        let cal = DiasHabiles::default();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("d");
        let due = d("2026-12-10"); // Thursday
        assert_eq!(
            alert_level(
                Status::EnProceso,
                Clock::Habiles,
                due,
                3,
                d("2026-12-01"),
                &cal
            ),
            "none"
        );
        assert_eq!(
            alert_level(
                Status::EnProceso,
                Clock::Habiles,
                due,
                3,
                d("2026-12-07"),
                &cal
            ),
            "alerta"
        );
        assert_eq!(
            alert_level(
                Status::EnProceso,
                Clock::Habiles,
                due,
                3,
                d("2026-12-11"),
                &cal
            ),
            "vencido"
        );
        assert_eq!(
            alert_level(
                Status::PendienteInformacion,
                Clock::Habiles,
                due,
                3,
                d("2026-12-11"),
                &cal
            ),
            "none"
        );
        assert_eq!(
            alert_level(
                Status::Respondido,
                Clock::Habiles,
                due,
                3,
                d("2026-12-11"),
                &cal
            ),
            "none"
        );
    }
}
