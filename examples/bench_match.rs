//! In-process matching latency over a labelled TSV (default: ../shared/dev-questions.tsv),
//! with the full catalog. Prints p50/p99/max per message and, as a noise-resistant figure,
//! the ratio against a baseline measured in the same run: normalising the same messages
//! (lower-casing, accent folding, synonyms) without searching.
//!
//!     cargo run --release --example bench_match [FILE.tsv] [ROUNDS]

use std::time::Instant;

use chrono::NaiveDate;
use ventanilla::chat::engine::{Engine, Thresholds};
use ventanilla::chat::eval;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "../shared/dev-questions.tsv".into());
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let t = Instant::now();
    let engine = Engine::load(&dir, Thresholds::default())?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let cases = eval::parse_tsv(&std::fs::read_to_string(&file)?)?;
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");

    // Warm up.
    for (q, _) in &cases {
        std::hint::black_box(engine.understand(q, today));
    }
    let mut match_us = Vec::with_capacity(cases.len() * rounds);
    let mut base_us = Vec::with_capacity(cases.len() * rounds);
    let synonyms = engine.matcher.synonyms().clone();
    for _ in 0..rounds {
        for (q, _) in &cases {
            let t = Instant::now();
            std::hint::black_box(synonyms.expand(q));
            base_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(engine.understand(q, today));
            match_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    match_us.sort_by(f64::total_cmp);
    base_us.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&match_us, 0.5),
        percentile(&match_us, 0.99),
        match_us[match_us.len() - 1],
    );
    let b50 = percentile(&base_us, 0.5);
    println!(
        "catalog: {} intents, {} documents, index built in {build_ms:.1} ms",
        engine.catalog.intents.len(),
        engine.matcher.num_docs()
    );
    println!("messages: {} x {rounds} rounds", cases.len());
    println!("match latency   p50 {p50:>8.1} us   p99 {p99:>8.1} us   max {max:>8.1} us   (goal p99 <= 300 us)");
    println!(
        "baseline (normalise only) p50 {b50:.1} us; match p50 = {:.1} x baseline",
        p50 / b50.max(0.001)
    );
    Ok(())
}
