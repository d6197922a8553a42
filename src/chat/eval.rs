//! Measures the assistant against labelled files, with the same decisions the chat endpoint
//! makes:
//! - single messages (`question<TAB>topic`, `_fallback` for out-of-scope lines);
//! - follow-ups (`first<TAB>followup<TAB>topic`: the second message of a conversation);
//! - filing offers (`message<TAB>type<TAB>topic`: the case the reply should offer to file).
//!
//! Only an answer counts as right: a clarifying question that lists the right topic is
//! "offered", not answered.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use super::conversation::Conversation;
use super::{Decision, Engine};

pub const OUT_OF_SCOPE: &str = "_fallback";

#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub in_scope: usize,
    pub out_of_scope: usize,
    /// In-scope messages the bot answered, and of those the ones answered with the right topic.
    pub answered: usize,
    pub answered_right: usize,
    /// In-scope messages whose topic was answered or among the choices offered.
    pub offered_right: usize,
    pub false_fallbacks: usize,
    /// Out-of-scope messages the bot fell back on, and the ones it answered.
    pub oos_fallbacks: usize,
    pub oos_answered: usize,
    /// (expected, got) → count, for in-scope lines not answered right.
    pub confusions: HashMap<(String, String), usize>,
    /// (question, expected, what happened) for every line not handled right.
    pub misses: Vec<(String, String, String)>,
    /// (question, expected, best topic, decision, confidence) for every line.
    pub lines: Vec<(String, String, String, Decision, f32)>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Answer => "answer",
        Decision::Clarify => "clarify",
        Decision::Fallback => "fallback",
    }
}

impl EvalReport {
    /// Share of in-scope messages answered right (only answers count).
    pub fn top1_accuracy(&self) -> f64 {
        ratio(self.answered_right, self.in_scope)
    }
    /// Share of in-scope messages answered (right or wrong).
    pub fn answer_rate(&self) -> f64 {
        ratio(self.answered, self.in_scope)
    }
    /// Right answers over every answer given, out-of-scope answers included.
    pub fn answer_precision(&self) -> f64 {
        ratio(self.answered_right, self.answered + self.oos_answered)
    }
    /// Share of in-scope messages whose topic was answered or offered as a choice.
    pub fn offered_accuracy(&self) -> f64 {
        ratio(self.offered_right, self.in_scope)
    }
    pub fn false_fallback_rate(&self) -> f64 {
        ratio(self.false_fallbacks, self.in_scope)
    }
    /// Share of out-of-scope messages the bot fell back on.
    pub fn oos_fallback_rate(&self) -> f64 {
        ratio(self.oos_fallbacks, self.out_of_scope)
    }
    /// Share of out-of-scope messages the bot answered as if they were in scope.
    pub fn oos_answered_rate(&self) -> f64 {
        ratio(self.oos_answered, self.out_of_scope)
    }

    /// One line per question, lowest confidence first: confidence, decision, expected, best
    /// topic, question.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        let mut lines: Vec<_> = self.lines.iter().collect();
        lines.sort_by(|a, b| a.4.total_cmp(&b.4));
        for (q, e, g, d, c) in lines {
            let mark = if e == g { ' ' } else { '!' };
            let d = decision_name(*d);
            let _ = writeln!(s, "{c:.3} {d:<8} {mark} {e:<26} {g:<26} {q}");
        }
        s
    }

    pub fn render(&self, show_misses: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "in-scope lines:          {}", self.in_scope);
        let _ = writeln!(s, "  answer rate:           {:.3}", self.answer_rate());
        let _ = writeln!(s, "  answer precision:      {:.3}", self.answer_precision());
        let _ = writeln!(s, "  top-1 (right answers): {:.3}", self.top1_accuracy());
        let _ = writeln!(s, "  right topic offered:   {:.3}", self.offered_accuracy());
        let _ = writeln!(
            s,
            "  false fallbacks:       {:.3}",
            self.false_fallback_rate()
        );
        let _ = writeln!(s, "out-of-scope lines:      {}", self.out_of_scope);
        let _ = writeln!(
            s,
            "  fallback rate:         {:.3}",
            self.oos_fallback_rate()
        );
        let _ = writeln!(
            s,
            "  answered rate:         {:.3}",
            self.oos_answered_rate()
        );
        let mut pairs: Vec<_> = self.confusions.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if show_misses {
            if !pairs.is_empty() {
                let _ = writeln!(s, "most confused (expected -> got):");
                for ((e, g), n) in pairs.into_iter().take(10) {
                    let _ = writeln!(s, "  {n:>3}  {e} -> {g}");
                }
            }
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

/// Parses a TSV with a header line and `columns` columns per line.
pub fn parse_columns(src: &str, columns: usize) -> Result<Vec<Vec<String>>, EvalError> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<String> = line.split('\t').map(|c| c.trim().to_string()).collect();
        if cols.len() != columns || cols.iter().any(String::is_empty) {
            return Err(EvalError {
                line: i + 1,
                message: format!("expected {columns} tab-separated columns"),
            });
        }
        out.push(cols);
    }
    Ok(out)
}

