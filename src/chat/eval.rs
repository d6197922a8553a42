//! Measures the matcher against a labelled TSV (`question<TAB>topic`, `_fallback` for
//! out-of-scope lines), with the same decision the chat endpoint makes.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use super::Engine;

pub const OUT_OF_SCOPE: &str = "_fallback";

#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub in_scope: usize,
    pub out_of_scope: usize,
    pub top1: usize,
    pub top3: usize,
    pub oos_caught: usize,
    pub false_fallbacks: usize,
    /// (expected, got) → count, for misses in scope.
    pub confusions: HashMap<(String, String), usize>,
    pub misses: Vec<(String, String, String)>,
    /// (question, expected, got, confidence) for every line, for threshold tuning.
    pub lines: Vec<(String, String, String, f32)>,
    /// (coverage, anchor) of the best candidate per line, same order as `lines`.
    pub features: Vec<(f32, f32)>,
}

impl EvalReport {
    fn ratio(a: usize, b: usize) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }
    pub fn top1_accuracy(&self) -> f64 {
        Self::ratio(self.top1, self.in_scope)
    }
    pub fn top3_accuracy(&self) -> f64 {
        Self::ratio(self.top3, self.in_scope)
    }
    pub fn oos_recall(&self) -> f64 {
        Self::ratio(self.oos_caught, self.out_of_scope)
    }
    pub fn false_fallback_rate(&self) -> f64 {
        Self::ratio(self.false_fallbacks, self.in_scope)
    }

    /// One line per question: confidence, expected, best topic, question.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        let mut lines: Vec<_> = self.lines.iter().zip(&self.features).collect();
        lines.sort_by(|a, b| a.0 .3.total_cmp(&b.0 .3));
        for ((q, e, g, c), (cov, anchor)) in lines {
            let mark = if e == g { ' ' } else { '!' };
            let _ = writeln!(s, "{c:.3} {cov:.2} {anchor:.2} {mark} {e:<26} {g:<26} {q}");
        }
        s
    }

    pub fn render(&self, show_misses: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "in-scope lines:        {}", self.in_scope);
        let _ = writeln!(s, "out-of-scope lines:    {}", self.out_of_scope);
        let _ = writeln!(s, "top-1 accuracy:        {:.3}", self.top1_accuracy());
        let _ = writeln!(s, "top-3 accuracy:        {:.3}", self.top3_accuracy());
        let _ = writeln!(s, "out-of-scope recall:   {:.3}", self.oos_recall());
        let _ = writeln!(
            s,
            "false-fallback rate:   {:.3}",
            self.false_fallback_rate()
        );
        let mut pairs: Vec<_> = self.confusions.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !pairs.is_empty() {
            let _ = writeln!(s, "most confused (expected -> got):");
            for ((e, g), n) in pairs.into_iter().take(10) {
                let _ = writeln!(s, "  {n:>3}  {e} -> {g}");
            }
        }
        if show_misses {
            let _ = writeln!(s, "misses:");
            for (q, e, g) in &self.misses {
                let _ = writeln!(s, "  [{e} -> {g}] {q}");
            }
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EvalError {
    pub line: usize,
    pub message: String,
}

pub fn parse_tsv(src: &str) -> Result<Vec<(String, String)>, EvalError> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() || (i == 0 && line.starts_with("question\t")) {
            continue;
        }
        let Some((q, t)) = line.rsplit_once('\t') else {
            return Err(EvalError {
                line: i + 1,
                message: "expected question<TAB>topic".into(),
            });
        };
        out.push((q.trim().to_string(), t.trim().to_string()));
    }
    Ok(out)
}

pub fn evaluate(engine: &Engine, cases: &[(String, String)], today: NaiveDate) -> EvalReport {
    let mut r = EvalReport::default();
    for (question, expected) in cases {
        let (_, m) = engine.understand(question, today);
        let got = m.topic.clone().unwrap_or_else(|| OUT_OF_SCOPE.to_string());
        let best = m
            .topic
            .clone()
            .or_else(|| m.alternatives.first().map(|a| a.topic.clone()))
            .unwrap_or_else(|| "-".into());
        r.lines
            .push((question.clone(), expected.clone(), best, m.confidence));
        let ranking = engine
            .matcher
            .rank(question, |ord| engine.catalog.intents[ord].valid_on(today));
        r.features.push(
            ranking
                .candidates
                .first()
                .map(|c| (c.coverage, c.anchor))
                .unwrap_or((0.0, 0.0)),
        );
        if expected == OUT_OF_SCOPE {
            r.out_of_scope += 1;
            if m.fallback {
                r.oos_caught += 1;
            } else {
                r.misses.push((question.clone(), expected.clone(), got));
            }
            continue;
        }
        r.in_scope += 1;
        if m.fallback {
            r.false_fallbacks += 1;
        }
        let top3: Vec<&str> = m
            .topic
            .iter()
            .map(String::as_str)
            .chain(m.alternatives.iter().map(|a| a.topic.as_str()))
            .take(3)
            .collect();
        let hit1 = !m.fallback && m.topic.as_deref() == Some(expected.as_str());
        if hit1 {
            r.top1 += 1;
        } else {
            *r.confusions
                .entry((expected.clone(), got.clone()))
                .or_default() += 1;
            r.misses.push((question.clone(), expected.clone(), got));
        }
        if top3.contains(&expected.as_str()) {
            r.top3 += 1;
        }
    }
    r
}
