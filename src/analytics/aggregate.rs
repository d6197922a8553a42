//! Aggregations over recorded interactions, grouped by the local calendar fields stored at
//! ingest (America/Santiago), so each grouping is a plain GROUP BY on both backends.
//!
//! An interaction is something a resident did in the chat: a message or a button click.
//! Sessions are counted apart.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::recorder::WEEKDAYS;
use crate::oirs::calendar::DiasHabiles;
use crate::store::{Store, StoreError};
use crate::{with_pool, write_pool};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Month,
    Day,
    Weekday,
    Hour,
    Button,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(no_recursion)]
pub struct Group {
    pub key: String,
    pub count: i64,
    /// Share of the total (for sub-options: of their parent's sub-option clicks).
    pub share: f64,
    /// Distinct chat sessions behind these interactions.
    pub sessions: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Group>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Aggregate {
    pub groups: Vec<Group>,
    pub total: i64,
    /// Distinct sessions in the range.
    pub sessions: i64,
    /// Share of interactions inside business hours (weekdays, not holidays).
    pub business_hours_share: f64,
}

/// Business hours for the "horario hábil" share: [start, end) on business days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    pub start: i16,
    pub end: i16,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self { start: 9, end: 18 }
    }
}

fn share(n: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        n as f64 / total as f64
    }
}

const INTERACTION: &str = "kind IN ('message', 'button')";

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Interactions between `from` and `to` (inclusive local dates) grouped as asked.
/// `buttons` lists the botonera's button ids, so clicks on alternatives or the menu button
/// stay out of the button grouping.
pub async fn interactions(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    group_by: GroupBy,
    buttons: &[String],
    hours: BusinessHours,
    calendar: &DiasHabiles,
) -> Result<Aggregate, StoreError> {
    let (f, t) = (day(from), day(to));
    // Totals, sessions and the business-hours share come from one grouped pass per day+hour.
    let per_day_hour: Vec<(String, i16, i16, i64)> = with_pool!(store, pool => {
        sqlx::query_as(&format!(
            "SELECT local_date, weekday, hour, COUNT(*) FROM interactions \
             WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2 GROUP BY local_date, weekday, hour"
        ))
        .bind(&f).bind(&t).fetch_all(pool).await?
    });
    let total: i64 = per_day_hour.iter().map(|r| r.3).sum();
    let in_hours: i64 = per_day_hour
        .iter()
        .filter(|(d, _, h, _)| {
            (hours.start..hours.end).contains(h)
                && NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .is_ok_and(|d| calendar.is_business_day(d))
        })
        .map(|r| r.3)
        .sum();
    let (sessions,): (i64,) = with_pool!(store, pool => {
        sqlx::query_as(&format!(
            "SELECT COUNT(DISTINCT session_id) FROM interactions WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2"
        ))
        .bind(&f).bind(&t).fetch_one(pool).await?
    });

    let groups = match group_by {
        GroupBy::Button => button_groups(store, &f, &t, buttons).await?,
        _ => {
            let column = match group_by {
                GroupBy::Month => "local_month",
                GroupBy::Day => "local_date",
                GroupBy::Weekday => "weekday",
                _ => "hour",
            };
            let rows: Vec<(String, i64, i64)> = with_pool!(store, pool => {
                sqlx::query_as(&format!(
                    "SELECT CAST({column} AS TEXT), COUNT(*), COUNT(DISTINCT session_id) FROM interactions \
                     WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2 GROUP BY {column} ORDER BY {column}"
                ))
                .bind(&f).bind(&t).fetch_all(pool).await?
            });
            let mut by_key: BTreeMap<String, (i64, i64)> =
                rows.into_iter().map(|(k, c, s)| (k, (c, s))).collect();
            // Weekdays and hours always list every slot, so charts have no holes.
            let keys: Vec<(String, String)> = match group_by {
                GroupBy::Weekday => (0..7)
                    .map(|i| (i.to_string(), WEEKDAYS[i].to_string()))
                    .collect(),
                GroupBy::Hour => (0..24)
                    .map(|h| (h.to_string(), format!("{h:02}")))
                    .collect(),
                _ => by_key.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            keys.into_iter()
                .map(|(raw, key)| {
                    let (count, sessions) = by_key.remove(&raw).unwrap_or((0, 0));
                    Group {
                        key,
                        count,
                        share: share(count, total),
                        sessions,
                        children: Vec::new(),
                    }
                })
                .collect()
        }
    };
    Ok(Aggregate {
        groups,
        total,
        sessions,
        business_hours_share: share(in_hours, total),
    })
}

async fn button_groups(
    store: &Store,
    f: &str,
    t: &str,
    buttons: &[String],
) -> Result<Vec<Group>, StoreError> {
    let rows: Vec<(Option<String>, String, i64, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT parent_id, button_id, COUNT(*), COUNT(DISTINCT session_id) FROM interactions \
             WHERE kind = 'button' AND button_id IS NOT NULL AND local_date BETWEEN $1 AND $2 \
             GROUP BY parent_id, button_id",
        )
        .bind(f).bind(t).fetch_all(pool).await?
    });
    Ok(button_tree(rows, buttons))
}

