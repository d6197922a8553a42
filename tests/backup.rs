//! The backup drill with the real binary: `ventanilla backup` while the service keeps filing,
//! `ventanilla restore` into a fresh store, which passes migrations, serves, and holds every
//! case acknowledged before the backup began; a non-empty store is only replaced with
//! `--force`; PostgreSQL deployments are pointed at pg_dump / pg_restore.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pothole_report, spawn_on, Backend, TestApp, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_ventanilla");

/// Runs `ventanilla ARGS` against the store at `db_url`, off the async runtime.
async fn ventanilla(db_url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("DATABASE_URL", db_url)
        .env("VENTANILLA_INTENTS_DIR", common::intents_dir())
        .env_remove("VENTANILLA_CONFIG");
    tokio::task::spawn_blocking(move || cmd.output().expect("run ventanilla"))
        .await
        .expect("join")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (folio, tracking code) of an acknowledged filing.
async fn file(app: &TestApp, n: usize) -> (String, String) {
    let v = app.file_case(pothole_report(n)).await;
    (
        v["folio"].as_str().expect("folio").to_string(),
        v["tracking_code"].as_str().expect("code").to_string(),
    )
}

async fn count_cases(app: &TestApp) -> i64 {
    let (n,): (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(pool).await.expect("count")
    });
    n
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_filing_restores_every_acknowledged_case() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let live_url = db.url.clone();
    let app = Arc::new(spawn_on(db, |_| {}).await);
    let mut before = Vec::new();
    for n in 0..30 {
        before.push(file(&app, n).await);
    }

    // A resident keeps filing while the backup runs.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let filer = {
        let (app, acked, stop) = (app.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 1000;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let filed = file(&app, n).await;
                acked.lock().expect("lock").push(filed);
            }
        })
    };
    let running = common::wait_for(Duration::from_secs(30), || async {
        (acked.lock().expect("lock").len() >= 5).then_some(())
    })
    .await;
    assert!(running.is_some(), "the filer is filing");

    let dir = tempfile::tempdir().expect("tempdir");
    let backup = dir.path().join("copias").join("ventanilla.db");
    let backup_arg = backup.display().to_string();
    let acked_before = acked.lock().expect("lock").len();
    before.extend_from_slice(&acked.lock().expect("lock")[..acked_before]);
    let out = ventanilla(&live_url, &["backup", &backup_arg]).await;
    let during = acked.lock().expect("lock").len() - acked_before;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backup written"), "{}", text(&out));
    // The service kept filing (and acknowledging) through the backup.
    let more = common::wait_for(Duration::from_secs(30), || async {
        (acked.lock().expect("lock").len() >= acked_before + during + 5).then_some(())
    })
    .await;
    assert!(more.is_some(), "filing continues after the backup");
    stop.store(true, Ordering::SeqCst);
    filer.await.expect("filer");
    eprintln!("{during} cases acknowledged while the backup ran");

    // The same file name is never overwritten.
    let again = ventanilla(&live_url, &["backup", &backup_arg]).await;
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    // Restore into a fresh store.
    let fresh_dir = tempfile::tempdir().expect("tempdir");
    let fresh_url = sqlite_url(&fresh_dir.path().join("restaurada.db"));
    let out = ventanilla(&fresh_url, &["restore", &backup_arg]).await;
    assert!(out.status.success(), "{}", text(&out));

    // A store that holds cases is not replaced without --force: neither the restored one…
    let out = ventanilla(&fresh_url, &["restore", &backup_arg]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    // …nor the live one, which keeps every case.
    let live_cases = count_cases(&app).await;
    let out = ventanilla(&live_url, &["restore", &backup_arg]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(count_cases(&app).await, live_cases);
    // With --force the restored store is replaced (and kept aside).
    let out = ventanilla(&fresh_url, &["restore", "--force", &backup_arg]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("moved to"), "{}", text(&out));

    // The restored store passes migrations, serves, and holds every case acknowledged before
    // the backup began, trackable with its code.
    let restored = spawn_on(TestDb::at(fresh_url), |_| {}).await;
    assert_eq!(
        restored.state.store.applied_migrations().await.expect("m"),
        app.state.store.applied_migrations().await.expect("m")
    );
    let held: Vec<(String,)> = ventanilla::with_pool!(&restored.state.store, pool => {
        sqlx::query_as("SELECT folio FROM cases ORDER BY folio").fetch_all(pool).await.expect("folios")
    });
    let held: Vec<String> = held.into_iter().map(|r| r.0).collect();
    for (folio, code) in &before {
        assert!(
            held.contains(folio),
            "{folio} acknowledged before the backup"
        );
        let r = restored
            .get(&format!("/api/v1/oirs/cases/{folio}?code={code}"))
            .await;
        assert_eq!(r.status(), 200, "{folio}");
    }
    // Filing goes on after the last restored folio.
    let last = held.last().expect("cases").clone();
    let (next, _) = file(&restored, 0).await;
    let seq = |f: &str| f.rsplit('-').next().and_then(|s| s.parse::<i64>().ok());
    assert_eq!(seq(&next), seq(&last).map(|s| s + 1));
}

#[tokio::test]
async fn backup_and_restore_refuse_postgresql() {
    let url = "postgres://postgres@127.0.0.1:1/ventanilla";
    let out = ventanilla(url, &["backup", "/tmp/never-written.db"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));
    let out = ventanilla(url, &["restore", "/tmp/never-read.db"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_restore"), "{}", text(&out));
    assert!(!Path::new("/tmp/never-written.db").exists());
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "esto no es una base de datos").expect("write");
    let url = sqlite_url(&dir.path().join("v.db"));
    let out = ventanilla(&url, &["restore", &junk.display().to_string()]).await;
    assert!(!out.status.success());
    assert!(!dir.path().join("v.db").exists(), "nothing created");
    let missing = dir.path().join("missing.db").display().to_string();
    let out = ventanilla(&url, &["restore", &missing]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("no database"), "{}", text(&out));
}
