//! Understanding a message: a classifier learnt from the catalog when it loads (calibrated
//! probabilities per intent and for "out of scope"), checked against the BM25 evidence of the
//! tantivy index (how much of the message the intent's examples explain).

use super::bm25::Bm25;
use super::catalog::Catalog;
use super::classifier::{FoldReport, LinearModel, TrainOptions};
use super::features::{Analyzed, TextPipeline, Vocabulary};
use super::text::Synonyms;

#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Ordinal of the intent in the catalog.
    pub intent: usize,
    /// The probability the chat decides on.
    pub confidence: f32,
    /// The classifier's calibrated probability.
    pub probability: f32,
    /// The BM25 evidence in [0, 1] (0 when the index did not rank the intent).
    pub evidence: f32,
}

#[derive(Clone, Debug, Default)]
pub struct Ranking {
    /// Best first, one per allowed intent with any probability worth listing.
    pub candidates: Vec<Candidate>,
    /// Probability that the message is none of the municipality's business.
    pub out_of_scope: f32,
    /// Share of the message's meaningful words the catalog knows (typos corrected).
    pub known: f32,
}

pub struct Matcher {
    pipeline: TextPipeline,
    vocab: Vocabulary,
    model: LinearModel,
    bm25: Bm25,
    folds: FoldReport,
    /// Class of the out-of-scope examples (after the intents).
    out_of_scope: usize,
}

/// BM25 evidence from which the examples explain the message so well that the intent is
/// believed whatever the classifier says: an example added a minute ago ("camposanto") has
/// little weight in the classifier yet, but the index knows it at once. On the tuning sets,
/// no out-of-scope message reaches 0.8 and the intent with such evidence is right 99% of
/// the time.
const STRONG_EVIDENCE: f32 = 0.8;
/// How much of the missing probability strong evidence supplies.
const EVIDENCE_WEIGHT: f32 = 0.8;

fn strength(evidence: f32) -> f32 {
    (((evidence - STRONG_EVIDENCE) / (1.0 - STRONG_EVIDENCE)).clamp(0.0, 1.0)) * EVIDENCE_WEIGHT
}

/// Candidates below this probability are not worth listing.
const LIST_MIN: f32 = 0.01;
const MAX_CANDIDATES: usize = 6;

impl Matcher {
    pub fn build(catalog: &Catalog) -> tantivy::Result<Self> {
        Self::build_with(catalog, &TrainOptions::default())
    }

    pub fn build_with(catalog: &Catalog, options: &TrainOptions) -> tantivy::Result<Self> {
        let bm25 = Bm25::build(catalog)?;
        let pipeline = TextPipeline::new(catalog.synonyms.clone());
        let out_of_scope = catalog.intents.len();
        let mut docs: Vec<Analyzed> = Vec::new();
        let mut labels: Vec<usize> = Vec::new();
        for (ord, intent) in catalog.intents.iter().enumerate() {
            // Keywords teach the short messages ("basura", "fono dom") residents also send.
            for text in intent.examples.iter().chain(&intent.keywords) {
                docs.push(pipeline.analyze(text));
                labels.push(ord);
            }
        }
        for text in &catalog.out_of_scope {
            docs.push(pipeline.analyze(text));
            labels.push(out_of_scope);
        }
        let vocab = Vocabulary::learn(&docs);
        let xs: Vec<_> = docs.iter().map(|d| vocab.vectorize(d)).collect();
        let (model, folds) =
            LinearModel::train(&xs, &labels, vocab.len(), out_of_scope + 1, options);
        Ok(Self {
            pipeline,
            vocab,
            model,
            bm25,
            folds,
            out_of_scope,
        })
    }

    /// The same classifier with another BM25 index: the catalog review's taught examples go
    /// into the index only, never into the classifier's training, so teaching one text moves
    /// no other message's probabilities.
    pub fn with_index(&self, index_catalog: &Catalog) -> tantivy::Result<Self> {
        Ok(Self {
            pipeline: self.pipeline.clone(),
            vocab: self.vocab.clone(),
            model: self.model.clone(),
            bm25: Bm25::build(index_catalog)?,
            folds: self.folds,
            out_of_scope: self.out_of_scope,
        })
    }

    pub fn synonyms(&self) -> &Synonyms {
        self.pipeline.synonyms()
    }

    pub fn pipeline(&self) -> &TextPipeline {
        &self.pipeline
    }

    /// How the classifier did on folds of the catalog it was not trained on.
    pub fn fold_report(&self) -> FoldReport {
        self.folds
    }

    pub fn num_docs(&self) -> usize {
        self.bm25.num_docs()
    }

    /// Ranks the intents for a message. `allowed` filters intents out (validity dates); their
    /// probability goes to the others, as if they were not in the catalog.
    pub fn rank(&self, message: &str, allowed: impl Fn(usize) -> bool) -> Ranking {
        let analyzed = self.pipeline.analyze(message);
        self.rank_analyzed(&analyzed, allowed)
    }

    pub fn rank_analyzed(&self, analyzed: &Analyzed, allowed: impl Fn(usize) -> bool) -> Ranking {
        let evidence = self.bm25.rank(&analyzed.stems, &allowed);
        let known = evidence.known;
        let x = self.vocab.vectorize(analyzed);
        if x.is_empty() {
            return Ranking {
                candidates: Vec::new(),
                out_of_scope: 1.0,
                known,
            };
        }
        let mut p = self.model.probabilities(&x);
        let mut kept = 0.0;
        for (ord, v) in p.iter_mut().enumerate() {
            if ord != self.out_of_scope && !allowed(ord) {
                *v = 0.0;
            }
            kept += *v;
        }
        if kept > 0.0 {
            for v in p.iter_mut() {
                *v /= kept;
            }
        }
        let evidence_of = |ord: usize| {
            evidence
                .candidates
                .iter()
                .find(|c| c.intent == ord)
                .map(|c| c.confidence)
                .unwrap_or(0.0)
        };
        let mut candidates: Vec<Candidate> = p[..self.out_of_scope]
            .iter()
            .enumerate()
            .map(|(ord, &v)| (ord, v, evidence_of(ord)))
            .filter(|&(_, v, e)| v >= LIST_MIN || e >= STRONG_EVIDENCE)
            .map(|(ord, v, e)| Candidate {
                intent: ord,
                confidence: v + strength(e) * (1.0 - v),
                probability: v,
                evidence: e,
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.intent.cmp(&b.intent))
        });
        candidates.truncate(MAX_CANDIDATES);
        Ranking {
            candidates,
            out_of_scope: p[self.out_of_scope],
            known,
        }
    }
}
