//! Satisfaction with a case's answer: once a case is closed the resident may rate the answer
//! from 1 to 5, once, with an optional comment (invited by e-mail and on /seguimiento). A
//! score of [`ALERT_AT_MOST`] or less alerts the department that answered, through the
//! outbox. Analytics see scores and counts per department and month, never the comment: it
//! is the resident's own words, read by staff on the case page only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::domain::Status;
use super::routes::{authorize, TrackQuery};
use super::service::{CaseRecord, Channels, OirsError};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::throttle::ClientAddr;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult, PublicLimit};
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// Scores up to this one alert the department head.
pub const ALERT_AT_MOST: i32 = 2;
/// The longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Where a case stands with its survey, as the tracking answer says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Survey {
    /// Not closed yet, or closed for repeating another case (rated there).
    #[default]
    NotAvailable,
    /// Closed and not rated: the resident may rate the answer now.
    Open,
    /// Rated.
    Answered,
}

/// Whether the answer to a case can be rated: only a closed case that was answered (one
/// closed as a duplicate was answered under the other folio), and only once.
pub fn survey_state(status: Status, duplicate_of: Option<&str>, rated: bool) -> Survey {
    if rated {
        Survey::Answered
    } else if status == Status::Cerrado && duplicate_of.is_none() {
        Survey::Open
    } else {
        Survey::NotAvailable
    }
}

/// A score and comment that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    pub score: i32,
    pub comment: Option<String>,
}

impl Rating {
    /// Checks a score (1 to 5) and a comment (at most [`MAX_COMMENT_CHARS`], blank is none).
    /// The error names the field and says, in Spanish, what to do.
    pub fn parse(score: i64, comment: Option<&str>) -> Result<Self, (&'static str, String)> {
        if !(1..=5).contains(&score) {
            return Err(("score", "Elija una nota del 1 al 5.".into()));
        }
        if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
            return Err((
                "comment",
                "El comentario es demasiado largo (1.000 caracteres como máximo).".into(),
            ));
        }
        Ok(Self {
            score: score as i32,
            comment: comment
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from),
        })
    }

    pub fn alerts(&self) -> bool {
        self.score <= ALERT_AT_MOST
    }
}

/// The e-mail inviting the resident to rate the answer, sent when a case is closed. It
/// carries no tracking code: the resident gives it (or the RUT) on the page.
pub fn invitation(folio: &str, public_base_url: &str) -> (String, String) {
    (
        format!("¿Cómo evalúa la respuesta a su caso {folio}?"),
        format!(
            "Cerramos su caso {folio}. Nos ayuda mucho saber cómo evalúa la respuesta que \
             recibió: califíquela de 1 a 5 en {public_base_url}/seguimiento?folio={folio} con \
             el código de seguimiento o con su RUT. Es solo una vez y toma un minuto."
        ),
    )
}

/// The e-mail to the department when a resident rates an answer poorly. The comment stays on
/// the case page (staff only), not in e-mails.
pub fn alert(folio: &str, score: i32, public_base_url: &str) -> (String, String) {
    (
        format!("Evaluación baja del caso {folio}: {score} de 5"),
        format!(
            "El vecino o vecina calificó con {score} de 5 la respuesta al caso {folio}. \
             Revise el caso y su comentario, si dejó uno, en {public_base_url}/staff/casos/{folio}"
        ),
    )
}

/// A rating as stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Rated {
    pub score: i32,
    /// The resident's comment (personal data: staff only).
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

pub async fn rating_of(store: &Store, case_id: i64) -> Result<Option<Rated>, StoreError> {
    let row: Option<(i32, Option<String>, i64)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT score, comment, at FROM case_satisfaction WHERE case_id = $1")
            .bind(case_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|(score, comment, at)| Rated {
        score,
        comment,
        at: super::service::millis(at),
    }))
}

