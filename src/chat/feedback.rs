//! "¿Te sirvió?": residents say whether an answer of the bot helped. Each message reply
//! carries a `turn_id` that names the turn within its session: when it was answered, what
//! the reply did and which intent answered, sealed with an HMAC keyed by the session id.
//! So a turn costs no write when it is answered (the chat's throughput stays), a turn id of
//! another session or a made-up one does not verify (404), and the feedback row is written
//! only when someone clicks. A second click on the same turn replaces the first (the latest
//! wins: a resident who misclicked can correct it).
//!
//! Rows keep the session id, the turn's instant, the intent and the verdict: no text. The
//! unhelpful answers' questions are read, for the catalog review, from the interaction the
//! turn recorded (masked, under its own retention and anonymisation).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::Decision;
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::store::{Store, StoreError};
use crate::{with_pool, write_pool};

/// One turn of a conversation, as its id tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// When it was answered (ms since the epoch): also the instant of its interaction.
    pub at: i64,
    pub decision: Decision,
    pub intent: Option<String>,
}

fn decision_code(d: Decision) -> char {
    match d {
        Decision::Answer => 'a',
        Decision::Clarify => 'c',
        Decision::Fallback => 'f',
    }
}

fn seal(session_id: &str, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(session_id.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body.as_bytes());
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Turn {
    /// The turn's id within `session_id`: `<ms, hex>.<a|c|f>.<intent or ->.<seal>`.
    pub fn id(&self, session_id: &str) -> String {
        let body = format!(
            "{:x}.{}.{}",
            self.at,
            decision_code(self.decision),
            self.intent.as_deref().unwrap_or("-")
        );
        let seal = seal(session_id, &body);
        format!("{body}.{seal}")
    }

    /// Reads a turn id given in `session_id`; `None` when it was not issued to that session.
    pub fn parse(session_id: &str, turn_id: &str) -> Option<Self> {
        let (body, given) = turn_id.rsplit_once('.')?;
        let expected = seal(session_id, body);
        // Not secret enough to need a constant-time compare: the key is the session id,
        // which whoever can post here already holds.
        if expected.is_empty() || expected != given {
            return None;
        }
        let mut parts = body.splitn(3, '.');
        let at = i64::from_str_radix(parts.next()?, 16).ok()?;
        let decision = match parts.next()? {
            "a" => Decision::Answer,
            "c" => Decision::Clarify,
            "f" => Decision::Fallback,
            _ => return None,
        };
        let intent = match parts.next()? {
            "-" => None,
            i => Some(i.to_string()),
        };
        Some(Self {
            at,
            decision,
            intent,
        })
    }
}

/// Records the verdict on an answered turn; a second one on the same turn replaces it.
pub async fn record(
    store: &Store,
    tz: Tz,
    session_id: &str,
    turn_id: &str,
    turn: &Turn,
    useful: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let intent = turn.intent.as_deref().unwrap_or_default();
    let at = DateTime::from_timestamp_millis(turn.at).unwrap_or(now);
    let (month, day, _, _) = crate::analytics::recorder::local_fields(at, tz);
    write_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO answer_feedback (session_id, turn_id, turn_at, intent, useful, at, local_month, local_date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (session_id, turn_id) DO UPDATE SET useful = excluded.useful, at = excluded.at",
        )
        .bind(session_id)
        .bind(turn_id)
        .bind(turn.at)
        .bind(intent)
        .bind(useful)
        .bind(now.timestamp_millis())
        .bind(&month)
        .bind(&day)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The verdicts on one intent's answers over a period.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IntentFeedback {
    pub intent: String,
    /// The intent's title in the catalog.
    pub title: String,
    pub useful: i64,
    pub unhelpful: i64,
    /// Unhelpful among the answers rated, 0.0–1.0.
    pub share_unhelpful: f64,
}

/// Verdicts per intent between two local dates (inclusive), the most often unhelpful first.
pub async fn by_intent(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    title: impl Fn(&str) -> String,
) -> Result<Vec<IntentFeedback>, StoreError> {
    let rows: Vec<(String, i64, i64)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT intent, SUM(CASE WHEN useful THEN 1 ELSE 0 END), SUM(CASE WHEN useful THEN 0 ELSE 1 END) \
             FROM answer_feedback WHERE local_date >= $1 AND local_date <= $2 GROUP BY intent",
        )
        .bind(from.format("%Y-%m-%d").to_string())
        .bind(to.format("%Y-%m-%d").to_string())
        .fetch_all(pool)
        .await?
    });
    let mut out: Vec<IntentFeedback> = rows
        .into_iter()
        .map(|(intent, useful, unhelpful)| IntentFeedback {
            title: title(&intent),
            share_unhelpful: share(unhelpful, useful + unhelpful),
            intent,
            useful,
            unhelpful,
        })
        .collect();
    rank(&mut out);
    Ok(out)
}

/// Most often unhelpful first; then the larger share, then the intent (a stable order).
pub fn rank(rows: &mut [IntentFeedback]) {
    rows.sort_by(|a, b| {
        b.unhelpful
            .cmp(&a.unhelpful)
            .then(b.share_unhelpful.total_cmp(&a.share_unhelpful))
            .then(a.intent.cmp(&b.intent))
    });
}

pub fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// An intent whose answers residents marked unhelpful, with the questions that got them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UnhelpfulAnswer {
    pub intent: String,
    pub unhelpful: i64,
    /// Answers of this intent rated at all.
    pub rated: i64,
    /// The questions answered unhelpfully (masked for the report: numbers, names and
    /// addresses as well as RUTs, e-mails and phones), each with how many times; button
    /// clicks have no text. Texts past their retention or anonymised are gone.
    pub texts: Vec<UnhelpfulText>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UnhelpfulText {
    pub text: String,
    pub count: i64,
}

