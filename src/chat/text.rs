//! How residents write, made comparable: lower case, accents folded, stretched letters
//! ("holaaa", "corrreo") shortened, chat spellings ("muni", "dnd", "q") mapped to words by the
//! catalog's synonyms. Stemming happens afterwards in the tantivy analyzer.

use std::collections::HashMap;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, SimpleTokenizer, Stemmer, StopWordFilter,
    TextAnalyzer,
};

/// Spanish function words that carry no topic. "no" and "sin" are kept on purpose: "no me
/// llegó", "no pasan" and "sin luz" describe the problem.
pub const STOP_WORDS: &[&str] = &[
    "a", "al", "algo", "algun", "alguna", "alguno", "ante", "aqui", "asi", "cada", "como", "con",
    "cual", "cuales", "cuando", "de", "del", "desde", "e", "el", "ella", "ellos", "en", "entre",
    "era", "eres", "es", "esa", "ese", "eso", "esta", "estan", "estas", "este", "esto", "estoy",
    "fue", "ha", "hay", "he", "la", "las", "le", "les", "lo", "los", "me", "mi", "mis", "muy",
    "nos", "o", "otra", "otro", "para", "pero", "por", "porque", "puedo", "que", "se", "ser", "si",
    "sobre", "su", "sus", "tambien", "te", "tengo", "ti", "tu", "tus", "u", "un", "una", "uno",
    "unos", "unas", "usted", "ustedes", "y", "ya", "yo", "necesito", "quiero", "quisiera", "saber",
    "favor", "porfa", "porfavor", "po", "hacer", "puede", "pueden", "podria", "donde", "hola",
    "buenas", "buenos", "tardes", "noches", "dias", "gracias", "tiene", "tienen", "tienes", "van",
    "va", "ver",
];

/// Words that only greet or say goodbye. They are stop words for topic matching but decide
/// the intent when a message holds nothing else.
/// Small talk: a message made only of these words, with at least one word of the first list,
/// is a greeting (or a farewell). The second list holds words that only count beside one of the
/// first ("buenos *días*", "gracias por la *ayuda*"): "ayuda" alone is a request, not thanks.
pub const GREETINGS: (&[&str], &[&str]) = (
    &[
        "hola", "ola", "holi", "buenas", "buenos", "saludos", "alo", "wena", "wenas", "alguien",
        "hello", "hi",
    ],
    &["dias", "tardes", "noches", "hay"],
);
pub const FAREWELLS: (&[&str], &[&str]) = (
    &[
        "gracias",
        "chao",
        "chau",
        "adios",
        "hasta",
        "luego",
        "listo",
        "bye",
        "vemos",
        "amable",
        "vale",
        "ok",
        "oka",
        "bkn",
        "bacan",
        "genial",
        "perfecto",
        "excelente",
        "super",
    ],
    &[
        "muchas", "pronto", "ya", "po", "eso", "era", "todo", "nos", "que", "tenga", "tengas",
        "buen", "dia", "ayuda", "por", "la", "el", "mil",
    ],
);

pub const ANALYZER: &str = "es";

/// The analyzer used for both catalog examples and resident messages.
pub fn spanish_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|s| s.to_string()),
        ))
        .filter(Stemmer::new(Language::Spanish))
        .build()
}

fn fold_char(c: char) -> char {
    match c {
        'á' | 'à' | 'ä' | 'â' => 'a',
        'é' | 'è' | 'ë' | 'ê' => 'e',
        'í' | 'ì' | 'ï' | 'î' => 'i',
        'ó' | 'ò' | 'ö' | 'ô' => 'o',
        'ú' | 'ù' | 'ü' | 'û' => 'u',
        'ñ' => 'n',
        c => c,
    }
}

/// A key that sorts Spanish labels as a reader expects: accents and case ignored, so
/// "Áreas verdes" comes with the A's, not after the Z's.
pub fn sort_key(label: &str) -> String {
    label
        .chars()
        .flat_map(char::to_lowercase)
        .map(fold_char)
        .collect()
}

