//! What the intent classifier sees of a message: its stemmed words, pairs of consecutive
//! words and the character n-grams (2 to 5, within words) of each word, weighted by TF-IDF
//! learnt from the catalog. Character n-grams are what let "lisencia", "licensia" and
//! "licencias" meet; word pairs tell "permiso de circulacion" from "permiso de edificacion".

use std::collections::HashMap;

use tantivy::tokenizer::TextAnalyzer;

use super::text::{self, Synonyms};

/// A sparse, L2-normalised feature vector: (feature index, value), indices ascending.
pub type SparseVec = Vec<(u32, f32)>;

const WORD: u8 = b'w';
const PAIR: u8 = b'p';
const CHARS: u8 = b'c';
const MIN_GRAM: usize = 2;
const MAX_GRAM: usize = 5;
/// Share of the vector's weight given to the character n-grams (the rest to words and pairs).
const CHAR_SHARE: f32 = 0.5;

/// A message reduced to the pieces the classifier and the follow-up rules use.
#[derive(Clone, Debug, Default)]
pub struct Analyzed {
    /// Folded words after synonyms ("muni" → "municipalidad").
    pub words: Vec<String>,
    /// Stems of the words that carry meaning (stop words removed).
    pub stems: Vec<String>,
}

/// Turns text into words and stems, the same way for the catalog and for messages.
#[derive(Clone)]
pub struct TextPipeline {
    analyzer: TextAnalyzer,
    synonyms: Synonyms,
}

impl TextPipeline {
    pub fn new(synonyms: Synonyms) -> Self {
        Self {
            analyzer: text::spanish_analyzer(),
            synonyms,
        }
    }

    pub fn synonyms(&self) -> &Synonyms {
        &self.synonyms
    }

    pub fn analyze(&self, message: &str) -> Analyzed {
        let words = self.synonyms.expand(message);
        let stems = self.stem(&words.join(" "));
        Analyzed { words, stems }
    }

    /// Stems of a text already folded, stop words removed.
    pub fn stem(&self, joined: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut out = Vec::new();
        let mut stream = analyzer.token_stream(joined);
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }
}

/// FNV-1a over a group tag and the feature's bytes: features are kept as 64-bit hashes, not
/// strings, so looking one up costs no allocation.
fn hash(group: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(group);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            eat(b' ');
        }
        for &b in p.as_bytes() {
            eat(b);
        }
    }
    h
}

/// Raw features of an analysed message, as (hash, is_char_gram), repeats kept (they are
/// counted as term frequency).
fn raw_features(a: &Analyzed) -> Vec<(u64, bool)> {
    let mut out = Vec::with_capacity(a.stems.len() * 2 + a.words.len() * 16);
    for s in &a.stems {
        out.push((hash(WORD, &[s]), false));
    }
    for pair in a.stems.windows(2) {
        out.push((hash(PAIR, &[&pair[0], &pair[1]]), false));
    }
    let mut buf: Vec<u8> = Vec::with_capacity(32);
    for w in &a.words {
        if text::STOP_WORDS.contains(&w.as_str()) || !w.is_ascii() {
            continue;
        }
        buf.clear();
        buf.push(b'^');
        buf.extend_from_slice(w.as_bytes());
        buf.push(b'$');
        for n in MIN_GRAM..=MAX_GRAM {
            if n > buf.len() {
                break;
            }
            for g in buf.windows(n) {
                // A gram made only of the padding and one letter says little.
                if n == 2 && (g[0] == b'^' || g[1] == b'$') {
                    continue;
                }
                let gram = std::str::from_utf8(g).unwrap_or("");
                out.push((hash(CHARS, &[gram]), true));
            }
        }
    }
    out
}

/// The feature space learnt from the catalog: which features exist and how informative each
/// is (inverse document frequency).
#[derive(Clone)]
pub struct Vocabulary {
    index: HashMap<u64, u32>,
    idf: Vec<f32>,
    is_char: Vec<bool>,
}

impl Vocabulary {
    /// Learns the features of `docs` (already analysed).
    pub fn learn(docs: &[Analyzed]) -> Self {
        let mut index: HashMap<u64, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        let mut is_char: Vec<bool> = Vec::new();
        for d in docs {
            let mut feats = raw_features(d);
            feats.sort_unstable();
            feats.dedup();
            for (h, c) in feats {
                let next = index.len() as u32;
                let i = *index.entry(h).or_insert(next);
                if i as usize == df.len() {
                    df.push(0);
                    is_char.push(c);
                }
                df[i as usize] += 1;
            }
        }
        let n = docs.len().max(1) as f32;
        let idf = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        Self {
            index,
            idf,
            is_char,
        }
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The TF-IDF vector of an analysed message over the known features (unknown ones are
    /// dropped), words and character n-grams each normalised, then the whole to unit length.
    pub fn vectorize(&self, a: &Analyzed) -> SparseVec {
        let mut known: Vec<u32> = raw_features(a)
            .into_iter()
            .filter_map(|(h, _)| self.index.get(&h).copied())
            .collect();
        known.sort_unstable();
        let mut v: SparseVec = Vec::with_capacity(known.len());
        for i in known {
            match v.last_mut() {
                Some((j, tf)) if *j == i => *tf += 1.0,
                _ => v.push((i, 1.0)),
            }
        }
        for (i, x) in v.iter_mut() {
            *x = (1.0 + x.ln()) * self.idf[*i as usize];
        }
        let (mut word_norm, mut char_norm) = (0.0f32, 0.0f32);
        for &(i, x) in &v {
            if self.is_char[i as usize] {
                char_norm += x * x;
            } else {
                word_norm += x * x;
            }
        }
        let (word_norm, char_norm) = (word_norm.sqrt(), char_norm.sqrt());
        let (ws, cs) = (1.0 - CHAR_SHARE, CHAR_SHARE);
        for (i, x) in v.iter_mut() {
            if self.is_char[*i as usize] {
                *x *= cs.sqrt() / char_norm.max(f32::EPSILON);
            } else {
                *x *= ws.sqrt() / word_norm.max(f32::EPSILON);
            }
        }
        let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, x) in v.iter_mut() {
                *x /= norm;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> TextPipeline {
        TextPipeline::new(Synonyms::new([(
            "muni".to_string(),
            "municipalidad".to_string(),
        )]))
    }

    #[test]
    fn misspelt_words_share_most_character_grams() {
        let p = pipeline();
        let docs = [
            p.analyze("licencia de conducir"),
            p.analyze("horario de la municipalidad"),
        ];
        let vocab = Vocabulary::learn(&docs);
        let typo = vocab.vectorize(&p.analyze("lisencia"));
        let other = vocab.vectorize(&p.analyze("horario"));
        let licence = vocab.vectorize(&docs[0]);
        let dot = |a: &SparseVec, b: &SparseVec| -> f32 {
            a.iter()
                .filter_map(|(i, x)| b.iter().find(|(j, _)| j == i).map(|(_, y)| x * y))
                .sum()
        };
        assert!(dot(&typo, &licence) > 0.3, "{}", dot(&typo, &licence));
        assert_eq!(dot(&other, &licence), 0.0);
    }

    #[test]
    fn vectors_are_unit_length_and_unknown_text_is_empty() {
        let p = pipeline();
        let docs = [p.analyze("horario de la muni")];
        let vocab = Vocabulary::learn(&docs);
        let v = vocab.vectorize(&p.analyze("horario municipalidad"));
        let norm: f32 = v.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert!(vocab.vectorize(&p.analyze("zzz qqq")).is_empty());
    }
}
