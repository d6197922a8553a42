//! The catalog review's overlay of the catalog files: examples taught from the console (a text
//! assigned to an intent, or marked out of scope) and new intents written there. It lives in
//! the database, so every instance merges the same overlay when its catalog loads; the files
//! stay what the repository has until `ventanilla intents export` hands the overlay back.
//!
//! A taught example goes into the BM25 index and into an exact-text memory checked before the
//! classifier (so the text is answered at once, as taught); the classifier is never retrained
//! with it (retraining reorders the training and moves every figure a little by chance).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use utoipa::ToSchema;

use super::catalog::{fill_placeholders, Catalog, Finding, Intent};
use super::text;
use crate::store::{Store, StoreError};
use crate::with_pool;

/// Where overlay entries are said to come from in findings and in loaded intents.
pub const OVERLAY_FILE: &str = "overlay (database)";

/// What a taught text does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taught {
    /// Answered with this intent.
    Intent(String),
    /// Not the municipality's business: the assistant falls back.
    OutOfScope,
}

/// An example added in the review.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TaughtExample {
    pub id: i64,
    /// The intent it is an example of; null = out of scope.
    pub intent: Option<String>,
    pub text: String,
    pub created_by: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A new intent written in the review.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DraftIntent {
    pub id: String,
    pub topic: String,
    pub title: String,
    /// With the profile's `{{placeholders}}` as written.
    pub answer: String,
    pub buttons: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    pub examples: Vec<TaughtExample>,
    pub intents: Vec<DraftIntent>,
}

/// The key a text is taught under: its folded words (case, accents, punctuation and
/// stretched letters do not count).
pub fn normalize(s: &str) -> String {
    text::words(s).join(" ")
}

/// The files with an overlay merged in.
pub struct Applied {
    /// The catalog the conversation reads: files plus new intents (after the files' intents,
    /// so the classifier's numbering stays) and taught examples.
    pub catalog: Catalog,
    /// What the BM25 index is built from: the files' intents with their taught examples, and
    /// the out-of-scope examples with the texts marked out of scope. New intents are known by
    /// their taught texts only (the classifier has no class for them).
    pub index_catalog: Catalog,
    pub taught: HashMap<String, Taught>,
    /// Overlay entries left out because they no longer fit the files.
    pub findings: Vec<Finding>,
}

