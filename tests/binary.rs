//! The real binary: graceful shutdown with a request in flight, catalog reload on SIGHUP and
//! the `user add` / `migrate` / `intents check` commands.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_ventanilla");

struct Server {
    child: Child,
    addr: SocketAddr,
    logs: mpsc::Receiver<String>,
}

impl Server {
    fn start(db_url: &str, intents: &Path) -> Self {
        Self::start_with(db_url, intents, &[])
    }

    fn start_with(db_url: &str, intents: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .envs(env.iter().copied())
            .env("VENTANILLA_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", db_url)
            .env("VENTANILLA_INTENTS_DIR", intents)
            .env("VENTANILLA_LOG_FORMAT", "json")
            .env("VENTANILLA_RATE_LIMIT", "off")
            .env_remove("VENTANILLA_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ventanilla");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            addr: "127.0.0.1:1".parse().expect("addr"),
            logs: rx,
        };
        let line = server.wait_log("listening");
        let v: Value = serde_json::from_str(&line).expect("json log line");
        server.addr = v["fields"]["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("socket addr");
        server
    }

    /// Blocks until a log line containing `needle` appears (the server logs each step).
    fn wait_log(&mut self, needle: &str) -> String {
        loop {
            match self.logs.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => panic!("server never logged {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let mut server = Server::start(&db, &common::intents_dir());
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/api/v1/chat/sessions", server.base()))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let sid = created["session_id"].as_str().expect("sid");

    // Start a request and hold its body back until the server has begun shutting down.
    let body = json!({"text": "horario de atencion"}).to_string();
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/chat/sessions/{sid}/messages HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    // "100 Continue" means the handler is running and waiting for the body.
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.expect("read 100");
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("100 Continue"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    server.signal("TERM");
    server.wait_log("shutdown signal received");

    s.write_all(body.as_bytes()).await.expect("body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("response");
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("horario_atencion"), "{resp}");

    let status = tokio::task::spawn_blocking(move || {
        let st = server.child.wait().expect("wait");
        (st, server)
    })
    .await
    .expect("join");
    assert!(status.0.success(), "exit status {:?}", status.0);

    // The conversation's memory, kept in memory with SQLite, was written before exiting.
    let pool = sqlx::SqlitePool::connect(&db).await.expect("reopen");
    let (state,): (String,) = sqlx::query_as("SELECT state FROM chat_sessions WHERE id = $1")
        .bind(sid)
        .fetch_one(&pool)
        .await
        .expect("session row");
    assert!(state.contains("horario_atencion"), "{state}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[tokio::test]
async fn sighup_reloads_the_catalog() {
    let dir = tempfile::tempdir().expect("tmp");
    let intents = dir.path().join("intents");
    copy_dir(&common::intents_dir(), &intents);
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let mut server = Server::start(&db, &intents);
    let client = reqwest::Client::new();
    let greeting = |c: reqwest::Client, base: String| async move {
        let v: Value = c
            .post(format!("{base}/api/v1/chat/sessions"))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        v["reply"]["text"].as_str().unwrap_or_default().to_string()
    };
    assert!(greeting(client.clone(), server.base())
        .await
        .starts_with("¡Hola!"));

    // A broken catalog is rejected and the running one stays.
    let menu = intents.join("botonera.toml");
    let original = std::fs::read_to_string(&menu).expect("read");
    std::fs::write(&menu, original.replace("[[button]]", "[[button")).expect("break");
    server.signal("HUP");
    server.wait_log("catalog reload on SIGHUP rejected");
    assert!(greeting(client.clone(), server.base())
        .await
        .starts_with("¡Hola!"));

    std::fs::write(
        &menu,
        original.replace("greeting = \"¡Hola!", "greeting = \"¡Bienvenida!"),
    )
    .expect("edit");
    server.signal("HUP");
    server.wait_log("catalog reloaded");
    assert!(greeting(client, server.base())
        .await
        .starts_with("¡Bienvenida!"));
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin() {
    let Some(db) = common::TestDb::new(common::Backend::Sqlite).await else {
        return;
    };
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("VENTANILLA_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        child.wait_with_output().expect("output")
    };
    let out = run(&["migrate"], "");
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &["user", "add", "--username", "ana", "--role", "admin"],
        "una clave bien larga\n",
    );
    assert!(out.status.success(), "{out:?}");
    let again = run(
        &["user", "add", "--username", "ana", "--role", "admin"],
        "una clave bien larga\n",
    );
    assert!(!again.status.success(), "duplicate user must fail");
    let bad = run(
        &["user", "add", "--username", "bob", "--role", "department"],
        "una clave bien larga\n",
    );
    assert!(!bad.status.success(), "department role needs --department");

    let app = common::spawn_on(db, |_| {}).await;
    let ok = app
        .post_json(
            "/api/v1/auth/login",
            json!({"username": "ana", "password": "una clave bien larga"}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let cookie = ok
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"));
    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            json!({"username": "ana", "password": "otra"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
}

#[test]
fn intents_check_accepts_the_shipped_catalog() {
    let out = Command::new(BIN)
        .args(["intents", "check", "--dir"])
        .arg(common::intents_dir())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("catalog OK"), "{stdout}");
}

#[test]
fn check_config_redacts_secrets() {
    let out = Command::new(BIN)
        .arg("check-config")
        .env("VENTANILLA_WEBHOOK_SECRET", "super-secreto")
        .env(
            "DATABASE_URL",
            "postgres://ventanilla:clave-de-la-base@db.muni.example:5432/ventanilla",
        )
        .env("VENTANILLA_SMTP_PASSWORD", "clave-del-correo")
        .env("VENTANILLA_INTENTS_DIR", common::intents_dir())
        .env_remove("VENTANILLA_CONFIG")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("\"webhook_secret\": \"***\""), "{stdout}");
    assert!(
        stdout.contains(
            "\"database_url\": \"postgres://ventanilla:***@db.muni.example:5432/ventanilla\""
        ),
        "{stdout}"
    );
    assert!(stdout.contains("\"password\": \"***\""), "{stdout}");
    for secret in ["super-secreto", "clave-de-la-base", "clave-del-correo"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
        assert!(!stderr.contains(secret), "{secret} logged: {stderr}");
    }
}

/// Every case acknowledged with 201 survives a `kill -9` of the server right after.
async fn acknowledged_cases_survive_kill_9(backend: common::Backend) {
    let Some(db) = common::TestDb::new(backend).await else {
        return;
    };
    // A webhook receiver that is down: derivation messages wait in the outbox.
    let mut server = Server::start_with(
        &db.url,
        &common::intents_dir(),
        &[
            ("VENTANILLA_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("VENTANILLA_WEBHOOK_SECRET", "s"),
        ],
    );
    let client = reqwest::Client::new();
    let mut folios = Vec::new();
    for i in 0..25 {
        let r = client
            .post(format!("{}/api/v1/oirs/cases", server.base()))
            .json(&json!({
                "type": "reclamo", "topic": "aseo_retiro",
                "description": format!("No pasó el camión de la basura, caso {i}"),
                "name": "Pedro Soto", "consent": true
            }))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.expect("json");
        folios.push(v["folio"].as_str().expect("folio").to_string());
    }
    server.signal("KILL");
    let _ = server.child.wait();

    let store = ventanilla::store::Store::connect(&db.url)
        .await
        .expect("reopen");
    for f in &folios {
        let case = ventanilla::oirs::service::find_case(&store, f)
            .await
            .expect("query");
        assert!(case.is_some(), "{f} was acknowledged but is gone");
    }
    let outbox: (i64,) = ventanilla::with_pool!(&store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook'").fetch_one(pool).await.expect("q")
    });
    assert_eq!(
        outbox.0, 25,
        "each case's derivation message committed with it"
    );
    store.close().await;
}
on_both_backends!(acknowledged_cases_survive_kill_9);