/// Records the rating of a closed case, with the department's alert for a low score, in one
/// transaction. A second rating (also two at the same moment) is a conflict.
pub async fn record(
    store: &Store,
    tz: Tz,
    channels: Channels,
    public_base_url: &str,
    case: &CaseRecord,
    rating: &Rating,
) -> Result<Rated, OirsError> {
    let rated = rating_of(store, case.id).await?.is_some();
    match survey_state(case.status, case.duplicate_of.as_deref(), rated) {
        Survey::Open => {}
        Survey::Answered => return Err(already_rated()),
        Survey::NotAvailable => {
            return Err(OirsError::Conflict(
                "El caso aún no está cerrado: podrá evaluar la respuesta cuando se cierre.".into(),
            ))
        }
    }
    let dept_email: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT email FROM departments WHERE id = $1")
            .bind(&case.department)
            .fetch_optional(pool)
            .await?
    });
    let dept_email = dept_email.map(|r| r.0).filter(|e| !e.is_empty());
    let alert_to = dept_email.filter(|_| rating.alerts() && channels.email);
    let now = now_millis();
    let (month, day, _, _) =
        crate::analytics::recorder::local_fields(super::service::millis(now), tz);
    let written: Result<(), StoreError> = write_pool!(store, pool => {
        async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO case_satisfaction (case_id, department_id, score, comment, at, local_month, local_date) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(case.id).bind(&case.department).bind(rating.score).bind(&rating.comment)
            .bind(now).bind(&month).bind(&day)
            .execute(&mut *tx).await?;
            if let Some(to) = &alert_to {
                let (subject, body) = alert(&case.folio, rating.score, public_base_url);
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at, folio) VALUES ('email', $1, $2, $2, $3)")
                    .bind(json!({"to": to, "subject": subject, "body": body}).to_string())
                    .bind(now)
                    .bind(&case.folio)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }.await
    });
    match written {
        Ok(()) => Ok(Rated {
            score: rating.score,
            comment: rating.comment.clone(),
            at: super::service::millis(now),
        }),
        Err(e) if e.unique_violation() => Err(already_rated()),
        Err(e) => Err(e.into()),
    }
}

fn already_rated() -> OirsError {
    OirsError::Conflict("Ya evaluó la respuesta a este caso. ¡Gracias!".into())
}

/// Scores of one department (or month) over a period.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SatisfactionGroup {
    /// Department id (by department) or `YYYY-MM` (by month).
    pub key: String,
    /// The department's name (by department) or the month.
    pub label: String,
    pub count: i64,
    /// Mean score, 1 to 5.
    pub average: f64,
    /// How many scores were of [`ALERT_AT_MOST`] or less.
    pub low: i64,
    /// The scores' sum (for averages over several groups).
    #[serde(skip)]
    pub sum: i64,
}

/// Ratings given between two local dates (inclusive), grouped by department or by month;
/// most rated first (by month: in order).
pub async fn groups(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    by_month: bool,
) -> Result<Vec<SatisfactionGroup>, StoreError> {
    let col = if by_month {
        "local_month"
    } else {
        "department_id"
    };
    let order = if by_month {
        "local_month"
    } else {
        "COUNT(*) DESC, department_id"
    };
    // Sums, not AVG: AVG's type differs between the backends.
    let sql = format!(
        "SELECT {col}, COUNT(*), SUM(score), SUM(CASE WHEN score <= {ALERT_AT_MOST} THEN 1 ELSE 0 END) \
         FROM case_satisfaction WHERE local_date >= $1 AND local_date <= $2 GROUP BY {col} ORDER BY {order}"
    );
    let rows: Vec<(String, i64, i64, i64)> = with_pool!(store, pool => {
        sqlx::query_as(&sql)
            .bind(from.format("%Y-%m-%d").to_string())
            .bind(to.format("%Y-%m-%d").to_string())
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(key, count, sum, low)| SatisfactionGroup {
            label: key.clone(),
            key,
            count,
            average: average(sum, count),
            low,
            sum,
        })
        .collect())
}

/// The mean of `count` scores summing `sum`, to two decimals.
pub fn average(sum: i64, count: i64) -> f64 {
    if count == 0 {
        0.0
    } else {
        (sum as f64 / count as f64 * 100.0).round() / 100.0
    }
}

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(Router::new().route("/api/v1/oirs/cases/{folio}/satisfaction", post(rate_answer)))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionIn {
    /// The tracking code given at filing (or give `rut`).
    #[serde(default)]
    pub code: Option<String>,
    /// Or the RUT given at filing.
    #[serde(default)]
    pub rut: Option<String>,
    /// 1 (very poor) to 5 (very good).
    #[schema(minimum = 1, maximum = 5)]
    pub score: i64,
    /// Optional, at most 1,000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SatisfactionOut {
    pub folio: String,
    pub score: i32,
    pub at: DateTime<Utc>,
}