/// The botonera as a tree from (parent, button, count, sessions) rows: top-level buttons
/// with their share of all top-level clicks, sub-options nested with their share within the
/// parent. Rows for the same button add up; ids outside the botonera are left out.
fn button_tree(
    rows: impl IntoIterator<Item = (Option<String>, String, i64, i64)>,
    buttons: &[String],
) -> Vec<Group> {
    let known = |b: &str| buttons.iter().any(|x| x == b);
    let mut top: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut subs: BTreeMap<String, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
    for (parent, button, count, sessions) in rows.into_iter().filter(|r| known(&r.1)) {
        let slot = match parent {
            None => top.entry(button).or_default(),
            Some(p) => subs.entry(p).or_default().entry(button).or_default(),
        };
        slot.0 += count;
        slot.1 += sessions;
    }
    // A parent that only appears through its sub-options (imported history) still groups them.
    for p in subs.keys() {
        top.entry(p.clone()).or_default();
    }
    let total: i64 = top.values().map(|v| v.0).sum();
    let mut groups: Vec<Group> = top
        .into_iter()
        .map(|(key, (count, sessions))| {
            let kids = subs.remove(&key).unwrap_or_default();
            let within: i64 = kids.values().map(|v| v.0).sum();
            let mut children: Vec<Group> = kids
                .into_iter()
                .map(|(k, (c, s))| Group {
                    key: k,
                    count: c,
                    share: share(c, within),
                    sessions: s,
                    children: Vec::new(),
                })
                .collect();
            children.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
            Group {
                share: share(count, total),
                key,
                count,
                sessions,
                children,
            }
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    groups
}

/// Clicks per top-level button per day (the annex's "botonera por día"), from a cube:
/// (date, button id, count), ordered by date and button.
pub fn buttons_per_day(cells: &[Cell]) -> Vec<(String, String, i64)> {
    let mut m: BTreeMap<(String, String), i64> = BTreeMap::new();
    for c in cells
        .iter()
        .filter(|c| c.kind == "button" && c.parent.is_none())
    {
        if let Some(b) = &c.button {
            *m.entry((c.date.format("%Y-%m-%d").to_string(), b.clone()))
                .or_default() += c.count;
        }
    }
    m.into_iter().map(|((d, b), n)| (d, b, n)).collect()
}

/// Top answered intents and fallback figures of a range.
pub async fn intents_and_fallbacks(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<(Vec<(String, i64)>, i64, i64, Vec<(String, i64)>), StoreError> {
    let (f, t) = (day(from), day(to));
    let top: Vec<(String, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT intent, COUNT(*) FROM interactions WHERE kind = 'message' AND intent IS NOT NULL \
             AND local_date BETWEEN $1 AND $2 GROUP BY intent ORDER BY COUNT(*) DESC, intent LIMIT $3",
        )
        .bind(&f).bind(&t).bind(limit).fetch_all(pool).await?
    });
    let (messages, fallbacks): (i64, i64) = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN fallback THEN 1 ELSE 0 END), 0) FROM interactions \
             WHERE kind = 'message' AND local_date BETWEEN $1 AND $2",
        )
        .bind(&f).bind(&t).fetch_one(pool).await?
    });
    // Unanswered texts reach the report only when at least this many different sessions
    // wrote them (after the report's mask): a single resident's words never do.
    const MIN_SESSIONS: usize = 3;
    let rows: Vec<(String, Option<String>)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT text_masked, session_id FROM interactions WHERE kind = 'message' AND fallback \
             AND text_masked IS NOT NULL AND local_date BETWEEN $1 AND $2 LIMIT 50000",
        )
        .bind(&f).bind(&t).fetch_all(pool).await?
    });
    let mut groups: HashMap<String, (i64, HashSet<String>)> = HashMap::new();
    for (text, session) in rows {
        let key = crate::analytics::mask::mask_for_report(&text)
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let g = groups.entry(key).or_default();
        g.0 += 1;
        g.1.insert(session.unwrap_or_default());
    }
    let mut unanswered: Vec<(String, i64)> = groups
        .into_iter()
        .filter(|(_, (_, sessions))| sessions.len() >= MIN_SESSIONS)
        .map(|(text, (n, _))| (text, n))
        .collect();
    unanswered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    unanswered.truncate(limit.max(0) as usize);
    Ok((top, messages, fallbacks, unanswered))
}

