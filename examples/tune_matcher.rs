//! Trains the classifier with several options and prints the evaluation figures on the
//! tuning sets, for choosing `TrainOptions` and the thresholds. Never run it on a held-out set.
//!
//!     cargo run --release --example tune_matcher -- FILE.tsv...

use chrono::NaiveDate;
use ventanilla::chat::catalog;
use ventanilla::chat::classifier::TrainOptions;
use ventanilla::chat::engine::{Engine, Thresholds};
use ventanilla::chat::eval;

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::var("CATALOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"));
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let sets: Vec<(String, Vec<(String, String)>)> = files
        .iter()
        .map(|f| Ok((f.clone(), eval::parse_tsv(&std::fs::read_to_string(f)?)?)))
        .collect::<anyhow::Result<_>>()?;
    let grid: Vec<(usize, f32, f32)> = std::env::var("GRID")
        .ok()
        .map(|g| {
            g.split(';')
                .filter_map(|t| {
                    let v: Vec<&str> = t.split(',').collect();
                    Some((
                        v.first()?.parse().ok()?,
                        v.get(1)?.parse().ok()?,
                        v.get(2)?.parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_else(|| {
            let d = TrainOptions::default();
            vec![(d.epochs, d.lambda, d.eta0)]
        });
    let d = Thresholds::default();
    let thresholds = Thresholds {
        answer: std::env::var("ANSWER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.answer),
        suggest: std::env::var("SUGGEST")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.suggest),
    };
    for (epochs, lambda, eta0) in grid {
        let options = TrainOptions {
            epochs,
            lambda,
            eta0,
            ..TrainOptions::default()
        };
        let t = std::time::Instant::now();
        let engine = Engine::with_options(catalog::load(&dir)?, thresholds, &options)?;
        let ms = t.elapsed().as_millis();
        let f = engine.matcher.fold_report();
        println!(
            "epochs {epochs} lambda {lambda} eta0 {eta0}: folds {:.3} T {:.2} ({ms} ms)",
            f.accuracy, f.temperature
        );
        if let Ok(probe) = std::env::var("PROBE") {
            print!("{}", engine.explain(&probe, today));
        }
        for (name, cases) in &sets {
            let r = eval::evaluate(&engine, cases, today);
            println!(
                "  {name:<40} ans {:.3} prec {:.3} top1 {:.3} offered {:.3} ff {:.3} | oos fb {:.3} ans {:.3}",
                r.answer_rate(), r.answer_precision(), r.top1_accuracy(), r.offered_accuracy(),
                r.false_fallback_rate(), r.oos_fallback_rate(), r.oos_answered_rate()
            );
        }
    }
    Ok(())
}
