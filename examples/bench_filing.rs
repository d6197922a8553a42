//! In-process filing cost: files cases one after another straight through the service layer
//! (no HTTP) on a fresh SQLite file, printing cases/s. Useful to tell storage cost from
//! HTTP cost when reading bench/filing-throughput.sh.
//!
//!     cargo run --release --example bench_filing [N] [DATABASE_URL]

use std::time::Instant;

use chrono::Utc;
use ventanilla::oirs::domain::Channel;
use ventanilla::oirs::service::{self, Channels, FilingContext, NewCase};
use ventanilla::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let dir = tempfile_dir();
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    service::sync_holidays(&store).await?;
    let cal = service::calendar(&store).await?;
    let ctx = FilingContext {
        tz: "America/Santiago".parse().expect("tz"),
        calendar: &cal,
        public_base_url: "http://localhost",
        channels: Channels {
            webhook: true,
            email: false,
        },
    };
    let case = NewCase {
        case_type: "reclamo".into(),
        topic: "alumbrado_publico".into(),
        description: "Luminaria apagada en el pasaje".into(),
        name: "Vecina".into(),
        rut: None,
        email: None,
        phone: None,
        address: None,
        location: None,
        public_description: false,
        chat_session_id: None,
        data_right: None,
        channel: Channel::Web,
        received_at: Utc::now(),
        created_by: None,
        open311_key: None,
        identity_verified: false,
    };
    let t = Instant::now();
    for _ in 0..100 {
        service::case_types(&store).await?;
    }
    println!("case_types: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    for _ in 0..100 {
        service::routing_rules(&store).await?;
    }
    println!("routing_rules: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    for _ in 0..100 {
        store.ping().await?;
    }
    println!("ping: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    for _ in 0..n {
        service::file_case(&store, &ctx, &case, None).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} cases in {secs:.2} s: {:.0} cases/s sequential, {:.2} ms each",
        n as f64 / secs,
        secs * 1e3 / n as f64
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ventanilla-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
