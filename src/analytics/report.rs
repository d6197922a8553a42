//! The monthly report for the mayor: the charts of the municipality's own annex (per month
//! with the previous months, per weekday, per hour, botonera total and per day), observation
//! sentences written from the data in Chilean number format, the top intents, the fallback
//! rate with the most frequent unanswered questions (masked), and OIRS figures.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::aggregate::{self, BusinessHours, Group, GroupBy};
use super::recorder::WEEKDAYS;
use crate::chat::catalog::Botonera;
use crate::oirs::calendar::{Clock, DiasHabiles};
use crate::store::{Store, StoreError};
use crate::with_pool;

/// Weekday names as written in sentences.
pub const WEEKDAY_NAMES: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];

/// "43,5%": one decimal, decimal comma (es-CL).
pub fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0).replace('.', ",")
}

/// "2.539": thousands with a dot (es-CL).
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Count {
    pub key: String,
    pub label: String,
    pub count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OirsFigures {
    pub filed: i64,
    pub by_type: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_status: Vec<Count>,
    /// Open cases past their due date at the time of the report.
    pub overdue_now: i64,
    /// Median business days from (effective) receipt to answer, for cases on the días
    /// hábiles clock answered this month.
    pub median_business_days_to_answer: Option<f64>,
    /// Median calendar days from receipt to answer, for cases on the días corridos clock
    /// (data-rights requests) answered this month.
    #[serde(default)]
    pub median_calendar_days_to_answer: Option<f64>,
    /// Cases answered this month, and how many of them by their due date (each on its clock).
    #[serde(default)]
    pub answered: i64,
    #[serde(default)]
    pub answered_on_time: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MonthlyReport {
    pub month: String,
    pub municipality: String,
    pub interactions: i64,
    pub sessions: i64,
    pub business_hours_share: f64,
    pub fallback_rate: f64,
    pub by_month: Vec<Group>,
    pub by_weekday: Vec<Group>,
    pub by_hour: Vec<Group>,
    pub by_day: Vec<Group>,
    pub buttons: Vec<Group>,
    /// Top-level button clicks per day: (date, button id, count).
    pub buttons_per_day: Vec<(String, String, i64)>,
    pub button_labels: BTreeMap<String, String>,
    pub top_intents: Vec<Count>,
    pub unanswered: Vec<Count>,
    pub observations: Vec<String>,
    pub oirs: OirsFigures,
    /// Residents' ratings of the answers to their closed cases, by department (scores only).
    #[serde(default)]
    pub satisfaction: Vec<Satisfaction>,
    /// The chat answers most often marked unhelpful ("¿Te sirvió?" → no), at most ten.
    #[serde(default)]
    pub unhelpful_answers: Vec<crate::chat::feedback::IntentFeedback>,
}

/// One department's ratings in the month.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Satisfaction {
    pub department: String,
    pub department_name: String,
    pub count: i64,
    pub average: f64,
    /// Scores of 1 or 2.
    pub low: i64,
}

/// First and last day of a `YYYY-MM` month.
pub fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let first = crate::http::contract::iso_date(&format!("{month}-01"))?;
    let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
    Some((first, last))
}