/// Rates the answer to a closed case, once. Needs the folio plus the tracking code or the
/// RUT (a wrong one answers like an unknown folio); a score of 1 or 2 alerts the department.
#[utoipa::path(post, path = "/api/v1/oirs/cases/{folio}/satisfaction", tag = "oirs",
    params(("folio" = String, Path)), request_body = SatisfactionIn,
    responses((status = 201, body = SatisfactionOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "not closed yet, or already rated"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn rate_answer(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(folio): ApiPath<String>,
    ApiJson(input): ApiJson<SatisfactionIn>,
) -> ApiResult<(StatusCode, Json<SatisfactionOut>)> {
    let (folio, rated) = submit(&state, client, &folio, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(SatisfactionOut {
            folio,
            score: rated.score,
            at: rated.at,
        }),
    ))
}

/// Checks, authorises and records a rating: the API's and /seguimiento's one path.
pub async fn submit(
    state: &AppState,
    client: ClientAddr,
    folio: &str,
    input: &SatisfactionIn,
) -> ApiResult<(String, Rated)> {
    let rating = Rating::parse(input.score, input.comment.as_deref())
        .map_err(|(field, message)| ApiError::invalid(field, message))?;
    let given = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.trim().is_empty());
    if !given(&input.code) && !given(&input.rut) {
        return Err(ApiError::invalid(
            "code",
            "Indique el código de seguimiento o su RUT.",
        ));
    }
    let q = TrackQuery {
        code: input.code.clone(),
        rut: input.rut.clone(),
    };
    let case = authorize(state, client, folio, &q).await?;
    let rated = record(
        &state.store,
        state.tz,
        state.channels(),
        &state.config.public_base_url,
        &case,
        &rating,
    )
    .await
    .map_err(|e| match e {
        OirsError::Conflict(msg) => {
            let code = if msg.starts_with("Ya") {
                "already_rated"
            } else {
                "case_not_closed"
            };
            ApiError::conflict(code, msg)
        }
        e => e.into(),
    })?;
    if rating.alerts() {
        state.outbox_wake.notify_one();
    }
    Ok((case.folio, rated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_answered_case_can_be_rated_and_once() {
        use Status::*;
        for s in [
            Recibido,
            Derivado,
            EnProceso,
            PendienteInformacion,
            Respondido,
        ] {
            assert_eq!(survey_state(s, None, false), Survey::NotAvailable, "{s:?}");
        }
        assert_eq!(survey_state(Cerrado, None, false), Survey::Open);
        assert_eq!(survey_state(Cerrado, None, true), Survey::Answered);
        assert_eq!(
            survey_state(Cerrado, Some("OIRS-2026-000001"), false),
            Survey::NotAvailable
        );
    }

    #[test]
    fn scores_from_one_to_five_and_short_comments() {
        assert_eq!(Rating::parse(0, None).expect_err("refused").0, "score");
        assert_eq!(Rating::parse(6, None).expect_err("refused").0, "score");
        assert_eq!(Rating::parse(-1, None).expect_err("refused").0, "score");
        let long = "a".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(
            Rating::parse(3, Some(&long)).expect_err("refused").0,
            "comment"
        );
        let r = Rating::parse(5, Some("  ")).expect("valid");
        assert_eq!(r.comment, None, "a blank comment is none");
        assert!(!r.alerts());
        assert!(Rating::parse(2, None).expect("valid").alerts());
        assert!(Rating::parse(1, Some("Nadie vino"))
            .expect("valid")
            .alerts());
        assert!(!Rating::parse(3, None).expect("valid").alerts());
    }

    #[test]
    fn averages_to_two_decimals() {
        assert_eq!(average(0, 0), 0.0);
        assert_eq!(average(7, 3), 2.33);
        assert_eq!(average(10, 2), 5.0);
    }

    #[test]
    fn e_mails_link_absolutely_and_carry_no_code_or_comment() {
        let (subject, body) = invitation("OIRS-2026-000007", "https://oirs.example.cl");
        assert!(subject.contains("OIRS-2026-000007"));
        assert!(body.contains("https://oirs.example.cl/seguimiento?folio=OIRS-2026-000007"));
        let (subject, body) = alert("OIRS-2026-000007", 1, "https://oirs.example.cl");
        assert!(subject.contains("1 de 5"));
        assert!(body.contains("https://oirs.example.cl/staff/casos/OIRS-2026-000007"));
    }
}