/// Lower-cases, folds accents and splits into words of letters and digits; runs of three or
/// more equal letters are cut to two ("holaaa" → "holaa", "corrreo" → "correo").
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut last: Option<char> = None;
    let mut run = 0;
    for raw in text.chars().flat_map(char::to_lowercase) {
        let c = fold_char(raw);
        if c.is_alphanumeric() {
            if Some(c) == last {
                run += 1;
            } else {
                run = 1;
            }
            last = Some(c);
            if run <= 2 || c.is_ascii_digit() {
                cur.push(c);
            }
        } else {
            last = None;
            run = 0;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Word-level replacements from the catalog (`muni` → `municipalidad`).
#[derive(Clone, Debug, Default)]
pub struct Synonyms {
    map: HashMap<String, Vec<String>>,
}

impl Synonyms {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let map = pairs
            .into_iter()
            .map(|(from, to)| {
                let from = words(&from).join(" ");
                (from, words(&to))
            })
            .collect();
        Self { map }
    }

    /// Normalised words with synonyms applied. Also collapses doubled trailing vowels that
    /// chat writing adds ("holaa") when the shortened word is a known synonym or greeting.
    pub fn expand(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for w in words(text) {
            match self.map.get(&w) {
                Some(repl) => out.extend(repl.iter().cloned()),
                None => out.push(w),
            }
        }
        out
    }
}

/// Finds an OIRS folio (`OIRS-2026-000123`) in a message.
pub fn find_folio(text: &str) -> Option<String> {
    let upper = text.to_uppercase();
    let bytes = upper.as_bytes();
    let mut from = 0;
    while let Some(pos) = upper[from..].find("OIRS-") {
        let start = from + pos;
        let rest = &bytes[start + 5..];
        let year_ok =
            rest.len() >= 6 && rest[..4].iter().all(u8::is_ascii_digit) && rest[4] == b'-';
        if year_ok {
            let digits = rest[5..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits >= 1 {
                return Some(upper[start..start + 10 + digits].to_string());
            }
        }
        from = start + 5;
    }
    None
}

/// Whether every word of the message belongs to `set` (and there is at least one).
/// A doubled last letter ("holaa", "chaoo") is read as the plain word.
pub fn only_words_from(words: &[String], (core, fillers): (&[&str], &[&str])) -> bool {
    // A word matches a list also with its last letter stretched ("holaa", "graciass").
    let in_list = |w: &str, list: &[&str]| {
        if list.contains(&w) {
            return true;
        }
        let chars: Vec<char> = w.chars().collect();
        let n = chars.len();
        n >= 3 && chars[n - 1] == chars[n - 2] && {
            let shorter: String = chars[..n - 1].iter().collect();
            list.contains(&shorter.as_str())
        }
    };
    words.iter().any(|w| in_list(w, core))
        && words
            .iter()
            .all(|w| in_list(w, core) || in_list(w, fillers))
}

/// Optimal-string-alignment distance (adjacent transpositions count as one edit, so
/// "recalmo" is one edit from "reclamo") with a cap: `None` once it exceeds `max`.
pub fn bounded_levenshtein(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= max).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_accents_and_stretching() {
        assert_eq!(
            words("¿Dónde queda la DOM?"),
            ["donde", "queda", "la", "dom"]
        );
        assert_eq!(words("holaaaa corrreo Ñuble"), ["holaa", "correo", "nuble"]);
        assert_eq!(words("OIRS-2026-000123"), ["oirs", "2026", "000123"]);
    }

    #[test]
    fn labels_sort_with_spanish_collation() {
        let mut v = vec!["Vivienda", "Áreas verdes", "Becas", "Ñandú", "alumbrado"];
        v.sort_by_key(|l| sort_key(l));
        assert_eq!(
            v,
            ["alumbrado", "Áreas verdes", "Becas", "Ñandú", "Vivienda"]
        );
    }

    #[test]
    fn synonyms_replace_words() {
        let s = Synonyms::new([
            ("muni".to_string(), "municipalidad".to_string()),
            ("dnd".to_string(), "donde".to_string()),
        ]);
        assert_eq!(
            s.expand("dnd queda la muni"),
            ["donde", "queda", "la", "municipalidad"]
        );
    }

    #[test]
    fn greetings_tolerate_stretched_words() {
        let w = |s: &str| words(s);
        assert!(only_words_from(&w("holaa"), GREETINGS));
        assert!(only_words_from(&w("hola buenas"), GREETINGS));
        assert!(!only_words_from(&w("hola necesito ayuda"), GREETINGS));
        assert!(!only_words_from(&[], GREETINGS));
        assert!(only_words_from(&w("buenos dias"), GREETINGS));
        assert!(only_words_from(
            &w("muchas gracias por la ayuda"),
            FAREWELLS
        ));
        assert!(only_words_from(&w("graciass"), FAREWELLS));
        // Filler words alone are not small talk: "ayuda" is a request for help.
        assert!(!only_words_from(&w("ayuda"), FAREWELLS));
        assert!(!only_words_from(&w("por favor ayuda"), FAREWELLS));
        assert!(!only_words_from(&w("tardes"), GREETINGS));
    }

    #[test]
    fn folio_is_found_anywhere() {
        assert_eq!(
            find_folio("mi folio es oirs-2025-000482 gracias").as_deref(),
            Some("OIRS-2025-000482")
        );
        assert_eq!(find_folio("OIRS-20-1"), None);
        assert_eq!(find_folio("nada"), None);
    }

    #[test]
    fn levenshtein_caps_and_transpositions() {
        assert_eq!(bounded_levenshtein("reclam", "recalm", 1), Some(1));
        assert_eq!(bounded_levenshtein("licenci", "lisenci", 1), Some(1));
        assert_eq!(bounded_levenshtein("permis", "patent", 2), None);
        assert_eq!(bounded_levenshtein("abc", "abc", 0), Some(0));
    }

    #[test]
    fn analyzer_stems_and_keeps_no() {
        let mut a = spanish_analyzer();
        let mut stream = a.token_stream("No me llegaron los permisos");
        let mut toks = Vec::new();
        while stream.advance() {
            toks.push(stream.token().text.clone());
        }
        assert!(toks.contains(&"no".to_string()), "{toks:?}");
        assert!(toks.iter().any(|t| t.starts_with("permis")), "{toks:?}");
        assert!(!toks.contains(&"los".to_string()));
    }
}
