//! Parameters: case types, departments, routing rules and the holiday calendar.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::oirs::calendar::{shipped_holidays, Clock, DiasHabiles};
use crate::store::{Store, StoreError};
use crate::{with_pool, write_pool};

/// A case type and its clock: the term, the alert threshold and the extension are counted in
/// the clock's days.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CaseType {
    pub id: String,
    #[serde(rename = "label", alias = "name")]
    pub name: String,
    pub clock: Clock,
    #[serde(rename = "term_days", alias = "deadline_days")]
    pub deadline_days: i32,
    pub alert_days: i32,
    pub extension_days: i32,
    pub active: bool,
}

pub async fn case_types(store: &Store) -> Result<Vec<CaseType>, StoreError> {
    type Row = (String, String, String, i32, i32, i32, bool);
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id, name, clock, deadline_days, alert_days, extension_days, active FROM case_types ORDER BY id")
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(id, name, clock, deadline_days, alert_days, extension_days, active)| CaseType {
                id,
                name,
                clock: Clock::parse(&clock).unwrap_or_default(),
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
    write_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO case_types (id, name, deadline_days, alert_days, extension_days, active, clock) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = $2, \
             deadline_days = $3, alert_days = $4, extension_days = $5, active = $6, clock = $7",
        )
        .bind(&t.id).bind(&t.name).bind(t.deadline_days).bind(t.alert_days)
        .bind(t.extension_days).bind(t.active).bind(t.clock.as_str())
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

/// The names people read for department and case-type ids (falling back to the id, never
/// failing a page for a missing name).
#[derive(Clone, Debug, Default)]
pub struct Names {
    departments: std::collections::HashMap<String, String>,
    types: std::collections::HashMap<String, String>,
}

impl Names {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            departments: departments(store)
                .await?
                .into_iter()
                .map(|d| (d.id, d.name))
                .collect(),
            types: case_types(store)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
        })
    }

    pub fn department(&self, id: &str) -> String {
        self.departments
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    pub fn case_type(&self, id: &str) -> String {
        self.types
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

pub async fn upsert_department(store: &Store, d: &Department) -> Result<(), StoreError> {
    write_pool!(store, pool => {
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
    write_pool!(store, pool => {
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
    let n = write_pool!(store, pool => {
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
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO holidays (day, name, source) VALUES ($1, $2, $3) ON CONFLICT (day) DO UPDATE SET name = $2, source = $3")
            .bind(h.date.format("%Y-%m-%d").to_string()).bind(&h.name).bind(&h.source)
            .execute(pool).await?;
    });
    Ok(())
}

pub async fn delete_holiday(store: &Store, day: NaiveDate) -> Result<bool, StoreError> {
    let n = write_pool!(store, pool => {
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
    write_pool!(store, pool => {
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
}
