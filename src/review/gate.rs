//! The safety gate: before a taught example takes effect, the would-be engine is measured on
//! the evaluation sets beside the running one; a change that lowers any gated figure is
//! refused unless an administrator confirms. Plain functions; the caller runs them off the
//! async threads.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::chat::eval::{evaluate, parse_tsv};
use crate::chat::Engine;

/// A labelled set: its name (the file name) and its `question → topic` lines.
pub struct EvalSet {
    pub name: String,
    pub lines: Vec<(String, String)>,
}

/// Reads the configured sets; a missing or unreadable file is skipped (a deployment may
/// ship without the repository's test data), and said so in the log.
pub fn load_sets(paths: &[PathBuf]) -> Vec<EvalSet> {
    paths
        .iter()
        .filter_map(|p| {
            let src = std::fs::read_to_string(p).ok()?;
            match parse_tsv(&src) {
                Ok(lines) => Some(EvalSet {
                    name: p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    lines,
                }),
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "evaluation set skipped");
                    None
                }
            }
        })
        .collect()
}

/// The gated figures of one set (shares in [0, 1]).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    pub set: String,
    pub answer_rate: f64,
    pub answer_precision: f64,
    pub right_topic_offered: f64,
    pub false_fallbacks: f64,
    pub out_of_scope_fallback: f64,
    pub out_of_scope_answered: f64,
}

pub fn figures(engine: &Engine, sets: &[EvalSet], today: NaiveDate) -> Vec<Figures> {
    sets.iter()
        .map(|s| {
            let r = evaluate(engine, &s.lines, today);
            Figures {
                set: s.name.clone(),
                answer_rate: r.answer_rate(),
                answer_precision: r.answer_precision(),
                right_topic_offered: r.offered_accuracy(),
                false_fallbacks: r.false_fallback_rate(),
                out_of_scope_fallback: r.oos_fallback_rate(),
                out_of_scope_answered: r.oos_answered_rate(),
            }
        })
        .collect()
}

/// What got worse from `before` to `after`: "set: figure" for each (higher is better for
/// rates and precision, worse for false fallbacks and out-of-scope answers).
pub fn lowered(before: &[Figures], after: &[Figures]) -> Vec<String> {
    const EPS: f64 = 1e-9;
    let mut out = Vec::new();
    for (b, a) in before.iter().zip(after) {
        let checks = [
            ("answer_rate", b.answer_rate - a.answer_rate),
            ("answer_precision", b.answer_precision - a.answer_precision),
            (
                "right_topic_offered",
                b.right_topic_offered - a.right_topic_offered,
            ),
            ("false_fallbacks", a.false_fallbacks - b.false_fallbacks),
            (
                "out_of_scope_fallback",
                b.out_of_scope_fallback - a.out_of_scope_fallback,
            ),
            (
                "out_of_scope_answered",
                a.out_of_scope_answered - b.out_of_scope_answered,
            ),
        ];
        for (name, worse_by) in checks {
            if worse_by > EPS {
                out.push(format!("{}: {name}", b.set));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(precision: f64, false_fallbacks: f64) -> Figures {
        Figures {
            set: "dev".into(),
            answer_rate: 0.9,
            answer_precision: precision,
            right_topic_offered: 0.95,
            false_fallbacks,
            out_of_scope_fallback: 1.0,
            out_of_scope_answered: 0.0,
        }
    }

    #[test]
    fn lower_precision_or_more_false_fallbacks_is_lowered() {
        assert!(lowered(&[f(0.99, 0.01)], &[f(0.99, 0.01)]).is_empty());
        assert!(lowered(&[f(0.99, 0.01)], &[f(1.0, 0.0)]).is_empty());
        assert_eq!(
            lowered(&[f(0.99, 0.01)], &[f(0.98, 0.01)]),
            vec!["dev: answer_precision"]
        );
        assert_eq!(
            lowered(&[f(0.99, 0.01)], &[f(0.99, 0.02)]),
            vec!["dev: false_fallbacks"]
        );
    }
}
