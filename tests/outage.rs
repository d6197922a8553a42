//! PostgreSQL restarting under filing load, on a private cluster this test starts and stops:
//! during the outage requests get a quick 503 (no hangs), afterwards the same service
//! recovers by itself, and every case acknowledged with 201 is in the database.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pothole_report, spawn_on, TestApp, TestDb};
use serde_json::Value;

/// A PostgreSQL cluster of its own in a temporary directory, on a free port. PostgreSQL
/// refuses to run as root, so as root its programs run as the `postgres` OS user.
struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivateCluster {
    /// The cluster, or why one cannot be started here (the test is then skipped).
    fn start() -> Result<Self, String> {
        let bin = pg_bin().ok_or("no PostgreSQL server programs (initdb) found")?;
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("id -u: {e}"))?;
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = tempfile::Builder::new()
            .prefix("ventanilla-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !owned.success() {
                return Err("cannot give the cluster directory to the postgres user".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.up()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Fast shutdown: sessions are ended at once, open transactions rolled back.
    fn down(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"],
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

/// The directory of `initdb` and `pg_ctl`: `VENTANILLA_TEST_PG_BIN`, or the newest
/// Debian-style installation.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("VENTANILLA_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// One filing attempt as the client saw it.
#[derive(Clone, Debug)]
struct Attempt {
    started: Instant,
    took: Duration,
    status: u16,
    body: Value,
}

/// Files cases one after another until told to stop, recording every attempt.
fn spawn_filer(
    app: Arc<TestApp>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Attempt>>>,
    worker: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = worker * 100_000;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let started = Instant::now();
            let r = app.post_json("/api/v1/oirs/cases", pothole_report(n)).await;
            let status = r.status().as_u16();
            let body = r.json().await.unwrap_or(Value::Null);
            log.lock().expect("lock").push(Attempt {
                started,
                took: started.elapsed(),
                status,
                body,
            });
            if status != 201 {
                // What a client would do: back off a little before retrying.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

fn count(log: &Mutex<Vec<Attempt>>, what: impl Fn(&Attempt) -> bool) -> usize {
    log.lock().expect("lock").iter().filter(|a| what(a)).count()
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filing_survives_a_postgresql_restart() {
    let cluster = match run_blocking(PrivateCluster::start).await {
        Ok(c) => Arc::new(c),
        Err(why) => {
            eprintln!("SKIPPED: cannot start a private PostgreSQL cluster: {why}");
            return;
        }
    };
    let app = Arc::new(spawn_on(TestDb::at(cluster.url()), |_| {}).await);
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let filers: Vec<_> = (0..3)
        .map(|w| spawn_filer(app.clone(), stop.clone(), log.clone(), w))
        .collect();
    let long = Duration::from_secs(60);

    // Under load…
    let loaded = common::wait_for(long, || async {
        (count(&log, |a| a.status == 201) >= 30).then_some(())
    })
    .await;
    assert!(loaded.is_some(), "filing works before the outage");

    // …PostgreSQL stops.
    let c = cluster.clone();
    run_blocking(move || c.down())
        .await
        .expect("stop PostgreSQL");
    let down_at = Instant::now();
    let outage = |a: &Attempt| a.started >= down_at;
    let seen = common::wait_for(long, || async { (count(&log, outage) >= 8).then_some(()) }).await;
    assert!(seen.is_some(), "requests are answered during the outage");
    let started = Instant::now();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503, "not ready without a database");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "readiness answers quickly"
    );

    // PostgreSQL comes back; the same service recovers without a restart.
    let c = cluster.clone();
    let restart_at = Instant::now();
    run_blocking(move || c.up())
        .await
        .expect("start PostgreSQL");
    let up_at = Instant::now();
    let recovered = common::wait_for(long, || async {
        (count(&log, |a| a.started >= up_at && a.status == 201) >= 20).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "filing works again after the restart");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200, "ready again");
    stop.store(true, Ordering::SeqCst);
    for f in filers {
        f.await.expect("filer");
    }

    let log = log.lock().expect("lock").clone();
    // Every answer was an acknowledgement or a clean 503 — no 500s, no leaked detail.
    for a in &log {
        assert!(
            a.status == 201 || (a.status == 503 && a.body["error"]["code"] == "unavailable"),
            "unexpected answer {} {}",
            a.status,
            a.body
        );
    }
    // During the outage (requests started after the stop and answered before the restart
    // began): 503, each within the pool's acquire timeout and a margin.
    let during: Vec<&Attempt> = log
        .iter()
        .filter(|a| a.started >= down_at && a.started + a.took <= restart_at)
        .collect();
    assert!(!during.is_empty());
    for a in &during {
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(a.took < Duration::from_secs(6), "a 503 took {:?}", a.took);
    }

    // Every acknowledged case is there, and folios have no gaps or doubles.
    let acked: Vec<String> = log
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.body["folio"].as_str().expect("folio").to_string())
        .collect();
    let stored: Vec<(String,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT folio FROM cases ORDER BY folio").fetch_all(pool).await.expect("cases")
    });
    let stored: std::collections::BTreeSet<String> = stored.into_iter().map(|r| r.0).collect();
    let missing: Vec<&String> = acked.iter().filter(|f| !stored.contains(*f)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let seqs: Vec<i64> = stored
        .iter()
        .map(|f| {
            f.rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>());
    eprintln!(
        "{} acknowledged, {} answered 503 during the outage (slowest {:?}), {} stored",
        acked.len(),
        during.len(),
        during.iter().map(|a| a.took).max().unwrap_or_default(),
        stored.len()
    );
}