/// Parses `question<TAB>topic` lines (the first line is the header).
pub fn parse_tsv(src: &str) -> Result<Vec<(String, String)>, EvalError> {
    Ok(parse_columns(src, 2)?
        .into_iter()
        .map(|mut c| {
            let t = c.pop().unwrap_or_default();
            let q = c.pop().unwrap_or_default();
            (q, t)
        })
        .collect())
}

pub fn evaluate(engine: &Engine, cases: &[(String, String)], today: NaiveDate) -> EvalReport {
    let mut r = EvalReport::default();
    for (question, expected) in cases {
        let (_, m) = engine.understand(question, today);
        let best = m
            .topic
            .clone()
            .or_else(|| m.alternatives.first().map(|a| a.topic.clone()))
            .unwrap_or_else(|| "-".into());
        r.lines.push((
            question.clone(),
            expected.clone(),
            best.clone(),
            m.decision,
            m.confidence,
        ));
        let got = match m.decision {
            Decision::Answer => best.clone(),
            Decision::Clarify => format!("clarify:{best}"),
            Decision::Fallback => OUT_OF_SCOPE.to_string(),
        };
        if expected == OUT_OF_SCOPE {
            r.out_of_scope += 1;
            match m.decision {
                Decision::Fallback => r.oos_fallbacks += 1,
                Decision::Answer => {
                    r.oos_answered += 1;
                    r.misses.push((question.clone(), expected.clone(), got));
                }
                Decision::Clarify => r.misses.push((question.clone(), expected.clone(), got)),
            }
            continue;
        }
        r.in_scope += 1;
        let offered: Vec<&str> = match m.decision {
            Decision::Answer => m.topic.iter().map(String::as_str).collect(),
            Decision::Clarify => m
                .topic
                .iter()
                .map(String::as_str)
                .chain(m.alternatives.iter().map(|a| a.topic.as_str()))
                .take(3)
                .collect(),
            Decision::Fallback => Vec::new(),
        };
        if offered.contains(&expected.as_str()) {
            r.offered_right += 1;
        }
        match m.decision {
            Decision::Answer => {
                r.answered += 1;
                if m.topic.as_deref() == Some(expected.as_str()) {
                    r.answered_right += 1;
                    continue;
                }
            }
            Decision::Fallback => r.false_fallbacks += 1,
            Decision::Clarify => {}
        }
        *r.confusions
            .entry((expected.clone(), got.clone()))
            .or_default() += 1;
        r.misses.push((question.clone(), expected.clone(), got));
    }
    r
}

/// Figures of a follow-up or filing file: lines handled right out of all.
#[derive(Clone, Debug, Default)]
pub struct PairReport {
    pub lines: usize,
    pub right: usize,
    pub misses: Vec<String>,
}

impl PairReport {
    pub fn accuracy(&self) -> f64 {
        ratio(self.right, self.lines)
    }

    pub fn render(&self, what: &str, show_misses: bool) -> String {
        let mut s = format!(
            "{what}: {} of {} right ({:.3})\n",
            self.right,
            self.lines,
            self.accuracy()
        );
        if show_misses {
            for m in &self.misses {
                let _ = writeln!(s, "  {m}");
            }
        }
        s
    }
}

/// Two-message conversations: the follow-up must be answered for the labelled topic.
pub fn evaluate_followups(engine: &Engine, lines: &[Vec<String>], today: NaiveDate) -> PairReport {
    let mut r = PairReport::default();
    for l in lines {
        let (first, follow, expected) = (&l[0], &l[1], &l[2]);
        let mut conv = Conversation::default();
        engine.respond(first, &mut conv, today);
        let m = engine.respond(follow, &mut conv, today).matched;
        r.lines += 1;
        if m.decision == Decision::Answer && m.topic.as_deref() == Some(expected.as_str()) {
            r.right += 1;
        } else {
            r.misses.push(format!(
                "[{expected} -> {} {}] {first} / {follow}",
                decision_name(m.decision),
                m.topic.as_deref().unwrap_or("-")
            ));
        }
    }
    r
}

/// Messages that call for a case: the reply must offer to file it with the labelled type
/// and topic.
pub fn evaluate_filing(engine: &Engine, lines: &[Vec<String>], today: NaiveDate) -> PairReport {
    let mut r = PairReport::default();
    for l in lines {
        let (message, case_type, topic) = (&l[0], &l[1], &l[2]);
        let turn = engine.respond(message, &mut Conversation::default(), today);
        r.lines += 1;
        let got = turn.reply.filing.as_ref();
        if got.is_some_and(|f| &f.case_type == case_type && f.topic.as_deref() == Some(topic)) {
            r.right += 1;
        } else {
            let got = got
                .map(|f| format!("{} {}", f.case_type, f.topic.as_deref().unwrap_or("-")))
                .unwrap_or_else(|| "no filing".into());
            r.misses
                .push(format!("[{case_type} {topic} -> {got}] {message}"));
        }
    }
    r
}