/// Forgets chat text older than `cutoff_ms`; aggregates stay. Returns rows changed.
pub async fn purge_text(store: &Store, cutoff_ms: i64) -> Result<u64, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query("UPDATE interactions SET text_masked = NULL WHERE occurred_at < $1 AND text_masked IS NOT NULL")
            .bind(cutoff_ms).execute(pool).await?.rows_affected()
    });
    Ok(n)
}

/// One cell of the interaction cube: counts by local date, hour, kind and button.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub date: NaiveDate,
    pub hour: i16,
    pub kind: String,
    pub parent: Option<String>,
    pub button: Option<String>,
    pub count: i64,
}

/// The whole range in one grouped pass; the report derives every table from it instead of
/// scanning the interactions once per grouping.
pub async fn cube(store: &Store, from: NaiveDate, to: NaiveDate) -> Result<Vec<Cell>, StoreError> {
    type Row = (String, i16, String, Option<String>, Option<String>, i64);
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(&format!(
            "SELECT local_date, hour, kind, parent_id, button_id, COUNT(*) FROM interactions \
             WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2 \
             GROUP BY local_date, hour, kind, parent_id, button_id"
        ))
        .bind(day(from)).bind(day(to)).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(d, hour, kind, parent, button, count)| {
            Some(Cell {
                date: NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()?,
                hour,
                kind,
                parent,
                button,
                count,
            })
        })
        .collect())
}

/// Distinct chat sessions with interactions in the range.
pub async fn sessions(store: &Store, from: NaiveDate, to: NaiveDate) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_pool!(store, pool => {
        sqlx::query_as(&format!(
            "SELECT COUNT(DISTINCT session_id) FROM interactions WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2"
        ))
        .bind(day(from)).bind(day(to)).fetch_one(pool).await?
    });
    Ok(n)
}

/// Interactions per local month over a range.
pub async fn per_month(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows: Vec<(String, i64)> = with_pool!(store, pool => {
        sqlx::query_as(&format!(
            "SELECT local_month, COUNT(*) FROM interactions WHERE {INTERACTION} AND local_date BETWEEN $1 AND $2 \
             GROUP BY local_month ORDER BY local_month"
        ))
        .bind(day(from)).bind(day(to)).fetch_all(pool).await?
    });
    Ok(rows)
}

/// Groups derived from a cube (per-group sessions are not computed here).
pub fn groups_from_cube(cells: &[Cell], group_by: GroupBy, buttons: &[String]) -> Vec<Group> {
    use chrono::Datelike;
    let simple = |pairs: Vec<(String, i64)>| -> Vec<Group> {
        let tot: i64 = pairs.iter().map(|p| p.1).sum();
        pairs
            .into_iter()
            .map(|(key, count)| Group {
                key,
                count,
                share: share(count, tot),
                sessions: 0,
                children: Vec::new(),
            })
            .collect()
    };
    match group_by {
        GroupBy::Weekday => {
            let mut v = [0i64; 7];
            for c in cells {
                v[c.date.weekday().num_days_from_monday() as usize] += c.count;
            }
            simple(
                WEEKDAYS
                    .iter()
                    .zip(v)
                    .map(|(k, n)| (k.to_string(), n))
                    .collect(),
            )
        }
        GroupBy::Hour => {
            let mut v = [0i64; 24];
            for c in cells {
                v[c.hour.clamp(0, 23) as usize] += c.count;
            }
            simple((0..24).map(|h| (format!("{h:02}"), v[h])).collect())
        }
        GroupBy::Day | GroupBy::Month => {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for c in cells {
                let key = if group_by == GroupBy::Day {
                    c.date.format("%Y-%m-%d").to_string()
                } else {
                    c.date.format("%Y-%m").to_string()
                };
                *m.entry(key).or_default() += c.count;
            }
            simple(m.into_iter().collect())
        }
        GroupBy::Button => button_tree(
            cells
                .iter()
                .filter(|c| c.kind == "button")
                .filter_map(|c| Some((c.parent.clone(), c.button.clone()?, c.count, 0))),
            buttons,
        ),
    }
}

/// Share of a cube's interactions inside business hours on business days.
pub fn business_share(cells: &[Cell], hours: BusinessHours, calendar: &DiasHabiles) -> f64 {
    let total: i64 = cells.iter().map(|c| c.count).sum();
    let inside: i64 = cells
        .iter()
        .filter(|c| (hours.start..hours.end).contains(&c.hour) && calendar.is_business_day(c.date))
        .map(|c| c.count)
        .sum();
    share(inside, total)
}
