//! The BM25 evidence: intent matching over a tantivy index in RAM.
//!
//! Each catalog example (and each intent's keyword line) is a document of stemmed Spanish
//! words. A message becomes one query: exact stems and stems corrected against the catalog
//! vocabulary for typos (weighted below exact ones). BM25 ranks the intents; the evidence is
//! not the raw score but how much of the message the intent explains (specificity-weighted
//! word coverage), its most specific word and how far it stands ahead of the next. Misspelt
//! words the correction misses are the classifier's job (its character n-grams): character
//! trigrams in this query cost twice the latency for no measurable gain.

use std::collections::{HashMap, HashSet};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{doc, Index, IndexReader, Searcher, Term};

use super::catalog::Catalog;
use super::text;

/// How much a typo-corrected word counts against an exact one.
const FUZZY_WEIGHT: f32 = 0.7;
const CANDIDATE_DOCS: usize = 80;

#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub intent: usize,
    pub score: f32,
    pub confidence: f32,
    /// Share of the message's evidence this intent explains.
    pub coverage: f32,
    /// The most specific word of the message this intent knows, scaled to [0, 1].
    pub anchor: f32,
    /// How far ahead of the next candidate this one was before the lead penalty, relative
    /// to the best (0 = tied).
    pub lead: f32,
}

#[derive(Clone, Debug, Default)]
pub struct Ranking {
    /// Best first, one per intent, at most a handful.
    pub candidates: Vec<Candidate>,
    /// Share of the distinct meaningful stems of the message that the intents' examples know,
    /// exactly or after a typo correction (1 when the message has none).
    pub known: f32,
}

struct QueryTerm {
    /// The stem as it stands in the catalog (corrected when the message misspelt it).
    stem: String,
    weight: f32,
    fuzzy: bool,
}

pub struct Bm25 {
    reader: IndexReader,
    words: Field,
    /// doc → intent ordinal, per segment.
    doc_intent: Vec<Vec<u32>>,
    /// stem → number of documents holding it.
    vocab: HashMap<String, u32>,
    /// stem → number of intents whose examples hold it.
    intent_df: HashMap<String, u32>,
    vocab_by_len: HashMap<usize, Vec<String>>,
    /// Stems each intent knows.
    intent_stems: Vec<HashSet<String>>,
    /// Ordinal of the out-of-scope pseudo-intent.
    out_of_scope: usize,
    num_docs: f32,
    num_intents: f32,
}

impl Bm25 {
    pub fn build(catalog: &Catalog) -> tantivy::Result<Self> {
        let mut schema = Schema::builder();
        let word_opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(text::ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let words = schema.add_text_field("words", word_opts);
        let intent_field = schema.add_u64_field("intent", FAST | INDEXED);
        let index = Index::create_in_ram(schema.build());
        index
            .tokenizers()
            .register(text::ANALYZER, text::spanish_analyzer());
        let mut analyzer = text::spanish_analyzer();
        let synonyms = catalog.synonyms.clone();

        let mut writer = index.writer_with_num_threads(1, 20_000_000)?;
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let real = catalog.intents.len();
        // One pseudo-intent after the real ones holds the out-of-scope examples.
        let mut intent_stems = vec![HashSet::new(); real + 1];
        let mut num_docs = 0u32;
        let keyword_lines: Vec<String> = catalog
            .intents
            .iter()
            .map(|i| i.keywords.join(" "))
            .collect();
        let per_intent = catalog
            .intents
            .iter()
            .zip(&keyword_lines)
            .enumerate()
            .map(|(ord, (intent, kw))| {
                let docs: Vec<&str> = intent
                    .examples
                    .iter()
                    .map(String::as_str)
                    .chain((!kw.is_empty()).then_some(kw.as_str()))
                    .collect();
                (ord, docs)
            })
            .chain(std::iter::once((
                real,
                catalog.out_of_scope.iter().map(String::as_str).collect(),
            )));
        for (ord, docs) in per_intent {
            for example in docs {
                let expanded = synonyms.expand(example);
                let joined = expanded.join(" ");
                let stems = analyze(&mut analyzer, &joined);
                let unique: HashSet<&String> = stems.iter().collect();
                for s in unique {
                    *vocab.entry(s.clone()).or_default() += 1;
                    intent_stems[ord].insert(s.clone());
                }
                writer.add_document(doc!(
                    words => joined,
                    intent_field => ord as u64,
                ))?;
                num_docs += 1;
            }
        }
        writer.commit()?;
        let reader = index.reader()?;
        let searcher = reader.searcher();
        let mut doc_intent = Vec::new();
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("intent")?;
            doc_intent.push(
                (0..seg.max_doc())
                    .map(|d| col.first(d).unwrap_or(0) as u32)
                    .collect(),
            );
        }
        let mut intent_df: HashMap<String, u32> = HashMap::new();
        for stems in &intent_stems[..real] {
            for s in stems {
                *intent_df.entry(s.clone()).or_default() += 1;
            }
        }
        let mut vocab_by_len: HashMap<usize, Vec<String>> = HashMap::new();
        for term in vocab.keys() {
            vocab_by_len
                .entry(term.chars().count())
                .or_default()
                .push(term.clone());
        }
        for v in vocab_by_len.values_mut() {
            v.sort();
        }
        Ok(Self {
            reader,
            words,
            doc_intent,
            vocab,
            intent_df,
            num_intents: catalog.intents.len().max(1) as f32,
            vocab_by_len,
            intent_stems,
            out_of_scope: real,
            num_docs: num_docs.max(1) as f32,
        })
    }

