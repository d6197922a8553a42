//! Imports the previous vendor's history (CSV: timestamp, button, sub-option) so the series
//! continue. Buttons and sub-options may be given by id or by label; timestamps as RFC 3339
//! or as local time (`2026-04-20 10:15[:00]`, America/Santiago).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::recorder::{insert_batch, Interaction, InteractionKind};
use crate::chat::catalog::Botonera;
use crate::chat::text;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn parse_time(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d-%m-%Y %H:%M:%S",
        "%d-%m-%Y %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}

fn find_button<'a>(menu: &'a Botonera, given: &str, parent: Option<&str>) -> Option<&'a str> {
    let norm = |s: &str| text::words(s).join(" ");
    let wanted = norm(given);
    menu.buttons
        .values()
        .filter(|b| b.parent.as_deref() == parent)
        .find(|b| b.id == given.trim() || norm(&b.label) == wanted)
        .map(|b| b.id.as_str())
}

/// Parses the whole file first (so a bad line imports nothing), then inserts. Returns the
/// number of interactions written: one per button, two when a sub-option was chosen (the
/// parent click and the choice), as the live chat records them.
pub async fn import_csv(
    store: &Store,
    tz: Tz,
    menu: &Botonera,
    src: &str,
) -> Result<usize, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(src.as_bytes());
    let mut events = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec?;
        let line = i + 2;
        let err = |m: String| ImportError::Line { line, message: m };
        let at = parse_time(rec.get(0).unwrap_or(""), tz)
            .ok_or_else(|| err("unreadable timestamp".into()))?;
        let button = rec.get(1).unwrap_or("").trim();
        let parent = find_button(menu, button, None)
            .ok_or_else(|| err(format!("unknown button {button:?}")))?;
        let base = Interaction {
            occurred_at: at,
            kind: InteractionKind::Button,
            ..Interaction::default()
        };
        events.push(Interaction {
            button_id: Some(parent.to_string()),
            ..base.clone()
        });
        let sub = rec.get(2).map(str::trim).unwrap_or("");
        if !sub.is_empty() {
            let child = find_button(menu, sub, Some(parent))
                .ok_or_else(|| err(format!("unknown sub-option {sub:?} of {button:?}")))?;
            events.push(Interaction {
                button_id: Some(child.to_string()),
                parent_id: Some(parent.to_string()),
                ..base
            });
        }
    }
    insert_batch(store, tz, &events).await?;
    Ok(events.len())
}
