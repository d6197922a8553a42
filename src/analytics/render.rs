//! Renders the monthly report as self-contained HTML (inline SVG charts, no external assets)
//! that prints on A4.

use std::fmt::Write as _;

use minijinja::{context, Environment, Value};

use super::report::{pct, thousands, MonthlyReport};

const TEMPLATE: &str = include_str!("../../templates/monthly.html");
const MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// "abril de 2026" for "2026-04".
pub fn month_label(month: &str) -> String {
    let (y, m) = month.split_once('-').unwrap_or((month, "1"));
    let m: usize = m.parse().unwrap_or(1);
    format!("{} de {y}", MONTHS[m.clamp(1, 12) - 1])
}

/// Opens an accessible SVG of the given size, titled.
fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    )
}

/// A vertical bar chart with value labels; `bars` is (label, value).
/// At most this many labels under a bar chart's axis, so they never overlap.
const MAX_AXIS_LABELS: usize = 12;

pub fn bar_chart(title: &str, bars: &[(String, i64)]) -> String {
    let (w, h, top, bottom, left) = (640.0, 220.0, 16.0, 34.0, 8.0);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let slot = (w - 2.0 * left) / n;
    let bar = (slot * 0.7).max(1.0);
    let mut s = svg_open(w, h, title);
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#9aa9b8"/>"##,
        y = h - bottom,
        x2 = w - left
    );
    let small = bars.len() > 16;
    let label_every = bars.len().div_ceil(MAX_AXIS_LABELS).max(1);
    for (i, (label, v)) in bars.iter().enumerate() {
        let bh = (h - top - bottom) * (*v as f64) / max;
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let y = h - bottom - bh;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="#2f6fae"><title>{}: {}</title></rect>"##,
            esc(label),
            v
        );
        let cx = x + bar / 2.0;
        if *v > 0 && (!small || bars.len() <= 31) {
            let _ = write!(
                s,
                r##"<text x="{cx:.1}" y="{:.1}" font-size="{}" text-anchor="middle" fill="#1b1b1b">{}</text>"##,
                y - 3.0,
                if small { 7 } else { 10 },
                thousands(*v)
            );
        }
        // Every label when they fit; otherwise about a dozen, evenly spaced (each bar keeps its
        // label in its tooltip and in the table under the chart).
        if i % label_every == 0 {
            let _ = write!(
                s,
                r##"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#444">{}</text>"##,
                h - bottom + 13.0,
                esc(label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars for labelled categories with their shares.
pub fn hbar_chart(title: &str, bars: &[(String, i64, f64)]) -> String {
    let row = 22.0;
    let (w, label_w) = (640.0, 250.0);
    let h = row * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let mut s = svg_open(w, h, title);
    for (i, (label, v, share)) in bars.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let bw = (w - label_w - 90.0) * (*v as f64) / max;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#1b1b1b">{}</text><rect x="{label_w}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="#2f6fae"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#1b1b1b">{} ({})</text>"##,
            label_w - 6.0,
            y + 13.0,
            esc(label),
            row - 6.0,
            label_w + bw + 4.0,
            y + 13.0,
            thousands(*v),
            pct(*share)
        );
    }
    s.push_str("</svg>");
    s
}

/// Stacked bars: one bar per day, one colour per top-level button.
pub fn stacked_chart(title: &str, days: &[String], series: &[(String, Vec<i64>)]) -> String {
    const COLORS: [&str; 6] = [
        "#2f6fae", "#e07b39", "#3a9d5d", "#8e5ea2", "#c9a227", "#5b6770",
    ];
    let (w, h, top, bottom, left) = (640.0, 240.0, 10.0, 60.0, 8.0);
    let totals: Vec<i64> = (0..days.len())
        .map(|d| series.iter().map(|s| s.1[d]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = (w - 2.0 * left) / days.len().max(1) as f64;
    let bar = (slot * 0.75).max(1.0);
    let mut s = svg_open(w, h, title);
    for (d, day) in days.iter().enumerate() {
        let mut y = h - bottom;
        for (k, (name, vals)) in series.iter().enumerate() {
            let bh = (h - top - bottom) * vals[d] as f64 / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                left + slot * d as f64 + (slot - bar) / 2.0,
                COLORS[k % COLORS.len()],
                esc(day),
                esc(name),
                vals[d]
            );
        }
        let label = day.get(8..10).unwrap_or(day);
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="7" text-anchor="middle" fill="#444">{}</text>"##,
            left + slot * d as f64 + slot / 2.0,
            h - bottom + 10.0,
            esc(label)
        );
    }
    for (k, (name, _)) in series.iter().enumerate() {
        let x = left + (k % 3) as f64 * 210.0;
        let y = h - 30.0 + (k / 3) as f64 * 14.0;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="9" height="9" fill="{}"/><text x="{:.1}" y="{y:.1}" font-size="9" fill="#1b1b1b">{}</text>"##,
            y - 8.0,
            COLORS[k % COLORS.len()],
            x + 13.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

pub fn html(r: &MonthlyReport, generated: &str) -> Result<String, minijinja::Error> {
    let label = |k: &str| {
        r.button_labels
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    };
    let month_bars: Vec<(String, i64)> = r
        .by_month
        .iter()
        .map(|g| (month_label(&g.key), g.count))
        .collect();
    let weekday_bars: Vec<(String, i64)> = r
        .by_weekday
        .iter()
        .map(|g| (label(&g.key), g.count))
        .collect();
    let hour_bars: Vec<(String, i64)> =
        r.by_hour.iter().map(|g| (g.key.clone(), g.count)).collect();
    let button_bars: Vec<(String, i64, f64)> = r
        .buttons
        .iter()
        .map(|g| (label(&g.key), g.count, g.share))
        .collect();
    let days: Vec<String> = r.by_day.iter().map(|g| g.key.clone()).collect();
    let series: Vec<(String, Vec<i64>)> = r
        .buttons
        .iter()
        .map(|b| {
            let vals = days
                .iter()
                .map(|d| {
                    r.buttons_per_day
                        .iter()
                        .filter(|(dd, bb, _)| dd == d && *bb == b.key)
                        .map(|x| x.2)
                        .sum()
                })
                .collect();
            (label(&b.key), vals)
        })
        .collect();
    let buttons: Vec<Value> = r
        .buttons
        .iter()
        .map(|b| {
            let children: Vec<Value> = b
                .children
                .iter()
                .map(|c| Value::from_serialize(&context! { label => label(&c.key), count => thousands(c.count), share => pct(c.share) }))
                .collect();
            Value::from_serialize(&context! { label => label(&b.key), count => thousands(b.count), share => pct(b.share), children => children })
        })
        .collect();
    let mut env = Environment::new();
    env.add_template("monthly.html", TEMPLATE)?;
    let tmpl = env.get_template("monthly.html")?;
    let title = |t: &str| format!("{t} — {}", month_label(&r.month));
    tmpl.render(context! {
        month_label => month_label(&r.month),
        municipality => r.municipality,
        generated => generated,
        interactions => thousands(r.interactions),
        sessions => thousands(r.sessions),
        business_hours => pct(r.business_hours_share),
        fallback_rate => pct(r.fallback_rate),
        observations => r.observations,
        chart_month => Value::from_safe_string(bar_chart(&title("Interacciones por mes"), &month_bars)),
        chart_weekday => Value::from_safe_string(bar_chart(&title("Interacciones por día de la semana"), &weekday_bars)),
        chart_hour => Value::from_safe_string(bar_chart(&title("Interacciones por hora"), &hour_bars)),
        chart_buttons => Value::from_safe_string(hbar_chart(&title("Botonera inicial"), &button_bars)),
        chart_buttons_day => Value::from_safe_string(stacked_chart(&title("Botonera inicial por día"), &days, &series)),
        buttons => buttons,
        top_intents => r.top_intents,
        unanswered => r.unanswered,
        oirs_filed => thousands(r.oirs.filed),
        oirs_overdue => thousands(r.oirs.overdue_now),
        // "3" or "3,5" days; absent when nothing was answered in the month.
        oirs_median => r.oirs.median_business_days_to_answer.map(decimal_days),
        oirs_median_corridos => r.oirs.median_calendar_days_to_answer.map(decimal_days),
        oirs_answered => thousands(r.oirs.answered),
        oirs_on_time => thousands(r.oirs.answered_on_time),
        oirs_by_type => r.oirs.by_type,
        oirs_by_department => r.oirs.by_department,
        oirs_by_status => r.oirs.by_status,
        satisfaction => r.satisfaction.iter().map(|g| context! {
            name => g.department_name, count => thousands(g.count), average => decimal2(g.average), low => thousands(g.low),
        }).collect::<Vec<_>>(),
        unhelpful => r.unhelpful_answers.iter().map(|f| context! {
            title => f.title, count => thousands(f.unhelpful), share => pct(f.share_unhelpful),
            rated => thousands(f.useful + f.unhelpful),
        }).collect::<Vec<_>>(),
    })
}

/// "4,25": two decimals with a decimal comma (es-CL).
fn decimal2(v: f64) -> String {
    format!("{v:.2}").replace('.', ",")
}

/// "3" or "3,5" days.
fn decimal_days(m: f64) -> String {
    let s = format!("{m:.1}");
    s.strip_suffix(".0").unwrap_or(&s).replace('.', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_scale() {
        let svg = bar_chart("A <b>", &[("x&y".into(), 10), ("z".into(), 5)]);
        assert!(svg.contains("A &lt;b&gt;"));
        assert!(svg.contains("x&amp;y"));
        assert!(
            svg.contains(r#"height="170.0""#),
            "the tallest bar fills the plot: {svg}"
        );
        assert!(svg.contains(r#"height="85.0""#));
        assert_eq!(month_label("2026-04"), "abril de 2026");
    }
}
