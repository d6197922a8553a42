//! Catalog validation, validity dates and the evaluation figures, without HTTP.

mod common;

use std::path::Path;

use chrono::NaiveDate;
use ventanilla::chat::catalog::{self, load_with_findings};
use ventanilla::chat::engine::{Engine, Thresholds};
use ventanilla::chat::eval;

fn copy_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(common::intents_dir()).expect("dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let s = std::fs::read_to_string(&p).expect("read");
    assert!(s.contains(from), "{file} lacks {from:?}");
    std::fs::write(&p, s.replacen(from, to, 1)).expect("write");
}

fn messages(dir: &Path) -> Vec<String> {
    load_with_findings(dir)
        .1
        .iter()
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn shipped_catalog_is_clean_and_covers_every_topic() {
    let (cat, findings) = load_with_findings(&common::intents_dir());
    assert!(findings.is_empty(), "{findings:?}");
    let cat = cat.expect("catalog");
    for intent in &cat.intents {
        assert!(
            intent.examples.len() >= catalog::MIN_EXAMPLES,
            "{}",
            intent.id
        );
        assert!(
            !intent.answer.contains("{{"),
            "unfilled placeholder in {}",
            intent.id
        );
    }
}

#[test]
fn topics_match_the_shared_list() {
    // The catalog keeps its own copy of the topic list; it must not drift from the contract.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/intent-topics.tsv");
    let Ok(shared) = std::fs::read_to_string(shared) else {
        eprintln!("SKIPPED: ../shared/intent-topics.tsv not present");
        return;
    };
    let ours = std::fs::read_to_string(common::intents_dir().join("topics.tsv")).expect("ours");
    let ids = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(ids(&ours), ids(&shared));
}

#[test]
fn check_names_file_and_line_of_each_problem() {
    let dir = copy_catalog();
    edit(
        dir.path(),
        "50-servicios.toml",
        "topic = \"turismo\"",
        "topic = \"turismos\"",
    );
    let m = messages(dir.path());
    assert!(
        m.iter().any(
            |f| f.starts_with("50-servicios.toml:") && f.contains("unknown topic \"turismos\"")
        ),
        "{m:?}"
    );
    // Removing the only intent of a topic leaves it uncovered.
    assert!(
        m.iter().any(|f| f.contains("topic turismo has no intent")),
        "{m:?}"
    );

    let dir = copy_catalog();
    edit(
        dir.path(),
        "50-servicios.toml",
        "id = \"turismo\"",
        "id = \"salud\"",
    );
    assert!(messages(dir.path())
        .iter()
        .any(|f| f.contains("duplicate intent id salud")));

    let dir = copy_catalog();
    edit(
        dir.path(),
        "50-servicios.toml",
        "\"playas de la comuna\",",
        "\"horario del cementerio\",",
    );
    assert!(messages(dir.path())
        .iter()
        .any(|f| f.contains("\"horario del cementerio\" is in both cementerio and turismo")));

    let dir = copy_catalog();
    edit(
        dir.path(),
        "90-conversacion.toml",
        "answer = \"\"\"¡De nada!",
        "answer = \"\"\"  \"\"\"\nold = \"\"\"",
    );
    let m = messages(dir.path());
    assert!(
        m.iter().any(|f| f.starts_with("90-conversacion.toml:")),
        "{m:?}"
    );

    let dir = copy_catalog();
    edit(
        dir.path(),
        "90-conversacion.toml",
        "¡De nada!",
        "¡De nada, {{vecino}}!",
    );
    assert!(messages(dir.path())
        .iter()
        .any(|f| f.contains("unknown placeholder {{vecino}}")));

    let dir = copy_catalog();
    edit(
        dir.path(),
        "botonera.toml",
        "intent = \"licencia_conducir\"",
        "intent = \"licencias\"",
    );
    assert!(messages(dir.path())
        .iter()
        .any(|f| f.starts_with("botonera.toml:") && f.contains("unknown intent licencias")));

    let dir = copy_catalog();
    edit(
        dir.path(),
        "10-contacto.toml",
        "examples = [",
        "examples = [ 3,",
    );
    let m = messages(dir.path());
    assert!(
        m.iter().any(|f| f.starts_with("10-contacto.toml:")),
        "{m:?}"
    );
    assert!(catalog::load(dir.path()).is_err());
}

#[test]
fn seasonal_intents_answer_only_inside_their_window() {
    let engine = Engine::load(&common::intents_dir(), Thresholds::default()).expect("engine");
    let q = "campana de permisos de circulacion en marzo, donde estan los modulos";
    let march = NaiveDate::from_ymd_opt(2027, 3, 10).expect("date");
    let (_, m) = engine.understand(q, march);
    assert_eq!(m.intent.as_deref(), Some("permiso_circulacion_campana"));
    let june = NaiveDate::from_ymd_opt(2027, 6, 10).expect("date");
    let (_, m) = engine.understand(q, june);
    assert_ne!(m.intent.as_deref(), Some("permiso_circulacion_campana"));
    // Its button cannot be used out of season either.
    assert!(engine
        .click("intent:permiso_circulacion_campana", june)
        .is_err());
}

#[test]
fn eval_counts_are_exact_on_a_small_set() {
    let engine = Engine::load(&common::intents_dir(), Thresholds::default()).expect("engine");
    let tsv = "question\ttopic\n\
               horario de atencion de la municipalidad\thorario_atencion\n\
               telefono de la dideco\tcontacto_telefonos\n\
               quien gano el partido de tenis\t_fallback\n\
               cuanto vale un nicho en el cementerio\tsalud\n";
    let cases = eval::parse_tsv(tsv).expect("parse");
    assert_eq!(cases.len(), 4);
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let r = eval::evaluate(&engine, &cases, today);
    assert_eq!((r.in_scope, r.out_of_scope), (3, 1));
    assert_eq!(r.top1, 2, "the mislabelled cemetery line is a miss");
    assert_eq!(r.oos_caught, 1);
    assert_eq!(
        r.confusions
            .get(&("salud".to_string(), "cementerio".to_string())),
        Some(&1)
    );
    assert!(eval::parse_tsv("sin tabulador").is_err());
}

/// Runs the matcher over a `question<TAB>topic` file's text on a fixed day; the figures and
/// their printed report (shown when a bar is missed).
fn evaluate_tsv(src: &str) -> (eval::EvalReport, String) {
    let engine = Engine::load(&common::intents_dir(), Thresholds::default()).expect("engine");
    let cases = eval::parse_tsv(src).expect("parse");
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let r = eval::evaluate(&engine, &cases, today);
    let report = r.render(true);
    (r, report)
}

#[test]
fn dev_set_meets_the_bars() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/dev-questions.tsv");
    let Ok(src) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: {} not present", path.display());
        return;
    };
    let (r, report) = evaluate_tsv(&src);
    assert!(r.top1_accuracy() >= 0.90, "{report}");
    assert!(r.top3_accuracy() >= 0.97, "{report}");
    assert!(r.oos_recall() >= 0.80, "{report}");
    assert!(r.false_fallback_rate() <= 0.05, "{report}");
}

/// Our own held-out messages (tests/data/holdout.tsv), written apart from the catalog and the
/// shared set, so a change that only memorises the dev set shows up here.
#[test]
fn holdout_set_meets_the_bars() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/holdout.tsv"),
    )
    .expect("holdout");
    let (r, report) = evaluate_tsv(&src);
    assert!(r.top1_accuracy() >= 0.90, "{report}");
    assert!(r.top3_accuracy() >= 0.97, "{report}");
    assert!(r.oos_recall() >= 0.80, "{report}");
    assert!(r.false_fallback_rate() <= 0.05, "{report}");
}

/// Messages written while reviewing the catalog (tests/data/regression.tsv, one per topic
/// and phrasing style). The catalog was improved with their misses, so they are not an
/// unseen estimate like the held-out set: they guard those fixes against regressions.
#[test]
fn regression_set_stays_fixed() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/regression.tsv"),
    )
    .expect("regression set");
    let (r, report) = evaluate_tsv(&src);
    assert!(r.top1_accuracy() >= 0.95, "{report}");
    assert!(r.top3_accuracy() >= 0.98, "{report}");
    assert_eq!(r.oos_recall(), 1.0, "{report}");
    assert_eq!(r.false_fallback_rate(), 0.0, "{report}");
}
