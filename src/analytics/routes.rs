//! Analytics endpoints (analysts and admins): aggregates, the streamed export and the
//! monthly report.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use futures_util::TryStreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::aggregate::{self, Aggregate, GroupBy};
use super::recorder::WEEKDAYS;
use super::{render, report};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::staff::auth::{Role, StaffUser};
use crate::with_pool;

const ROLES: &[Role] = &[Role::Analyst, Role::Admin];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/analytics/interactions", get(interactions))
        .route("/api/v1/analytics/export", get(export))
        .route("/api/v1/analytics/satisfaction", get(satisfaction))
        .route("/api/v1/analytics/feedback", get(feedback))
        .route("/api/v1/reports/monthly/{month}", get(monthly))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First local date (YYYY-MM-DD), inclusive; default 30 days before `to`. At most ten
    /// years before `to`.
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Last local date, inclusive; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
    pub group_by: Option<GroupBy>,
    /// interactions: json (default) or csv; export: csv (default) or json.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// With csv: the variant a Chilean Excel opens in columns (`;`, decimal commas, BOM).
    #[serde(default)]
    pub excel: bool,
}

fn parse_day(field: &str, s: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    s.as_deref()
        .map(|v| {
            crate::http::contract::iso_date(v)
                .ok_or_else(|| ApiError::invalid(field, "expected a date like 2026-04-20"))
        })
        .transpose()
}

fn range(state: &AppState, q: &RangeQuery) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = parse_day("to", &q.to)?.unwrap_or_else(|| state.today());
    let from = parse_day("from", &q.from)?.unwrap_or(to - chrono::Duration::days(30));
    if from > to {
        return Err(ApiError::invalid("from", "from is after to"));
    }
    if (to - from).num_days() > 3660 {
        return Err(ApiError::invalid("from", "at most ten years at a time"));
    }
    Ok((from, to))
}

fn format_of(q: &Option<String>, allowed: &[&str]) -> Result<String, ApiError> {
    let f = q.clone().unwrap_or_else(|| allowed[0].to_string());
    if allowed.contains(&f.as_str()) {
        Ok(f)
    } else {
        Err(ApiError::invalid(
            "format",
            format!("expected one of {}", allowed.join(", ")),
        ))
    }
}