/// Why a new intent cannot be: (field, message).
pub type DraftProblem = (&'static str, String);

/// Checks a new intent against the files (as `intents check` checks the files' intents) and
/// returns it as the catalog holds intents (answer with the placeholders filled).
pub fn check_draft(files: &Catalog, draft: &DraftIntent) -> Result<Intent, Vec<DraftProblem>> {
    let mut problems: Vec<DraftProblem> = Vec::new();
    if files.intent(&draft.id).is_some() {
        problems.push((
            "id",
            format!("the catalog files already have an intent {:?}", draft.id),
        ));
    }
    if files.topic(&draft.topic).is_none() {
        problems.push(("topic", format!("unknown topic {:?}", draft.topic)));
    }
    if draft.title.trim().is_empty() {
        problems.push(("title", "the title is empty".into()));
    }
    if draft.answer.trim().is_empty() {
        problems.push(("answer", "the answer is empty".into()));
    }
    let (answer, unknown) = fill_placeholders(&files.profile, &draft.answer);
    problems.extend(unknown.into_iter().map(|m| ("answer", m)));
    let register = files.register();
    if let Some(w) = register.foreign_word(&answer) {
        problems.push((
            "answer",
            format!(
                "the answer says {w:?}, but the profile's trato is {:?}",
                register.as_str()
            ),
        ));
    }
    for b in &draft.buttons {
        if b != super::engine::MENU_BUTTON && files.botonera.get(b).is_none() {
            problems.push(("buttons", format!("unknown button {b:?}")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Intent {
        id: draft.id.clone(),
        title: draft.title.trim().to_string(),
        topic: draft.topic.clone(),
        department: None,
        examples: Vec::new(),
        keywords: Vec::new(),
        answer,
        links: Vec::new(),
        buttons: draft.buttons.clone(),
        valid_from: None,
        valid_to: None,
        file: OVERLAY_FILE.into(),
        line: 0,
    })
}

fn finding(message: String) -> Finding {
    Finding {
        file: OVERLAY_FILE.into(),
        line: None,
        message,
    }
}

/// Merges `overlay` into the files' catalog.
pub fn apply(files: &Catalog, overlay: &Overlay) -> Applied {
    let mut catalog = files.clone();
    let mut index_catalog = files.clone();
    let mut findings = Vec::new();
    let known = files.intents.len();
    for draft in &overlay.intents {
        match check_draft(files, draft) {
            Ok(intent) => catalog.intents.push(intent),
            Err(problems) => findings.extend(
                problems
                    .into_iter()
                    .map(|(field, m)| finding(format!("new intent {}: {field}: {m}", draft.id))),
            ),
        }
    }
    let mut taught = HashMap::new();
    for ex in &overlay.examples {
        let key = normalize(&ex.text);
        if key.is_empty() {
            continue;
        }
        match &ex.intent {
            None => {
                index_catalog.out_of_scope.push(ex.text.clone());
                catalog.out_of_scope.push(ex.text.clone());
                taught.insert(key, Taught::OutOfScope);
            }
            Some(id) => match catalog.ordinal(id) {
                Some(ord) => {
                    if ord < known {
                        index_catalog.intents[ord].examples.push(ex.text.clone());
                    }
                    catalog.intents[ord].examples.push(ex.text.clone());
                    taught.insert(key, Taught::Intent(id.clone()));
                }
                None => findings.push(finding(format!(
                    "example {}: unknown intent {id:?} (left out)",
                    ex.id
                ))),
            },
        }
    }
    Applied {
        catalog,
        index_catalog,
        taught,
        findings,
    }
}

/// Reads the overlay from the store.
pub async fn load(store: &Store) -> Result<Overlay, StoreError> {
    type ExampleRow = (i64, Option<String>, String, String, i64);
    type IntentRow = (String, String, String, String, String, String, i64, i64);
    let examples: Vec<ExampleRow> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, intent, text, created_by, created_at FROM catalog_examples ORDER BY id",
        )
        .fetch_all(pool)
        .await?
    });
    let intents: Vec<IntentRow> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, topic, title, answer, buttons, created_by, created_at, updated_at \
             FROM catalog_intents ORDER BY created_at, id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(Overlay {
        examples: examples
            .into_iter()
            .map(|(id, intent, text, created_by, created_at)| TaughtExample {
                id,
                intent,
                text,
                created_by,
                created_at,
            })
            .collect(),
        intents: intents
            .into_iter()
            .map(
                |(id, topic, title, answer, buttons, created_by, created_at, updated_at)| {
                    DraftIntent {
                        id,
                        topic,
                        title,
                        answer,
                        buttons: serde_json::from_str(&buttons).unwrap_or_default(),
                        created_by,
                        created_at,
                        updated_at,
                    }
                },
            )
            .collect(),
    })
}

/// A TOML basic string: JSON's escapes are a subset of TOML's.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The overlay in the catalog's file format, one file name → contents: new intents (with their
/// taught examples) in `95-revision.toml`, examples taught to the files' intents in
/// `revision-ejemplos.toml` (to copy into each intent's `examples`), and texts marked out of
/// scope in `revision-fuera-de-ambito.toml` (to add to `fuera_de_ambito.toml`).
pub fn export(files: &Catalog, overlay: &Overlay) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let new_ids: HashSet<&str> = overlay.intents.iter().map(|d| d.id.as_str()).collect();
    let examples_of = |id: &str| -> Vec<String> {
        overlay
            .examples
            .iter()
            .filter(|e| e.intent.as_deref() == Some(id))
            .map(|e| e.text.clone())
            .collect()
    };
    if !overlay.intents.is_empty() {
        let mut s = String::from(
            "# New intents written in the console's catalog review (ventanilla intents export).\n\
             # Each needs at least 8 examples before `intents check` accepts it in the files.\n",
        );
        for d in &overlay.intents {
            let _ = write!(
                s,
                "\n[[intent]]\nid = {}\ntitle = {}\ntopic = {}\nexamples = {}\nanswer = {}\nbuttons = {}\n",
                toml_string(&d.id),
                toml_string(&d.title),
                toml_string(&d.topic),
                toml_list(&examples_of(&d.id)),
                toml_string(&d.answer),
                toml_list(&d.buttons),
            );
        }
        out.insert("95-revision.toml".into(), s);
    }
    let mut by_intent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &overlay.examples {
        if let Some(id) = &e.intent {
            if !new_ids.contains(id.as_str()) {
                by_intent
                    .entry(id.clone())
                    .or_default()
                    .push(e.text.clone());
            }
        }
    }
    if !by_intent.is_empty() {
        let mut s = String::from(
            "# Examples taught in the console's catalog review: add each list to the intent's\n\
             # `examples` in its file (named above it).\n[examples]\n",
        );
        for (id, texts) in by_intent {
            let file = files
                .intent(&id)
                .map(|i| format!("{}:{}", i.file, i.line))
                .unwrap_or_else(|| "unknown intent".into());
            let _ = write!(
                s,
                "# {file}\n{} = {}\n",
                toml_string(&id),
                toml_list(&texts)
            );
        }
        out.insert("revision-ejemplos.toml".into(), s);
    }
    let oos: Vec<String> = overlay
        .examples
        .iter()
        .filter(|e| e.intent.is_none())
        .map(|e| e.text.clone())
        .collect();
    if !oos.is_empty() {
        out.insert(
            "revision-fuera-de-ambito.toml".into(),
            format!(
                "# Texts marked out of scope in the console's catalog review: add them to\n\
                 # fuera_de_ambito.toml.\nexamples = {}\n",
                toml_list(&oos)
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_accents_and_punctuation() {
        assert_eq!(
            normalize("¿Dónde  ESTÁ el Cementerio?"),
            normalize("donde esta el cementerio")
        );
        assert_ne!(
            normalize("donde esta el cementerio"),
            normalize("donde esta el consultorio")
        );
    }
}