    /// How specific a stem is to few intents: the weight of its evidence for confidence.
    fn specificity(&self, stem: &str) -> f32 {
        let n = self.intent_df.get(stem).copied().unwrap_or(0);
        if n == 0 {
            return UNKNOWN_WEIGHT;
        }
        (1.0 + self.num_intents / n as f32).ln()
    }

    /// The catalog stem closest to an unknown one, within one edit (two for long words).
    fn correct(&self, stem: &str) -> Option<String> {
        let len = stem.chars().count();
        if len < 4 {
            return None;
        }
        let max = if len >= 8 { 2 } else { 1 };
        let first = stem.chars().next();
        // Short words only meet stems that share their first three letters ("abre" → "abr"),
        // which catches verb forms the stemmer leaves apart without inventing matches.
        let short_prefix: Option<String> = (len == 4).then(|| stem.chars().take(3).collect());
        let mut best: Option<(usize, u32, &String)> = None;
        for l in len.saturating_sub(max)..=len + max {
            for cand in self.vocab_by_len.get(&l).into_iter().flatten() {
                // Residents rarely misspell the first letter; requiring it avoids most
                // accidental corrections of words the catalog simply does not know.
                if cand.chars().next() != first {
                    continue;
                }
                if short_prefix
                    .as_deref()
                    .is_some_and(|p| !cand.starts_with(p))
                {
                    continue;
                }
                if let Some(d) = text::bounded_levenshtein(stem, cand, max) {
                    let df = self.vocab.get(cand).copied().unwrap_or(0);
                    let better = match best {
                        None => true,
                        Some((bd, bdf, _)) => d < bd || (d == bd && df > bdf),
                    };
                    if better {
                        best = Some((d, df, cand));
                    }
                }
            }
        }
        best.map(|(_, _, s)| s.clone())
    }