/// The observation sentences of the annex, from the data.
pub fn observations(
    by_weekday: &[Group],
    business_hours_share: f64,
    hours: BusinessHours,
    buttons: &[Group],
    labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let week_total: i64 = by_weekday.iter().map(|g| g.count).sum();
    if week_total > 0 {
        let mut days: Vec<(usize, i64)> = by_weekday
            .iter()
            .enumerate()
            .map(|(i, g)| (i, g.count))
            .collect();
        days.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (a, b) = (days[0], days[1]);
        let (first, second) = if a.0 < b.0 { (a.0, b.0) } else { (b.0, a.0) };
        out.push(format!(
            "Los días {} y {} concentraron el {} de las interacciones semanales.",
            WEEKDAY_NAMES[first],
            WEEKDAY_NAMES[second],
            pct((a.1 + b.1) as f64 / week_total as f64)
        ));
        out.push(format!(
            "Un {} de las interacciones totales se hicieron en horario hábil entre {}:00 y {}:00 horas.",
            pct(business_hours_share),
            hours.start,
            hours.end
        ));
    }
    let label = |k: &str| labels.get(k).cloned().unwrap_or_else(|| k.to_string());
    if let Some(top) = buttons.first().filter(|g| g.count > 0) {
        out.push(format!(
            "El botón {} concentró el {} de las interacciones del menú inicial.",
            label(&top.key),
            pct(top.share)
        ));
    }
    for g in buttons {
        if let Some(best) = g.children.first().filter(|c| c.count > 0) {
            out.push(format!(
                "El {} de los usuarios que ingresó al botón {} consultó por la opción {}.",
                pct(best.share),
                label(&g.key),
                label(&best.key)
            ));
        }
    }
    out
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

fn counts(rows: Vec<(String, i64)>, label: impl Fn(&str) -> String) -> Vec<Count> {
    rows.into_iter()
        .map(|(key, count)| Count {
            label: label(&key),
            key,
            count,
        })
        .collect()
}

async fn oirs_figures(
    store: &Store,
    tz: Tz,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
    cal: &DiasHabiles,
    names: &crate::oirs::service::Names,
) -> Result<OirsFigures, StoreError> {
    let start = tz
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest();
    let end = tz
        .from_local_datetime(
            &(to + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default(),
        )
        .earliest();
    let (start, end) = (
        start.map(|d| d.timestamp_millis()).unwrap_or(0),
        end.map(|d| d.timestamp_millis()).unwrap_or(i64::MAX),
    );
    let group = |col: &'static str| {
        format!("SELECT {col}, COUNT(*) FROM cases WHERE received_at >= $1 AND received_at < $2 GROUP BY {col} ORDER BY COUNT(*) DESC, {col}")
    };
    let (q_type, q_dept, q_status) = (group("case_type"), group("department_id"), group("status"));
    type Tables = (
        Vec<(String, i64)>,
        Vec<(String, i64)>,
        Vec<(String, i64)>,
        Vec<(i64, i64, String, String)>,
        (i64,),
    );
    let (by_type, by_department, by_status, answered, overdue): Tables = with_pool!(store, pool => {
        (
            sqlx::query_as(&q_type).bind(start).bind(end).fetch_all(pool).await?,
            sqlx::query_as(&q_dept).bind(start).bind(end).fetch_all(pool).await?,
            sqlx::query_as(&q_status).bind(start).bind(end).fetch_all(pool).await?,
            sqlx::query_as("SELECT received_at, answered_at, clock, due_date FROM cases WHERE answered_at >= $1 AND answered_at < $2")
                .bind(start).bind(end).fetch_all(pool).await?,
            sqlx::query_as("SELECT COUNT(*) FROM cases WHERE status NOT IN ('respondido', 'cerrado', 'pendiente_informacion') AND due_date < $1")
                .bind(today.format("%Y-%m-%d").to_string()).fetch_one(pool).await?,
        )
    });
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .date_naive()
    };
    let mut business = Vec::new();
    let mut calendar = Vec::new();
    let mut on_time = 0;
    for (r, a, clock, due) in &answered {
        let (r, a) = (local(*r), local(*a));
        match Clock::parse(clock).unwrap_or_default() {
            Clock::Habiles => business.push(cal.between(cal.effective_receipt(r), a).max(0)),
            Clock::Corridos => calendar.push((a - r).num_days().max(0)),
        }
        if chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d").is_ok_and(|d| a <= d) {
            on_time += 1;
        }
    }
    let filed = by_type.iter().map(|r| r.1).sum();
    Ok(OirsFigures {
        filed,
        by_type: counts(by_type, |k| names.case_type(k)),
        by_department: counts(by_department, |k| names.department(k)),
        by_status: counts(by_status, |k| {
            k.parse::<crate::oirs::domain::Status>()
                .map(|s| s.label().to_string())
                .unwrap_or_else(|_| k.to_string())
        }),
        overdue_now: overdue.0,
        median_business_days_to_answer: median(business),
        median_calendar_days_to_answer: median(calendar),
        answered: answered.len() as i64,
        answered_on_time: on_time,
    })
}

pub struct ReportInput<'a> {
    pub store: &'a Store,
    pub tz: Tz,
    pub calendar: &'a DiasHabiles,
    pub botonera: &'a Botonera,
    /// What an intent id is called (its title in the catalog), for the table of top intents.
    pub intent_titles: BTreeMap<String, String>,
    pub municipality: String,
    pub hours: BusinessHours,
    pub today: NaiveDate,
}

