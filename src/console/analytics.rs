//! Console analytics for analysts and admins: interactions by hour, weekday, day, month and
//! menu button over a date range (charts plus the numbers as tables), and the monthly report.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{Console, PageResult};
use crate::analytics::aggregate::{self, Group, GroupBy};
use crate::analytics::render;
use crate::analytics::report::pct;
use crate::app::AppState;
use crate::http::{ApiError, ApiQuery};
use crate::staff::auth::Role;

const ROLES: &[Role] = &[Role::Analyst, Role::Admin];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/analitica", get(page))
        .route("/staff/analitica/informe", get(report))
}

#[derive(Deserialize)]
struct RangeQuery {
    desde: Option<String>,
    hasta: Option<String>,
}

fn day(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "Escriba la fecha como 2026-04-20.")),
    }
}

fn rows(groups: &[Group], label: &dyn Fn(&str) -> String) -> Vec<Value> {
    groups
        .iter()
        .map(|g| {
            context! {
                label => label(&g.key),
                count => g.count,
                share => pct(g.share),
                children => rows(&g.children, label),
            }
        })
        .collect()
}

async fn page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> PageResult {
    c.require(ROLES)?;
    let to = day("hasta", &q.hasta)?.unwrap_or_else(|| state.today());
    let from = day("desde", &q.desde)?.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(ApiError::invalid("desde", "La fecha inicial es posterior a la final.").into());
    }
    if (to - from).num_days() > 366 * 3 {
        return Err(ApiError::invalid("desde", "El rango puede cubrir hasta tres años.").into());
    }
    let engine = state.chat.engine();
    let buttons: Vec<String> = engine.catalog.botonera.buttons.keys().cloned().collect();
    let cells = aggregate::cube(&state.store, from, to).await?;
    // The cube holds interactions only (messages and clicks), as the monthly report sums it.
    let total: i64 = cells.iter().map(|c| c.count).sum();
    let button_label = |id: &str| {
        engine
            .catalog
            .botonera
            .get(id)
            .map(|b| b.label.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let month_label = |k: &str| render::month_label(k);
    let plain = |k: &str| k.to_string();
    // "miercoles" is a key; people read "miércoles". Days read as 20-04.
    let weekday_label = |k: &str| {
        crate::analytics::recorder::WEEKDAYS
            .iter()
            .position(|w| *w == k)
            .map(|i| crate::analytics::report::WEEKDAY_NAMES[i].to_string())
            .unwrap_or_else(|| k.to_string())
    };
    let day_label = |k: &str| {
        NaiveDate::parse_from_str(k, "%Y-%m-%d")
            .map(|d| d.format("%d-%m").to_string())
            .unwrap_or_else(|_| k.to_string())
    };
    let mut charts = Vec::new();
    for (by, title, label) in [
        (
            GroupBy::Hour,
            "Interacciones por hora",
            &plain as &dyn Fn(&str) -> String,
        ),
        (
            GroupBy::Weekday,
            "Interacciones por día de la semana",
            &weekday_label,
        ),
        (GroupBy::Day, "Interacciones por día", &day_label),
        (GroupBy::Month, "Interacciones por mes", &month_label),
    ] {
        let groups = aggregate::groups_from_cube(&cells, by, &buttons);
        let bars: Vec<(String, i64)> = groups.iter().map(|g| (label(&g.key), g.count)).collect();
        charts.push(context! {
            title => title,
            svg => Value::from_safe_string(render::bar_chart(title, &bars)),
            rows => rows(&groups, label),
        });
    }
    let by_button = aggregate::groups_from_cube(&cells, GroupBy::Button, &buttons);
    let bars: Vec<(String, i64, f64)> = by_button
        .iter()
        .map(|g| (button_label(&g.key), g.count, g.share))
        .collect();
    let title = "Botonera: botones del menú inicial";
    let buttons_chart = context! {
        title => title,
        svg => Value::from_safe_string(render::hbar_chart(title, &bars)),
        rows => rows(&by_button, &button_label),
    };
    // Residents' verdicts: scores by unit and the chat answers most often unhelpful.
    let satisfaction =
        crate::analytics::routes::satisfaction_summary(&state.store, from, to).await?;
    let decimal = |v: f64| format!("{v:.2}").replace('.', ",");
    let satisfaction_rows: Vec<Value> = satisfaction
        .groups
        .iter()
        .map(|g| context! { name => g.department_name, count => g.count, average => decimal(g.average), low => g.low })
        .collect();
    let titles = engine.catalog.intent_titles();
    let mut unhelpful = crate::chat::feedback::by_intent(&state.store, from, to, |i| {
        titles
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.replace('_', " "))
    })
    .await?;
    unhelpful.retain(|f| f.unhelpful > 0);
    unhelpful.truncate(10);
    let unhelpful_rows: Vec<Value> = unhelpful
        .iter()
        .map(|f| context! { title => f.title, count => f.unhelpful, rated => f.useful + f.unhelpful, share => crate::analytics::report::pct(f.share_unhelpful) })
        .collect();
    let month = to.format("%Y-%m").to_string();
    Ok(c.page(
        &state,
        "analytics.html",
        "Analítica",
        context! {
            desde => from.to_string(),
            hasta => to.to_string(),
            total => total,
            charts => charts,
            buttons => buttons_chart,
            month => month,
            satisfaction_count => satisfaction.count,
            satisfaction_average => decimal(satisfaction.average),
            satisfaction => satisfaction_rows,
            unhelpful => unhelpful_rows,
        },
    ))
}

#[derive(Deserialize)]
struct ReportQuery {
    mes: Option<String>,
    formato: Option<String>,
}

/// Sends the browser to the monthly report of the API (same session cookie).
async fn report(c: Console, ApiQuery(q): ApiQuery<ReportQuery>) -> PageResult {
    c.require(ROLES)?;
    let mes = q.mes.unwrap_or_default();
    let ok = mes.len() == 7 && crate::analytics::report::month_bounds(&mes).is_some();
    if !ok {
        return Err(ApiError::invalid("mes", "Elija un mes como 2026-04.").into());
    }
    let target = match q.formato.as_deref() {
        Some("csv") => "format=csv",
        Some("excel") => "format=csv&excel=true",
        Some("json") => "format=json",
        _ => "format=html",
    };
    Ok(Redirect::to(&format!("/api/v1/reports/monthly/{mes}?{target}")).into_response())
}