    /// Ranks the intents for a message's stems (the pipeline's analysis, synonyms applied).
    /// `allowed` filters intents out (validity dates).
    pub fn rank(&self, stems: &[String], allowed: impl Fn(usize) -> bool) -> Ranking {
        let mut seen = HashSet::new();
        let mut terms: Vec<QueryTerm> = Vec::new();
        let mut unknown_weight = 0.0f32;
        let (mut known, mut meaningful) = (0u32, 0u32);
        for s in stems {
            if !seen.insert(s.as_str()) {
                continue;
            }
            let alphabetic = s.chars().any(char::is_alphabetic);
            meaningful += u32::from(alphabetic);
            if self.vocab.contains_key(s) {
                known += u32::from(alphabetic && self.intent_df.contains_key(s));
                terms.push(QueryTerm {
                    stem: s.clone(),
                    weight: self.specificity(s),
                    fuzzy: false,
                });
            } else if let Some(fixed) = self.correct(s) {
                known += u32::from(alphabetic && self.intent_df.contains_key(&fixed));
                terms.push(QueryTerm {
                    weight: self.specificity(&fixed),
                    stem: fixed,
                    fuzzy: true,
                });
            } else if alphabetic {
                // A word the catalog has never seen: it counts against every intent.
                unknown_weight += UNKNOWN_WEIGHT;
            }
        }
        // Words only the out-of-scope examples use ("netflix", "gmail") are not known.
        let known = if meaningful == 0 {
            1.0
        } else {
            known as f32 / meaningful as f32
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in &terms {
            let q = TermQuery::new(
                Term::from_field_text(self.words, &t.stem),
                IndexRecordOption::WithFreqs,
            );
            let boost = if t.fuzzy { FUZZY_WEIGHT } else { 1.0 };
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
        }
        if clauses.is_empty() {
            return Ranking {
                candidates: Vec::new(),
                known,
            };
        }
        let searcher: Searcher = self.reader.searcher();
        let query = BooleanQuery::new(clauses);
        let hits = match searcher.search(&query, &TopDocs::with_limit(CANDIDATE_DOCS)) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "intent search failed");
                Vec::new()
            }
        };
        // Best document per intent, plus a little credit for a second matching example.
        let mut per_intent: HashMap<usize, (f32, f32)> = HashMap::new();
        for (score, addr) in hits {
            let Some(&ord) = self
                .doc_intent
                .get(addr.segment_ord as usize)
                .and_then(|v| v.get(addr.doc_id as usize))
            else {
                continue;
            };
            let ord = ord as usize;
            if ord != self.out_of_scope && !allowed(ord) {
                continue;
            }
            let e = per_intent.entry(ord).or_insert((0.0, 0.0));
            if score > e.0 {
                e.1 = e.0;
                e.0 = score;
            } else if score > e.1 {
                e.1 = score;
            }
        }
        let oos_score = per_intent
            .remove(&self.out_of_scope)
            .map(|(best, _)| best)
            .unwrap_or(0.0);
        let mut scored: Vec<(usize, f32)> = per_intent
            .into_iter()
            .map(|(ord, (best, second))| (ord, best + SECOND_EXAMPLE_CREDIT * second))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(MAX_CANDIDATES);

        let total_weight: f32 = terms.iter().map(|t| t.weight).sum::<f32>() + unknown_weight;
        let top_score = scored.first().map(|c| c.1).unwrap_or(1.0).max(f32::EPSILON);
        // A message closer to the out-of-scope examples than to any intent is damped so the
        // bot falls back instead of guessing.
        let damping = if oos_score > top_score * OUT_OF_SCOPE_MARGIN {
            OUT_OF_SCOPE_DAMPING
        } else {
            1.0
        };
        // BM25 finds the candidates; the final order weighs in the evidence too, so one
        // word specific to an intent ("cementerio") beats several common ones it lacks.
        let mut candidates: Vec<Candidate> = scored
            .iter()
            .map(|&(ord, score)| {
                let (coverage, anchor) = self.coverage(ord, &terms, total_weight);
                let relative = score / top_score;
                Candidate {
                    intent: ord,
                    score,
                    confidence: evidence(coverage, anchor, relative),
                    coverage,
                    anchor,
                    lead: 0.0,
                }
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(b.score.total_cmp(&a.score))
        });
        let best = candidates
            .first()
            .map(|c| c.confidence)
            .unwrap_or(0.0)
            .max(f32::EPSILON);
        let firsts: Vec<f32> = candidates.iter().map(|c| c.confidence).collect();
        for (i, c) in candidates.iter_mut().enumerate() {
            let next = firsts.get(i + 1).copied().unwrap_or(0.0);
            let lead = ((c.confidence - next) / best).clamp(0.0, 1.0);
            c.lead = lead;
            c.confidence = (c.confidence * (1.0 - LEAD_PENALTY + LEAD_PENALTY * lead) * damping)
                .clamp(0.0, 1.0);
        }
        Ranking { candidates, known }
    }

    /// Share of the message's evidence (specificity-weighted words) that intent `ord`
    /// explains, and its strongest single word.
    fn coverage(&self, ord: usize, terms: &[QueryTerm], total: f32) -> (f32, f32) {
        if total <= 0.0 {
            return (0.0, 0.0);
        }
        let known = &self.intent_stems[ord];
        let mut matched = 0.0;
        let mut anchor = 0.0f32;
        for t in terms.iter().filter(|t| known.contains(&t.stem)) {
            let w = if t.fuzzy {
                t.weight * FUZZY_WEIGHT
            } else {
                t.weight
            };
            matched += w;
            anchor = anchor.max(w);
        }
        let max_specificity = (1.0 + self.num_intents).ln();
        (matched / total, (anchor / max_specificity).min(1.0))
    }

    pub fn num_docs(&self) -> usize {
        self.num_docs as usize
    }
}

/// Evidence weight of a word the catalog does not know (about that of a word in two intents).
const UNKNOWN_WEIGHT: f32 = 3.0;
const SECOND_EXAMPLE_CREDIT: f32 = 0.25;
const MAX_CANDIDATES: usize = 6;

/// The evidence for an intent in [0, 1]: how much of the message it explains, how specific
/// its best word is, and its BM25 score relative to the best intent.
fn evidence(coverage: f32, anchor: f32, relative: f32) -> f32 {
    let e = COVERAGE_SHARE * coverage + (1.0 - COVERAGE_SHARE) * anchor;
    (e * relative.clamp(0.0, 1.0).sqrt()).clamp(0.0, 1.0)
}

const COVERAGE_SHARE: f32 = 0.7;
const OUT_OF_SCOPE_MARGIN: f32 = 0.9;
const OUT_OF_SCOPE_DAMPING: f32 = 0.4;
const LEAD_PENALTY: f32 = 0.15;

fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}
