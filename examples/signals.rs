//! Prints the decision signals of every line of labelled files (expected topic first), for
//! studying the decision rule on tuning sets. Never run it on a held-out set.
//!
//!     cargo run --release --example signals -- FILE.tsv... > signals.tsv

use chrono::NaiveDate;
use ventanilla::chat::engine::{Engine, Thresholds};
use ventanilla::chat::eval;

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let engine = Engine::load(&dir, Thresholds::default())?;
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    for f in std::env::args().skip(1) {
        for (q, expected) in eval::parse_tsv(&std::fs::read_to_string(&f)?)? {
            println!("{f}\t{expected}\t{}\t{q}", engine.signals(&q, today));
        }
    }
    Ok(())
}
