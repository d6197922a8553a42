//! Foundation: migrations on both stores, the error body, limits, rate limiting and client
//! IPs, readiness, metrics and the OpenAPI document.

mod common;

use std::time::Duration;

use common::{spawn_app, spawn_app_with, Backend};
use serde_json::{json, Value};
use sqlx::Connection;
use ventanilla::store::Store;

async fn migrations_apply_and_are_idempotent(backend: Backend) {
    let Some(db) = common::TestDb::new(backend).await else {
        return;
    };
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("first migrate");
    store.migrate().await.expect("second migrate is a no-op");
    assert_eq!(
        store.applied_migrations().await.expect("versions"),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    // Seeded data is there: the default departments.
    let n: (i64,) = ventanilla::with_pool!(&store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM departments").fetch_one(pool).await.expect("count")
    });
    assert_eq!(n.0, 18);
    store.ping().await.expect("ping");
    store.close().await;
}
on_both_backends!(migrations_apply_and_are_idempotent);

async fn errors_use_the_spec_body(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created: Value = app
        .post_json("/api/v1/chat/sessions", json!({}))
        .await
        .json()
        .await
        .expect("json");
    let sid = created["session_id"].as_str().expect("sid").to_string();
    let path = format!("/api/v1/chat/sessions/{sid}/messages");

    // Malformed JSON → 400.
    let r = app
        .client
        .post(app.url(&path))
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "malformed_json");
    assert!(b["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    // A field of the wrong type → 422 naming it.
    let r = app.post_json(&path, json!({"text": 42})).await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["field"], "text");

    // A missing field → 422 naming it (login needs a password).
    let r = app
        .post_json("/api/v1/auth/login", json!({"username": "x"}))
        .await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["field"], "password");

    // Unknown route → 404 in the same shape.
    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!(r.status(), 404);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "not_found");

    // Oversized body → 413.
    let big = "a".repeat(70 * 1024);
    let r = app.post_json(&path, json!({ "text": big })).await;
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "payload_too_large");
}
on_both_backends!(errors_use_the_spec_body);

#[tokio::test]
async fn oversized_chunked_body_is_rejected_while_reading() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    // No Content-Length: the limit must apply while the body streams in.
    let mut s = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'a'; 8 * 1024];
    for _ in 0..12 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).await.is_err() {
            break; // the server may close early once the limit is hit
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("payload_too_large"));
}

#[tokio::test]
async fn rate_limit_answers_429_after_the_burst() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.burst = 3;
        c.rate_limit.per_second = 1;
    })
    .await
    else {
        return;
    };
    // One budget per client across the public API, whatever the router.
    for (i, path) in ["/api/v1/chat/menu", "/api/v1/oirs/topics", "/oirs"]
        .iter()
        .enumerate()
    {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "request {i} is inside the burst");
    }
    let r = app.get("/api/v1/chat/menu").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!(retry >= 1);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "rate_limited");
    // Operations endpoints are never limited.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn burst_of(app: &common::TestApp, xff: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url("/api/v1/chat/menu"))
            .header("x-forwarded-for", xff)
            .send()
            .await
            .expect("send");
        out.push(r.status().as_u16());
    }
    out
}

#[tokio::test]
async fn forged_forwarded_for_from_untrusted_peer_is_ignored() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.burst = 2;
        c.rate_limit.per_second = 1;
    })
    .await
    else {
        return;
    };
    // The peer (127.0.0.1) is not a trusted proxy: changing the header does not help.
    assert_eq!(burst_of(&app, "1.1.1.1").await, vec![200, 200, 429]);
    assert_eq!(burst_of(&app, "2.2.2.2").await, vec![429, 429, 429]);
}

#[tokio::test]
async fn forwarded_for_from_trusted_proxy_is_used() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limit.enabled = true;
        c.rate_limit.burst = 2;
        c.rate_limit.per_second = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await
    else {
        return;
    };
    assert_eq!(burst_of(&app, "1.1.1.1").await, vec![200, 200, 429]);
    // Another client behind the same proxy has its own budget.
    assert_eq!(burst_of(&app, "2.2.2.2").await, vec![200, 200, 429]);
    // A client prepending a forged address is still keyed by the address the proxy saw.
    assert_eq!(
        burst_of(&app, "9.9.9.9, 1.1.1.1").await,
        vec![429, 429, 429]
    );
}

