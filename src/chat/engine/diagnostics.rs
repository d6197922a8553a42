//! How the engine reads a message, for people tuning the catalog: `ventanilla intents
//! explain` and the decision signals of `intents signals`.

use chrono::NaiveDate;

use super::Engine;

impl Engine {
    /// How a message is read, for people tuning the catalog (`ventanilla intents explain`).
    pub fn explain(&self, message: &str, today: NaiveDate) -> String {
        use std::fmt::Write as _;
        let analyzed = self.matcher.pipeline().analyze(message);
        let ranking = self
            .matcher
            .rank(message, |ord| self.catalog.intents[ord].valid_on(today));
        let (reply, m) = self.understand(message, today);
        let mut s = String::new();
        let folds = self.matcher.fold_report();
        let _ = writeln!(
            s,
            "classifier: {:.3} right on {} held-out catalog examples, temperature {:.2}",
            folds.accuracy, folds.examples, folds.temperature
        );
        let _ = writeln!(s, "words: {}", analyzed.words.join(" "));
        let _ = writeln!(s, "stems: {}", analyzed.stems.join(" "));
        let _ = writeln!(
            s,
            "known share: {:.2}   out of scope: {:.3}",
            ranking.known, ranking.out_of_scope
        );
        for c in &ranking.candidates {
            let i = &self.catalog.intents[c.intent];
            let _ = writeln!(
                s,
                "  {:.3}  (bm25 {:.3})  {} [{}]",
                c.probability, c.evidence, i.id, i.topic
            );
        }
        let _ = writeln!(
            s,
            "decision: {:?} {} {:.3}  filing: {:?}",
            m.decision,
            m.intent.as_deref().unwrap_or("-"),
            m.confidence,
            reply.filing
        );
        s
    }

    /// The signals the decision is made from, one TSV row (for studying the decision rule on
    /// tuning sets): best topic, its probability, the runner-up's, out of scope, known share,
    /// the best topic's BM25 evidence.
    pub fn signals(&self, message: &str, today: NaiveDate) -> String {
        let ranking = self
            .matcher
            .rank(message, |ord| self.catalog.intents[ord].valid_on(today));
        let analyzed = self.matcher.pipeline().analyze(message);
        let reading = self.cues.read(&analyzed.stems, analyzed.words.len());
        let mut topics = self.topics(&ranking);
        self.merge_filing_with_subject(&mut topics, &reading);
        let first = topics.first();
        let evidence = first
            .and_then(|t| ranking.candidates.iter().find(|c| c.intent == t.intent))
            .map(|c| c.evidence)
            .unwrap_or(0.0);
        let bm25_best = ranking
            .candidates
            .iter()
            .map(|c| c.evidence)
            .fold(0.0f32, f32::max);
        let bm25_topic = ranking
            .candidates
            .iter()
            .max_by(|a, b| a.evidence.total_cmp(&b.evidence))
            .map(|c| self.catalog.intents[c.intent].topic.as_str())
            .unwrap_or("-");
        format!(
            "{}\t{:.4}\t{}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{bm25_topic}",
            first.map(|t| t.topic.as_str()).unwrap_or("-"),
            first.map(|t| t.probability).unwrap_or(0.0),
            topics.get(1).map(|t| t.topic.as_str()).unwrap_or("-"),
            topics.get(1).map(|t| t.probability).unwrap_or(0.0),
            ranking.out_of_scope,
            ranking.known,
            evidence,
            bm25_best,
        )
    }
}