/// Builds the report of `month` (`YYYY-MM`); `None` when the month is malformed.
pub async fn monthly(
    input: &ReportInput<'_>,
    month: &str,
) -> Result<Option<MonthlyReport>, StoreError> {
    let Some((from, to)) = month_bounds(month) else {
        return Ok(None);
    };
    let store = input.store;
    let ids: Vec<String> = input.botonera.buttons.keys().cloned().collect();
    let mut labels: BTreeMap<String, String> = input
        .botonera
        .buttons
        .values()
        .map(|b| (b.id.clone(), b.label.clone()))
        .collect();
    labels.extend(
        WEEKDAYS
            .iter()
            .zip(WEEKDAY_NAMES)
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );

    // Independent reads run side by side on separate connections (WAL readers do not block).
    let history_from = from.checked_sub_months(Months::new(5)).unwrap_or(from);
    let (cells, sessions, months, intents) = tokio::try_join!(
        aggregate::cube(store, from, to),
        aggregate::sessions(store, from, to),
        aggregate::per_month(store, history_from, to),
        aggregate::intents_and_fallbacks(store, from, to, 10),
    )?;
    let buttons_per_day = aggregate::buttons_per_day(&cells);
    let (top, messages, fallbacks, unanswered) = intents;
    let total: i64 = cells.iter().map(|c| c.count).sum();
    let weekday_groups = aggregate::groups_from_cube(&cells, GroupBy::Weekday, &ids);
    let hour_groups = aggregate::groups_from_cube(&cells, GroupBy::Hour, &ids);
    let day_groups = aggregate::groups_from_cube(&cells, GroupBy::Day, &ids);
    let button_groups = aggregate::groups_from_cube(&cells, GroupBy::Button, &ids);
    let business = aggregate::business_share(&cells, input.hours, input.calendar);
    let months_total: i64 = months.iter().map(|m| m.1).sum();
    let by_month: Vec<Group> = months
        .into_iter()
        .map(|(key, count)| Group {
            key,
            count,
            share: if months_total == 0 {
                0.0
            } else {
                count as f64 / months_total as f64
            },
            sessions: 0,
            children: Vec::new(),
        })
        .collect();
    let observations = observations(
        &weekday_groups,
        business,
        input.hours,
        &button_groups,
        &labels,
    );
    let names = crate::oirs::service::Names::load(store).await?;
    let oirs = oirs_figures(
        store,
        input.tz,
        from,
        to,
        input.today,
        input.calendar,
        &names,
    )
    .await?;
    let satisfaction = crate::oirs::satisfaction::groups(store, from, to, false)
        .await?
        .into_iter()
        .map(|g| Satisfaction {
            department_name: names.department(&g.key),
            department: g.key,
            count: g.count,
            average: g.average,
            low: g.low,
        })
        .collect();
    let title = |k: &str| {
        input
            .intent_titles
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.replace('_', " "))
    };
    let mut unhelpful_answers = crate::chat::feedback::by_intent(store, from, to, title).await?;
    unhelpful_answers.retain(|f| f.unhelpful > 0);
    unhelpful_answers.truncate(10);
    Ok(Some(MonthlyReport {
        month: month.to_string(),
        municipality: input.municipality.clone(),
        interactions: total,
        sessions,
        business_hours_share: business,
        fallback_rate: if messages == 0 {
            0.0
        } else {
            fallbacks as f64 / messages as f64
        },
        by_month,
        by_weekday: weekday_groups,
        by_hour: hour_groups,
        by_day: day_groups,
        buttons: button_groups,
        buttons_per_day,
        button_labels: labels,
        top_intents: counts(top, |k| {
            input
                .intent_titles
                .get(k)
                .cloned()
                .unwrap_or_else(|| k.replace('_', " "))
        }),
        unanswered: counts(unanswered, |k| k.to_string()),
        observations,
        oirs,
        satisfaction,
        unhelpful_answers,
    }))
}