fn attachment(content_type: &'static str, name: String, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// Interactions grouped by month, day, weekday (`lunes`…`domingo`), hour (`00`…`23`) or
/// menu button (sub-options nested with their share within the parent).
#[utoipa::path(get, path = "/api/v1/analytics/interactions", tag = "analytics", params(RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the groups (JSON), or the same table as CSV with `format=csv`",
                content((Aggregate = "application/json"), (String = "text/csv"))),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn interactions(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    user.require(ROLES)?;
    let (from, to) = range(&state, &q)?;
    let format = format_of(&q.format, &["json", "csv"])?;
    let group_by = q.group_by.unwrap_or(GroupBy::Day);
    let buttons: Vec<String> = state
        .chat
        .engine()
        .catalog
        .botonera
        .buttons
        .keys()
        .cloned()
        .collect();
    let cal = state.calendar().await;
    let agg = aggregate::interactions(
        &state.store,
        from,
        to,
        group_by,
        &buttons,
        state.business_hours(),
        &cal,
    )
    .await?;
    if format == "json" {
        return Ok(Json(agg).into_response());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let rows = || -> Result<Vec<u8>, csv::Error> {
        w.write_record(["key", "parent", "count", "share", "sessions"])?;
        for g in &agg.groups {
            w.write_record([
                &g.key,
                "",
                &g.count.to_string(),
                &format!("{:.6}", g.share),
                &g.sessions.to_string(),
            ])?;
            for c in &g.children {
                w.write_record([
                    &c.key,
                    &g.key,
                    &c.count.to_string(),
                    &format!("{:.6}", c.share),
                    &c.sessions.to_string(),
                ])?;
            }
        }
        w.flush()?;
        Ok(w.into_inner().map_err(|e| e.into_error())?)
    };
    let mut bytes = rows().map_err(ApiError::internal)?;
    if q.excel {
        bytes = crate::http::excel_csv(&bytes, true).map_err(ApiError::internal)?;
    }
    Ok(attachment(
        "text/csv; charset=utf-8",
        format!("interacciones-{from}-{to}.csv"),
        bytes,
    ))
}

const EXPORT_SQL: &str =
    "SELECT occurred_at, local_date, weekday, hour, kind, button_id, parent_id, intent, topic, \
     confidence, fallback FROM interactions WHERE local_date BETWEEN $1 AND $2 ORDER BY id";

/// One row per interaction, without personal data (no text, no session id), streamed so a
/// year of data never sits in memory.
#[utoipa::path(get, path = "/api/v1/analytics/export", tag = "analytics", params(RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "CSV (default) or, with `format=json`, a JSON array",
                content((String = "text/csv"), (Vec<serde_json::Value> = "application/json"))),
              (status = 403, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    user.require(ROLES)?;
    let (from, to) = range(&state, &q)?;
    let format = format_of(&q.format, &["csv", "json"])?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let store = state.store.clone();
    let json = format == "json";
    let excel = q.excel && !json;
    tokio::spawn(async move {
        let result: Result<(), sqlx::Error> = async {
            const HEAD: &str = "occurred_at,local_date,weekday,hour,kind,button_id,parent_id,intent,topic,confidence,fallback\n";
            let head = if json {
                Bytes::from_static(b"[")
            } else if excel {
                Bytes::from(crate::http::excel_csv(HEAD.as_bytes(), true).unwrap_or_default())
            } else {
                Bytes::from_static(HEAD.as_bytes())
            };
            if tx.send(head).await.is_err() {
                return Ok(());
            }
            let mut first = true;
            with_pool!(&store, pool => {
                use sqlx::Row as _;
                let mut rows = sqlx::query(EXPORT_SQL).bind(from.to_string()).bind(to.to_string()).fetch(pool);
                while let Some(r) = rows.try_next().await? {
                    let at: i64 = r.try_get(0)?;
                    let weekday: i16 = r.try_get(2)?;
                    let rec = ExportRow {
                        occurred_at: chrono::DateTime::from_timestamp_millis(at).unwrap_or_default().to_rfc3339(),
                        local_date: r.try_get(1)?,
                        weekday: WEEKDAYS.get(weekday as usize).copied().unwrap_or("").to_string(),
                        hour: format!("{:02}", r.try_get::<i16, _>(3)?),
                        kind: r.try_get(4)?,
                        button_id: r.try_get(5)?,
                        parent_id: r.try_get(6)?,
                        intent: r.try_get(7)?,
                        topic: r.try_get(8)?,
                        confidence: r.try_get(9)?,
                        fallback: r.try_get(10)?,
                    };
                    let line = if json {
                        let mut s = if first { String::new() } else { ",".to_string() };
                        s.push_str(&serde_json::to_string(&rec).unwrap_or_default());
                        s
                    } else if excel {
                        String::from_utf8(crate::http::excel_csv(rec.csv_line().as_bytes(), false).unwrap_or_default()).unwrap_or_default()
                    } else {
                        rec.csv_line()
                    };
                    first = false;
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return Ok(());
                    }
                }
            });
            if json {
                let _ = tx.send(Bytes::from_static(b"]")).await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "export stream failed");
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let (ct, ext) = if json {
        ("application/json", "json")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    Ok(attachment(
        ct,
        format!("interacciones-{from}-{to}.{ext}"),
        Body::from_stream(stream),
    ))
}

#[derive(serde::Serialize)]
struct ExportRow {
    occurred_at: String,
    local_date: String,
    weekday: String,
    hour: String,
    kind: String,
    button_id: Option<String>,
    parent_id: Option<String>,
    intent: Option<String>,
    topic: Option<String>,
    confidence: Option<f64>,
    fallback: bool,
}

impl ExportRow {
    fn csv_line(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let _ = w.write_record([
            self.occurred_at.as_str(),
            &self.local_date,
            &self.weekday,
            &self.hour,
            &self.kind,
            self.button_id.as_deref().unwrap_or(""),
            self.parent_id.as_deref().unwrap_or(""),
            self.intent.as_deref().unwrap_or(""),
            self.topic.as_deref().unwrap_or(""),
            &self
                .confidence
                .map(|c| format!("{c:.3}"))
                .unwrap_or_default(),
            if self.fallback { "true" } else { "false" },
        ]);
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// html (default), csv or json.
    #[param(pattern = "^(html|csv|json)$")]
    pub format: Option<String>,
    /// With csv: the variant a Chilean Excel opens in columns (`;`, decimal commas, BOM).
    #[serde(default)]
    pub excel: bool,
}

/// Builds the monthly report of `month`, as rendered by HTTP and by `ventanilla report`.
pub async fn build_report(
    state: &AppState,
    month: &str,
) -> Result<Option<report::MonthlyReport>, ApiError> {
    let engine = state.chat.engine();
    let cal = state.calendar().await;
    let input = report::ReportInput {
        store: &state.store,
        tz: state.tz,
        calendar: &cal,
        botonera: &engine.catalog.botonera,
        intent_titles: engine.catalog.intent_titles(),
        municipality: engine.catalog.profile.get("municipio").to_string(),
        hours: state.business_hours(),
        today: state.today(),
    };
    Ok(report::monthly(&input, month).await?)
}

/// Renders a report in `format` (html, csv or json): (content type, body).
pub fn render_report(
    r: &report::MonthlyReport,
    format: &str,
    tz: chrono_tz::Tz,
) -> Result<(&'static str, String), ApiError> {
    match format {
        "json" => Ok((
            "application/json",
            serde_json::to_string_pretty(r).map_err(ApiError::internal)?,
        )),
        "csv" => Ok((
            "text/csv; charset=utf-8",
            report::to_csv(r).map_err(ApiError::internal)?,
        )),
        _ => {
            let generated = chrono::Utc::now()
                .with_timezone(&tz)
                .format("%d-%m-%Y %H:%M")
                .to_string();
            Ok((
                "text/html; charset=utf-8",
                render::html(r, &generated).map_err(ApiError::internal)?,
            ))
        }
    }
}

/// The monthly report: charts, observation sentences, top intents, unanswered questions and
/// OIRS figures.
#[utoipa::path(get, path = "/api/v1/reports/monthly/{month}", tag = "analytics",
    params(("month" = String, Path, description = "YYYY-MM"), ReportQuery), security(("bearer" = [])),
    responses((status = 200, description = "HTML (default), CSV or JSON",
                content((String = "text/html"), (String = "text/csv"), (serde_json::Value = "application/json"))),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn monthly(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(month): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    user.require(ROLES)?;
    let format = format_of(&q.format, &["html", "csv", "json"])?;
    let r = build_report(&state, &month)
        .await?
        .ok_or_else(|| ApiError::invalid("month", "expected a month like 2026-04"))?;
    let (ct, body) = render_report(&r, &format, state.tz)?;
    if format == "html" {
        // The report is self-contained: inline styles only, nothing fetched.
        return Ok((
            [
                (header::CONTENT_TYPE, ct),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            body,
        )
            .into_response());
    }
    if format == "csv" && q.excel {
        let excel = crate::http::excel_csv(body.as_bytes(), true).map_err(ApiError::internal)?;
        return Ok(attachment(ct, format!("informe-{month}-excel.csv"), excel));
    }
    Ok(attachment(ct, format!("informe-{month}.{format}"), body))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatesQuery {
    /// First local date (YYYY-MM-DD), inclusive; default 30 days before `to`. At most ten
    /// years before `to`.
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Last local date, inclusive; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
}

impl DatesQuery {
    fn range(self, state: &AppState) -> Result<(NaiveDate, NaiveDate), ApiError> {
        let q = RangeQuery {
            from: self.from,
            to: self.to,
            group_by: None,
            format: None,
            excel: false,
        };
        range(state, &q)
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SatisfactionOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Ratings given in the period.
    pub count: i64,
    /// Mean score (1–5) of all of them; 0 when none.
    pub average: f64,
    /// By department, the most rated first.
    pub groups: Vec<DepartmentSatisfaction>,
    /// By month (`YYYY-MM`) in order.
    pub months: Vec<crate::oirs::satisfaction::SatisfactionGroup>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DepartmentSatisfaction {
    pub department: String,
    pub department_name: String,
    pub count: i64,
    pub average: f64,
    /// Scores of 1 or 2 (each alerted the department).
    pub low: i64,
}

/// How residents rated the answers to their closed cases (1–5), by department and by month,
/// for ratings given between `from` and `to`. Scores and counts only: comments stay on the
/// case.
#[utoipa::path(get, path = "/api/v1/analytics/satisfaction", tag = "analytics", params(DatesQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SatisfactionOut),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn satisfaction(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<DatesQuery>,
) -> ApiResult<Json<SatisfactionOut>> {
    user.require(ROLES)?;
    let (from, to) = q.range(&state)?;
    Ok(Json(satisfaction_summary(&state.store, from, to).await?))
}

/// The satisfaction figures of a period, departments by name.
pub async fn satisfaction_summary(
    store: &crate::store::Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SatisfactionOut, crate::store::StoreError> {
    use crate::oirs::satisfaction::{average, groups};
    let by_dept = groups(store, from, to, false).await?;
    let months = groups(store, from, to, true).await?;
    let names = crate::oirs::service::Names::load(store).await?;
    let count: i64 = by_dept.iter().map(|g| g.count).sum();
    let sum: i64 = by_dept.iter().map(|g| g.sum).sum();
    Ok(SatisfactionOut {
        from,
        to,
        count,
        average: average(sum, count),
        groups: by_dept
            .into_iter()
            .map(|g| DepartmentSatisfaction {
                department_name: names.department(&g.key),
                department: g.key,
                count: g.count,
                average: g.average,
                low: g.low,
            })
            .collect(),
        months,
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FeedbackOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Per intent, the most often unhelpful first.
    pub groups: Vec<crate::chat::feedback::IntentFeedback>,
}

/// "¿Te sirvió?" under the chat's answers: per intent, how many residents said it helped and
/// how many said it did not, between `from` and `to`. No text, no session.
#[utoipa::path(get, path = "/api/v1/analytics/feedback", tag = "analytics", params(DatesQuery),
    security(("bearer" = [])),
    responses((status = 200, body = FeedbackOut),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn feedback(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<DatesQuery>,
) -> ApiResult<Json<FeedbackOut>> {
    user.require(ROLES)?;
    let (from, to) = q.range(&state)?;
    let titles = state.chat.engine().catalog.intent_titles();
    let groups = crate::chat::feedback::by_intent(&state.store, from, to, |i| {
        titles
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.replace('_', " "))
    })
    .await?;
    Ok(Json(FeedbackOut { from, to, groups }))
}
