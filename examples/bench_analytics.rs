//! Analytics benchmarks: batched ingest rate on SQLite (events/s through the same batch
//! insert the recorder uses) and the monthly report over a large month (default 1,000,000
//! events), each also as a ratio against a plain `SELECT COUNT(*)` over the same table in the
//! same run.
//!
//!     cargo run --release --example bench_analytics [EVENTS] [DATABASE_URL]

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use ventanilla::analytics::aggregate::BusinessHours;
use ventanilla::analytics::recorder::insert_batch;
use ventanilla::analytics::report::{self, ReportInput};
use ventanilla::analytics::{Interaction, InteractionKind};
use ventanilla::chat::catalog;
use ventanilla::oirs::service;
use ventanilla::store::Store;
use ventanilla::with_pool;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!(
        "ventanilla-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/analytics.db", dir.display()));
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let soft = store.relaxed_twin(&url).await?;
    let tz: chrono_tz::Tz = "America/Santiago".parse().expect("tz");
    let cat = catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let children: Vec<(String, String)> = cat
        .botonera
        .buttons
        .values()
        .filter_map(|b| b.parent.clone().map(|p| (b.id.clone(), p)))
        .collect();

    // April 2026, spread over the month, a mix of messages and clicks.
    let start = Utc
        .with_ymd_and_hms(2026, 4, 1, 4, 0, 0)
        .single()
        .expect("start");
    let step = (29.0 * 86_400.0 / n as f64 * 1000.0) as i64;
    let make = |i: usize| {
        let at = start + Duration::milliseconds(step * i as i64);
        let session = Some(format!("s{}", i / 6));
        if i % 3 == 0 {
            let (b, p) = &children[i % children.len()];
            Interaction {
                occurred_at: at,
                session_id: session,
                kind: InteractionKind::Button,
                button_id: Some(b.clone()),
                parent_id: Some(p.clone()),
                ..Interaction::default()
            }
        } else {
            Interaction {
                occurred_at: at,
                session_id: session,
                kind: InteractionKind::Message,
                intent: Some("horario_atencion".into()),
                topic: Some("horario_atencion".into()),
                confidence: Some(0.8),
                fallback: i % 17 == 0,
                text_masked: Some("texto de prueba".into()),
                ..Interaction::default()
            }
        }
    };
    let t = Instant::now();
    let batch = 500;
    let mut i = 0;
    while i < n {
        let chunk: Vec<Interaction> = (i..(i + batch).min(n)).map(make).collect();
        insert_batch(&soft, tz, &chunk).await?;
        i += batch;
    }
    let ingest = t.elapsed().as_secs_f64();
    println!("ingest: {n} events in {ingest:.2} s = {:.0} events/s, batches of {batch} (goal >= 30,000/s on SQLite)", n as f64 / ingest);

    let t = Instant::now();
    let (count,): (i64,) = with_pool!(&store, pool => sqlx::query_as("SELECT COUNT(*) FROM interactions").fetch_one(pool).await?);
    let base = t.elapsed().as_secs_f64();
    service::sync_holidays(&store).await?;
    let cal = service::calendar(&store).await?;
    let input = ReportInput {
        store: &store,
        tz,
        calendar: &cal,
        botonera: &cat.botonera,
        intent_titles: cat.intent_titles(),
        municipality: "Municipalidad de prueba".into(),
        hours: BusinessHours::default(),
        today: Utc::now().with_timezone(&tz).date_naive(),
    };
    if std::env::var("BENCH_DETAIL").is_ok() {
        use ventanilla::analytics::aggregate::{self, GroupBy};
        let ids: Vec<String> = cat.botonera.buttons.keys().cloned().collect();
        let (f, to) = report::month_bounds("2026-04").expect("b");
        for g in [
            GroupBy::Weekday,
            GroupBy::Hour,
            GroupBy::Day,
            GroupBy::Button,
            GroupBy::Month,
        ] {
            let t = Instant::now();
            aggregate::interactions(&store, f, to, g, &ids, BusinessHours::default(), &cal).await?;
            println!("  {g:?}: {:.2} s", t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        aggregate::intents_and_fallbacks(&store, f, to, 10).await?;
        println!("  intents: {:.2} s", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let r = report::monthly(&input, "2026-04").await?.expect("month");
    let rep = t.elapsed().as_secs_f64();
    let html = ventanilla::analytics::render::html(&r, "-")?;
    println!("monthly report over {count} events: {rep:.2} s (goal < 2 s); {} interactions, {} KB of HTML", r.interactions, html.len() / 1024);
    println!(
        "baseline SELECT COUNT(*): {:.3} s; report = {:.1} x baseline",
        base,
        rep / base.max(1e-6)
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