/// For the catalog review: per intent, the answers marked unhelpful between two local dates
/// and the (masked) questions they answered, most often unhelpful first.
pub async fn unhelpful_answers(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UnhelpfulAnswer>, StoreError> {
    let (from, to) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    type Rows = (Vec<(String, i64, i64)>, Vec<(String, String)>);
    let (counts, texts): Rows = with_pool!(store, pool => {
        (
            sqlx::query_as(
                "SELECT intent, SUM(CASE WHEN useful THEN 0 ELSE 1 END), COUNT(*) FROM answer_feedback \
                 WHERE local_date >= $1 AND local_date <= $2 GROUP BY intent",
            )
            .bind(&from).bind(&to).fetch_all(pool).await?,
            sqlx::query_as(
                "SELECT f.intent, i.text_masked FROM answer_feedback f JOIN interactions i \
                 ON i.session_id = f.session_id AND i.occurred_at = f.turn_at AND i.kind = 'message' \
                 WHERE NOT f.useful AND f.local_date >= $1 AND f.local_date <= $2 AND i.text_masked IS NOT NULL",
            )
            .bind(&from).bind(&to).fetch_all(pool).await?,
        )
    });
    let mut grouped: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (intent, text) in texts {
        let masked = crate::analytics::mask::mask_for_report(&text);
        *grouped
            .entry(intent)
            .or_default()
            .entry(masked)
            .or_default() += 1;
    }
    let mut out: Vec<UnhelpfulAnswer> = counts
        .into_iter()
        .filter(|(_, unhelpful, _)| *unhelpful > 0)
        .map(|(intent, unhelpful, rated)| {
            let mut texts: Vec<UnhelpfulText> = grouped
                .remove(&intent)
                .unwrap_or_default()
                .into_iter()
                .map(|(text, count)| UnhelpfulText { text, count })
                .collect();
            texts.sort_by(|a, b| b.count.cmp(&a.count).then(a.text.cmp(&b.text)));
            UnhelpfulAnswer {
                intent,
                unhelpful,
                rated,
                texts,
            }
        })
        .collect();
    out.sort_by(|a, b| b.unhelpful.cmp(&a.unhelpful).then(a.intent.cmp(&b.intent)));
    Ok(out)
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackIn {
    /// The `turn_id` of a reply of this session.
    #[schema(max_length = 200)]
    pub turn_id: String,
    /// Whether the answer helped.
    pub useful: bool,
}

/// Says whether an answer helped ("¿Te sirvió?"). Only answers (`decision: answer`) can be
/// rated (another turn is 409); a turn of another session, or unknown, is 404; again for the
/// same turn, the latest verdict replaces the earlier one.
#[utoipa::path(post, path = "/api/v1/chat/sessions/{session_id}/feedback", tag = "chat",
    params(("session_id" = String, Path)), request_body = FeedbackIn,
    responses((status = 204, description = "recorded"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the turn was not an answer"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post_feedback(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    ApiJson(input): ApiJson<FeedbackIn>,
) -> ApiResult<StatusCode> {
    let now = Utc::now();
    let ttl = chrono::Duration::minutes(state.config.chat.session_ttl_minutes);
    let not_before = (now - ttl).timestamp_millis();
    state
        .sessions
        .load(&session_id, not_before)
        .await?
        .ok_or_else(|| ApiError::not_found("chat session (it may have expired)"))?;
    let turn = Turn::parse(&session_id, input.turn_id.trim())
        .ok_or_else(|| ApiError::not_found("turn of this session"))?;
    match (&turn.decision, &turn.intent) {
        (Decision::Answer, Some(_)) => {}
        _ => {
            return Err(ApiError::conflict(
                "not_an_answer",
                "only answers can be rated (this turn asked to choose or did not understand)",
            )
            .with_field("turn_id"))
        }
    }
    record(
        &state.store,
        state.tz,
        &session_id,
        input.turn_id.trim(),
        &turn,
        input.useful,
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_id_reads_back_only_in_its_own_session() {
        let turn = Turn {
            at: 1_764_000_000_123,
            decision: Decision::Answer,
            intent: Some("horario_atencion".into()),
        };
        let id = turn.id("s-1");
        assert_eq!(Turn::parse("s-1", &id), Some(turn.clone()));
        assert_eq!(Turn::parse("s-2", &id), None, "another session");
        let forged = id.replace("horario_atencion", "pagos_online");
        assert_eq!(Turn::parse("s-1", &forged), None, "another intent");
        assert_eq!(Turn::parse("s-1", "nada"), None);
        assert_eq!(Turn::parse("s-1", ""), None);
        let fallback = Turn {
            at: 5,
            decision: Decision::Fallback,
            intent: None,
        };
        assert_eq!(
            Turn::parse("s-1", &fallback.id("s-1")),
            Some(fallback),
            "a fallback has no intent"
        );
    }

    #[test]
    fn the_most_often_unhelpful_come_first() {
        let row = |intent: &str, useful, unhelpful| IntentFeedback {
            intent: intent.into(),
            title: intent.into(),
            useful,
            unhelpful,
            share_unhelpful: share(unhelpful, useful + unhelpful),
        };
        let mut rows = vec![
            row("a", 10, 1),
            row("b", 0, 3),
            row("c", 3, 3),
            row("d", 1, 0),
        ];
        rank(&mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.intent.as_str()).collect();
        assert_eq!(order, ["b", "c", "a", "d"]);
        assert_eq!(rows[1].share_unhelpful, 0.5);
    }
}
