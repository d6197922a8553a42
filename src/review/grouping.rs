//! Grouping what residents asked and the assistant did not answer: the same normalised text
//! first, then near-duplicates (most words shared, or a few letters apart), counted by the
//! distinct conversations that asked. Plain functions, no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::chat::overlay::normalize;
use crate::chat::text::bounded_levenshtein;

/// One message the assistant did not answer, as recorded (text already masked).
#[derive(Clone, Debug, PartialEq)]
pub struct Unanswered {
    pub session: Option<String>,
    pub text: String,
    /// `clarify` or `fallback`.
    pub decision: String,
    pub best_intent: Option<String>,
    pub confidence: Option<f64>,
}

/// Messages read as one question.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The most frequent wording.
    pub text: String,
    /// Distinct conversations that asked it.
    pub count: usize,
    pub messages: usize,
    /// The most frequent decision (`fallback` on a tie: the stronger signal).
    pub decision: String,
    /// The assistant's most frequent best guess, and its mean confidence for that guess.
    pub best_intent: Option<String>,
    pub confidence: Option<f64>,
    /// The other wordings, most frequent first.
    pub variants: Vec<String>,
}

/// Share of the shorter text's words the two share, at or above which two texts are one
/// question ("donde queda el cementerio" / "donde queda el cementerio municipal").
const SHARED_WORDS: f64 = 0.8;

/// Whether two normalised texts are near-duplicates.
pub fn near(a: &str, b: &str) -> bool {
    let wa: HashSet<&str> = a.split(' ').collect();
    let wb: HashSet<&str> = b.split(' ').collect();
    let shared = wa.intersection(&wb).count() as f64;
    let shorter = wa.len().min(wb.len()).max(1) as f64;
    // Two short texts sharing one word are not one question ("hola", "hola alcalde").
    if wa.len().min(wb.len()) >= 3 && shared / shorter >= SHARED_WORDS {
        return true;
    }
    // Typos: a few letters apart, in proportion to the length.
    let max = (a.chars().count().min(b.chars().count()) / 8).clamp(1, 3);
    bounded_levenshtein(a, b, max).is_some()
}

fn most_frequent<'a>(counts: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for c in counts {
        *by.entry(c).or_default() += 1;
    }
    by.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| k.to_string())
}

/// Groups `rows`, largest first (by conversations, then messages, then text). Texts whose
/// normalised form is in `skip` (already taught) are left out.
pub fn group(rows: &[Unanswered], skip: &dyn Fn(&str) -> bool) -> Vec<Group> {
    // Exact groups by normalised text.
    let mut exact: BTreeMap<String, Vec<&Unanswered>> = BTreeMap::new();
    for r in rows {
        let key = normalize(&r.text);
        if key.is_empty() || skip(&key) {
            continue;
        }
        exact.entry(key).or_default().push(r);
    }
    let sessions = |rs: &[&Unanswered]| {
        rs.iter()
            .map(|r| r.session.as_deref().unwrap_or(r.text.as_str()))
            .collect::<HashSet<_>>()
            .len()
    };
    let mut exact: Vec<(String, Vec<&Unanswered>)> = exact.into_iter().collect();
    exact.sort_by(|a, b| {
        sessions(&b.1)
            .cmp(&sessions(&a.1))
            .then(b.1.len().cmp(&a.1.len()))
            .then(a.0.cmp(&b.0))
    });
    // Near-duplicates join the largest group whose first text they resemble.
    let mut merged: Vec<(String, Vec<&Unanswered>)> = Vec::new();
    for (key, rs) in exact {
        match merged.iter_mut().find(|(k, _)| near(k, &key)) {
            Some((_, into)) => into.extend(rs),
            None => merged.push((key, rs)),
        }
    }
    let mut groups: Vec<Group> = merged
        .into_iter()
        .map(|(_, rs)| {
            let mut wordings: HashMap<&str, usize> = HashMap::new();
            for r in &rs {
                *wordings.entry(r.text.as_str()).or_default() += 1;
            }
            let mut wordings: Vec<(&str, usize)> = wordings.into_iter().collect();
            wordings.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let fallbacks = rs.iter().filter(|r| r.decision == "fallback").count();
            let decision = if fallbacks * 2 >= rs.len() {
                "fallback"
            } else {
                "clarify"
            };
            let best_intent = most_frequent(rs.iter().filter_map(|r| r.best_intent.as_deref()));
            let confs: Vec<f64> = rs
                .iter()
                .filter(|r| r.best_intent == best_intent)
                .filter_map(|r| r.confidence)
                .collect();
            let confidence = (!confs.is_empty() && best_intent.is_some()).then(|| {
                (confs.iter().sum::<f64>() / confs.len() as f64 * 1000.0).round() / 1000.0
            });
            Group {
                text: wordings[0].0.to_string(),
                count: sessions(&rs),
                messages: rs.len(),
                decision: decision.into(),
                best_intent,
                confidence,
                variants: wordings[1..].iter().map(|w| w.0.to_string()).collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.messages.cmp(&a.messages))
            .then(a.text.cmp(&b.text))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(session: &str, text: &str, decision: &str, guess: Option<&str>) -> Unanswered {
        Unanswered {
            session: Some(session.into()),
            text: text.into(),
            decision: decision.into(),
            best_intent: guess.map(String::from),
            confidence: guess.map(|_| 0.3),
        }
    }

    #[test]
    fn same_text_and_near_duplicates_are_one_group_counted_by_conversation() {
        let rows = vec![
            row("a", "¿Dónde queda el cementerio?", "fallback", None),
            row("a", "donde queda el cementerio", "fallback", None),
            row(
                "b",
                "donde queda el cementerio municipal",
                "clarify",
                Some("x"),
            ),
            row("c", "dnde queda el cementerio", "fallback", None),
            row("d", "cuanto cuesta la patente", "clarify", Some("patentes")),
        ];
        let groups = group(&rows, &|_| false);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].messages, 4);
        assert_eq!(groups[0].decision, "fallback");
        assert_eq!(groups[1].count, 1);
        assert_eq!(groups[1].best_intent.as_deref(), Some("patentes"));
        assert_eq!(groups[1].confidence, Some(0.3));
    }

    #[test]
    fn short_texts_sharing_a_word_are_not_one_question() {
        assert!(!near("hola", "hola alcalde"));
        assert!(!near(
            "permiso de circulacion",
            "permiso de edificacion municipal"
        ));
        assert!(near("horario del cesfam", "horario del cesfan"));
    }

    #[test]
    fn taught_texts_leave_the_worklist() {
        let rows = vec![row("a", "donde queda el cementerio", "fallback", None)];
        assert!(group(&rows, &|k| k == "donde queda el cementerio").is_empty());
    }
}