/// The report as CSV rows: section, key, label, count, share.
pub fn to_csv(r: &MonthlyReport) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "key", "label", "count", "share"])?;
    let label = |k: &str| {
        r.button_labels
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    };
    let groups =
        |section: &str, gs: &[Group], w: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
            for g in gs {
                w.write_record([
                    section,
                    &g.key,
                    &label(&g.key),
                    &g.count.to_string(),
                    &format!("{:.4}", g.share),
                ])?;
                for c in &g.children {
                    let key = format!("{}/{}", g.key, c.key);
                    w.write_record([
                        section,
                        &key,
                        &label(&c.key),
                        &c.count.to_string(),
                        &format!("{:.4}", c.share),
                    ])?;
                }
            }
            Ok(())
        };
    groups("mes", &r.by_month, &mut w)?;
    groups("dia_semana", &r.by_weekday, &mut w)?;
    groups("hora", &r.by_hour, &mut w)?;
    groups("dia", &r.by_day, &mut w)?;
    groups("botonera", &r.buttons, &mut w)?;
    for (d, b, n) in &r.buttons_per_day {
        w.write_record([
            "botonera_dia",
            &format!("{d}/{b}"),
            &label(b),
            &n.to_string(),
            "",
        ])?;
    }
    for c in &r.top_intents {
        w.write_record(["intenciones", &c.key, &c.label, &c.count.to_string(), ""])?;
    }
    for c in &r.unanswered {
        w.write_record(["sin_respuesta", "", &c.label, &c.count.to_string(), ""])?;
    }
    for (section, list) in [
        ("oirs_tipo", &r.oirs.by_type),
        ("oirs_unidad", &r.oirs.by_department),
        ("oirs_estado", &r.oirs.by_status),
    ] {
        for c in list {
            w.write_record([section, &c.key, &c.label, &c.count.to_string(), ""])?;
        }
    }
    for g in &r.satisfaction {
        w.write_record([
            "satisfaccion",
            &g.department,
            &g.department_name,
            &g.count.to_string(),
            &format!("{:.2}", g.average),
        ])?;
    }
    for f in &r.unhelpful_answers {
        w.write_record([
            "respuestas_no_utiles",
            &f.intent,
            &f.title,
            &f.unhelpful.to_string(),
            &format!("{:.4}", f.share_unhelpful),
        ])?;
    }
    for (i, o) in r.observations.iter().enumerate() {
        w.write_record(["observacion", &i.to_string(), o, "", ""])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(key: &str, count: i64, share: f64, children: Vec<Group>) -> Group {
        Group {
            key: key.into(),
            count,
            share,
            sessions: 0,
            children,
        }
    }

    #[test]
    fn chilean_number_format() {
        assert_eq!(pct(0.435), "43,5%");
        assert_eq!(pct(0.7172), "71,7%");
        assert_eq!(pct(1.0), "100,0%");
        assert_eq!(thousands(2539), "2.539");
        assert_eq!(thousands(1_000_000), "1.000.000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn sentences_like_the_annex() {
        let weekdays = [10, 25, 18, 12, 11, 2, 2]
            .iter()
            .enumerate()
            .map(|(i, c)| g(WEEKDAYS[i], *c, 0.0, vec![]))
            .collect::<Vec<_>>();
        let labels: BTreeMap<String, String> = [
            ("dir", "Direcciones, Teléfonos y Correos"),
            ("tel", "Contactos Telefónicos"),
            ("mail", "Correos"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let buttons = vec![g(
            "dir",
            53,
            0.412,
            vec![g("tel", 23, 0.434, vec![]), g("mail", 10, 0.2, vec![])],
        )];
        let o = observations(
            &weekdays,
            0.717,
            BusinessHours::default(),
            &buttons,
            &labels,
        );
        assert_eq!(
            o[0],
            "Los días martes y miércoles concentraron el 53,8% de las interacciones semanales."
        );
        assert_eq!(o[1], "Un 71,7% de las interacciones totales se hicieron en horario hábil entre 9:00 y 18:00 horas.");
        assert_eq!(o[2], "El botón Direcciones, Teléfonos y Correos concentró el 41,2% de las interacciones del menú inicial.");
        assert_eq!(
            o[3],
            "El 43,4% de los usuarios que ingresó al botón Direcciones, Teléfonos y Correos consultó por la opción Contactos Telefónicos."
        );
    }

    #[test]
    fn month_bounds_and_median() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("d");
        assert_eq!(
            month_bounds("2026-02"),
            Some((d("2026-02-01"), d("2026-02-28")))
        );
        assert_eq!(month_bounds("2028-02").map(|b| b.1), Some(d("2028-02-29")));
        assert_eq!(month_bounds("2026-13"), None);
        assert_eq!(month_bounds("2026-1"), None);
        assert_eq!(median(vec![5, 1, 3]), Some(3.0));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
