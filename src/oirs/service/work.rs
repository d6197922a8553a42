//! Staff work on cases: events and the status machine, audit, lists, the pending report,
//! deadline alerts.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::*;
use crate::oirs::calendar::{Clock, DiasHabiles};
use crate::oirs::domain::{EventKind, Status};
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

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
            Role::Analyst | Role::Support => false,
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
    /// Asignar: the username of an active staff member of the case's department.
    #[serde(default)]
    pub assignee: Option<String>,
}

pub async fn audit(
    store: &Store,
    actor: &Actor,
    action: &str,
    folio: &str,
    detail: &str,
) -> Result<(), StoreError> {
    write_pool!(store, pool => {
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
    /// Only cases assigned to this username; `me` for the user asking.
    pub assignee: Option<String>,
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
         AND ($9 IS NULL OR assignee = $9) ORDER BY due_date, id LIMIT $8"
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
            .bind(&f.assignee)
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
        // Compare-and-set on everything the level was computed from: when several instances
        // run this job at once, one of them moves the level and queues the e-mail, the others
        // change nothing; a case answered or extended meanwhile is judged again next time.
        write_pool!(store, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE cases SET alert_level = $1 \
                 WHERE id = $2 AND alert_level = $3 AND status = $4 AND due_date = $5",
            )
            .bind(new)
            .bind(id)
            .bind(&level)
            .bind(&status)
            .bind(&due)
            .execute(&mut *tx)
            .await?
            .rows_affected();
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