#[tokio::test]
async fn readyz_follows_the_database() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), 200);
    let name = app.db.pg_name().expect("pg").to_string();
    let mut admin = sqlx::PgConnection::connect(&common::pg_admin_url())
        .await
        .expect("admin");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .expect("block");
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut admin)
    .await
    .expect("terminate");

    let down = common::wait_for(Duration::from_secs(20), || async {
        let r = app.get("/readyz").await;
        (r.status() == 503).then_some(r)
    })
    .await
    .expect("readyz goes 503 while the database is away");
    let b: Value = down.json().await.expect("json");
    assert_eq!(b["error"]["code"], "unavailable");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the process is still up"
    );

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .expect("unblock");
    common::wait_for(Duration::from_secs(20), || async {
        (app.get("/readyz").await.status() == 200).then_some(())
    })
    .await
    .expect("readyz returns to 200 by itself");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.get("/api/v1/chat/menu").await;
    app.get("/api/v1/chat/menu").await;
    app.get("/no/such/route").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total")
                && l.contains("route=\"/api/v1/chat/menu\"")
                && l.contains("status=\"200\"")
        })
        .expect("counter for the menu route");
    assert!(line.trim_end().ends_with(" 2"), "{line}");
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("status=\"404\""));
    assert!(text.contains("analytics_events_dropped_total"));
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let doc: Value = app
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/chat/sessions",
        "/api/v1/chat/sessions/{session_id}/messages",
        "/api/v1/chat/menu",
        "/api/v1/auth/login",
        "/api/v1/admin/catalog/reload",
        "/api/v1/oirs/case-types",
        "/api/v1/oirs/topics",
        "/api/v1/oirs/cases",
        "/api/v1/oirs/cases/{folio}",
        "/api/v1/staff/cases",
        "/api/v1/staff/cases/{folio}",
        "/api/v1/staff/cases/{folio}/events",
        "/api/v1/staff/reports/pending",
        "/api/v1/admin/departments",
        "/api/v1/admin/departments/{id}",
        "/api/v1/admin/case-types",
        "/api/v1/admin/case-types/{id}",
        "/api/v1/admin/routing-rules",
        "/api/v1/admin/routing-rules/{case_type}/{topic}",
        "/api/v1/admin/holidays",
        "/api/v1/admin/holidays/{date}",
        "/api/v1/admin/outbox",
        "/api/v1/admin/outbox/{id}/retry",
        "/api/v1/admin/audit",
        "/api/v1/analytics/interactions",
        "/api/v1/analytics/export",
        "/api/v1/reports/monthly/{month}",
    ] {
        assert!(paths.contains_key(p), "openapi misses {p}");
    }
}

#[tokio::test]
async fn security_headers_and_cors() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.cors_origins = vec!["https://www.tome.cl".into()];
    })
    .await
    else {
        return;
    };
    let r = app
        .client
        .get(app.url("/api/v1/chat/menu"))
        .header("origin", "https://www.tome.cl")
        .send()
        .await
        .expect("send");
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("frame-ancestors"));
    assert_eq!(h["access-control-allow-origin"], "https://www.tome.cl");
    assert!(h.contains_key("x-request-id"));
    let r = app
        .client
        .get(app.url("/api/v1/chat/menu"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

/// SQLite admits one writer: every statement that writes waits for this process's turn in
/// `write_pool!` (the write gate) rather than in SQLite's busy handler. This scans the sources
/// for writes run through the ungated `with_pool!`.
#[test]
fn every_write_goes_through_the_write_gate() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let writes = ["INSERT INTO", "DELETE FROM", "pool.begin()", "VACUUM"];
    let mut ungated = Vec::new();
    let mut scanned = 0;
    for file in files {
        let src = std::fs::read_to_string(&file).expect("read");
        let mut rest = src.as_str();
        while let Some(at) = rest.find("with_pool!(") {
            let body = &rest[at + "with_pool!(".len()..];
            let mut depth = 1;
            let end = body
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or(body.len());
            let block = &body[..end];
            scanned += 1;
            let updates = block
                .split("UPDATE ")
                .skip(1)
                .any(|after| after.split_whitespace().nth(1) == Some("SET"));
            if updates || writes.iter().any(|w| block.contains(w)) {
                ungated.push(format!(
                    "{}: {}",
                    file.display(),
                    block.lines().next().unwrap_or("")
                ));
            }
            rest = &body[end..];
        }
    }
    assert!(scanned > 20, "the scan found the store's call sites");
    assert!(
        ungated.is_empty(),
        "writes outside write_pool!: {ungated:#?}"
    );
}

/// Database failures answer without database text: an unmapped constraint violation is a 409
/// and a failing statement a 500, neither naming a table, a column or the SQL.
async fn database_errors_reveal_nothing(backend: Backend) {
    use axum::response::IntoResponse;
    use ventanilla::http::ApiError;
    let Some(db) = common::TestDb::new(backend).await else {
        return;
    };
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let body_of = |e: ApiError| async move {
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).to_string())
    };
    let insert = "INSERT INTO departments (id, name, email) VALUES ('dom', 'Otra', 'x@example.cl')";
    let dup =
        ventanilla::with_pool!(&store, pool => sqlx::query(insert).execute(pool).await.map(|_| ()));
    let err = ventanilla::store::StoreError::from(dup.expect_err("the id exists"));
    assert!(!err.violates(&ventanilla::store::USERS_USERNAME));
    let (status, body) = body_of(err.into()).await;
    assert_eq!(status, 409, "{body}");
    let missing = ventanilla::with_pool!(&store, pool => {
        sqlx::query("SELECT secret_column FROM no_such_table").execute(pool).await.map(|_| ())
    });
    let (status, body500) =
        body_of(ventanilla::store::StoreError::from(missing.expect_err("fails")).into()).await;
    assert_eq!(status, 500, "{body500}");
    for leak in [
        "departments",
        "dom",
        "UNIQUE",
        "unique",
        "no_such_table",
        "secret_column",
        "constraint",
        "SELECT",
    ] {
        assert!(!body.contains(leak), "409 reveals {leak}: {body}");
        assert!(!body500.contains(leak), "500 reveals {leak}: {body500}");
    }
    let v: Value = serde_json::from_str(&body).expect("error body");
    assert_eq!(v["error"]["code"], "already_exists");
}
on_both_backends!(database_errors_reveal_nothing);
