//! OIRS operations against the store: parameters, filing, tracking, staff events, lists and
//! reports. Each change commits with its event, audit row and outbox messages in one
//! transaction.

use chrono::{DateTime, NaiveDate, Utc};

use crate::store::StoreError;

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
            duplicate_of: r.try_get(21)?,
            clock: crate::oirs::calendar::Clock::parse(&r.try_get::<String, _>(22)?)
                .unwrap_or_default(),
            data_right: r.try_get(23)?,
            version: r.try_get(24)?,
            assignee: r.try_get(25)?,
            lat: r.try_get("latitude")?,
            long: r.try_get("longitude")?,
            public_description: r.try_get("public_description")?,
            identity_verified: r.try_get("identity_verified")?,
        }
    }};
}

pub(crate) const CASE_COLUMNS: &str =
    "id, folio, tracking_hash, case_type, topic, department_id, status, channel, \
    description, name, rut, email, phone, address, received_at, due_date, paused_since, extended, \
    alert_level, answer, answered_at, duplicate_of, clock, data_right, version, assignee, \
    latitude, longitude, public_description, identity_verified";

pub(crate) fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

pub(crate) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

mod actions;
mod filing;
mod params;
mod subjects;
mod work;

pub use actions::*;
pub use filing::*;
pub use params::*;
pub use subjects::*;
pub use work::*;
