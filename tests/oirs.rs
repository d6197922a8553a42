//! OIRS over HTTP on both backends: filing, validation, idempotency, folios under
//! concurrency, tracking, staff roles and events, alerts, the outbox against a real local
//! webhook receiver and SMTP sink, and the audit log.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use ventanilla::config::{Config, Secret};

const SECRET: &str = "clave-de-prueba-webhook";

fn case_body(topic: &str) -> Value {
    json!({
        "type": "reclamo",
        "topic": topic,
        "description": "La luminaria del pasaje Los Aromos lleva dos semanas apagada.",
        "name": "Juana Pérez",
        "rut": "12.345.678-5",
        "email": "juana@example.cl",
        "phone": "+56 9 8765 4321",
        "consent": true
    })
}

async fn file(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app.post_json("/api/v1/oirs/cases", body).await;
    (r.status().as_u16(), r.json().await.expect("json"))
}

/// Captures webhook deliveries; can answer errors to simulate a broken receiver.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn start_receiver(
    listener: tokio::net::TcpListener,
) -> (Receiver, tokio::task::JoinHandle<()>) {
    let rec = Receiver::default();
    let r2 = rec.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r2.clone();
            async move {
                r.got.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (rec, h)
}

/// A minimal SMTP server that accepts every message and keeps its data.
async fn start_smtp_sink() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m2 = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let mails = m2.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            mails.lock().expect("lock").push(std::mem::take(&mut data));
                            let _ = w.write_all(b"250 OK queued\r\n").await;
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (addr, mails)
}

fn with_outbox(url: String, smtp: Option<SocketAddr>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.outbox.webhook_url = Some(url);
        c.webhook_secret = Secret::new(SECRET);
        c.outbox.base_backoff_ms = 20;
        c.outbox.max_backoff_ms = 200;
        c.outbox.poll_ms = 20;
        c.outbox.timeout_ms = 2000;
        if let Some(a) = smtp {
            c.smtp.host = Some(a.ip().to_string());
            c.smtp.port = a.port();
        }
    }
}

fn verify_signature(headers: &HeaderMap, body: &str) -> bool {
    let ts: i64 = headers["x-ventanilla-timestamp"]
        .to_str()
        .expect("ts")
        .parse()
        .expect("number");
    let expected = ventanilla::outbox::signature(&Secret::new(SECRET), ts, body.as_bytes());
    headers["x-ventanilla-signature"].to_str().expect("sig") == expected
}

async fn filing_tracking_and_delivery(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (rec, _h) = start_receiver(listener).await;
    let (smtp, mails) = start_smtp_sink().await;
    let Some(app) = spawn_app_with(backend, with_outbox(hook, Some(smtp))).await else {
        return;
    };
    let (status, filed) = file(&app, case_body("alumbrado_publico")).await;
    assert_eq!(status, 201, "{filed}");
    let folio = filed["folio"].as_str().expect("folio").to_string();
    let year = app.state.today().format("%Y").to_string();
    assert_eq!(folio, format!("OIRS-{year}-000001"));
    assert_eq!(filed["status"], "derivado");
    assert_eq!(filed["department"], "aseo_ornato", "routing by topic");
    let cal = app.state.calendar().await;
    let expected_due = cal.due_date(app.state.today(), 20);
    assert_eq!(
        filed["due_date"],
        expected_due.format("%Y-%m-%d").to_string()
    );
    let code = filed["tracking_code"].as_str().expect("code").to_string();

    // Tracking with the code or the RUT; a wrong secret looks like an unknown folio.
    let r = app
        .get(&format!("/api/v1/oirs/cases/{folio}?code={code}"))
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["status"], "derivado");
    let kinds: Vec<&str> = t["history"]
        .as_array()
        .expect("h")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(kinds, vec!["recibido", "derivado"]);
    assert!(
        t.get("rut").is_none() && t.get("email").is_none(),
        "no personal data in tracking"
    );
    let r = app
        .get(&format!("/api/v1/oirs/cases/{folio}?rut=12345678-5"))
        .await;
    assert_eq!(r.status(), 200);
    let wrong = app
        .get(&format!("/api/v1/oirs/cases/{folio}?code=AAAAAAAAAAAA"))
        .await;
    let unknown = app
        .get(&format!(
            "/api/v1/oirs/cases/OIRS-{year}-999999?code={code}"
        ))
        .await;
    assert_eq!(wrong.status(), 404);
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        wrong.json::<Value>().await.expect("j"),
        unknown.json::<Value>().await.expect("j")
    );

    // The derivation reached the receiver, signed; the acknowledgement reached the resident.
    let (headers, body) = common::wait_for(Duration::from_secs(20), || async {
        rec.got.lock().expect("lock").first().cloned()
    })
    .await
    .expect("webhook delivered");
    assert!(verify_signature(&headers, &body), "signature verifies");
    let payload: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(payload["folio"], folio.as_str());
    assert_eq!(payload["department"], "aseo_ornato");
    assert_eq!(payload["type"], "reclamo");
    assert!(payload["received_at"].is_string() && payload["due_date"].is_string());
    let mail = common::wait_for(Duration::from_secs(20), || async {
        mails
            .lock()
            .expect("lock")
            .iter()
            .find(|m| m.contains("juana@example.cl"))
            .cloned()
    })
    .await
    .expect("acknowledgement e-mail");
    assert!(mail.contains(&folio), "{mail}");
    // The code is shown once, at filing; no e-mail (stored until delivered) carries it.
    assert!(!mail.contains(&code), "{mail}");
    // Undo quoted-printable's soft line breaks and escaped "=".
    let text = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        text.contains(&format!(
            "{}/seguimiento?folio={folio}",
            app.state.config.public_base_url
        )),
        "absolute link: {text}"
    );
}
on_both_backends!(filing_tracking_and_delivery);

async fn tracking_guesses_are_throttled(backend: Backend) {
    // The tests reach the service through 127.0.0.1, trusted here as a proxy, so each request
    // can say which client it stands for.
    let Some(app) = spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")]
    })
    .await
    else {
        return;
    };
    let (_, filed) = file(&app, case_body("calles_veredas")).await;
    let folio = filed["folio"].as_str().expect("folio");
    let code = filed["tracking_code"].as_str().expect("code");
    let track = |client: &'static str, code: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/api/v1/oirs/cases/{folio}?code={code}")))
                .header("x-forwarded-for", client)
                .send()
                .await
                .expect("send")
        }
    };
    const STRANGER: &str = "203.0.113.66";
    const RESIDENT: &str = "198.51.100.7";
    for _ in 0..5 {
        assert_eq!(track(STRANGER, "WRONGWRONGXX".into()).await.status(), 404);
    }
    let r = track(STRANGER, code.to_string()).await;
    assert_eq!(
        r.status(),
        429,
        "the guessing client waits, even with the right code"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&wait), "the first wait is short: {wait}");
    let r = track(RESIDENT, code.to_string()).await;
    assert_eq!(
        r.status(),
        200,
        "a stranger's guesses never lock the resident out"
    );

    // The same for logins: a stranger failing on purpose does not keep the administrator out.
    app.login_as("jefa", "admin", None).await;
    let login = |client: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", client)
                .json(&json!({"username": "jefa", "password": password}))
                .send()
                .await
                .expect("send")
                .status()
        }
    };
    for _ in 0..5 {
        assert_eq!(login(STRANGER, "adivinando").await, 401);
    }
    assert_eq!(login(STRANGER, "adivinando").await, 429);
    assert_eq!(login(RESIDENT, "correct horse battery").await, 200);
    // Nothing stored names the client, the folio or the username.
    let subjects: Vec<(String,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT subject FROM attempt_failures").fetch_all(pool).await.expect("rows")
    });
    assert!(!subjects.is_empty());
    for (s,) in subjects {
        assert!(
            !s.contains(STRANGER) && !s.contains(folio) && !s.contains("jefa"),
            "{s}"
        );
    }
}
on_both_backends!(tracking_guesses_are_throttled);

#[tokio::test]
async fn invalid_filings_name_the_field() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let cases = [
        ("rut", json!("12.345.678-9")),
        ("email", json!("juana@")),
        ("phone", json!("123")),
        ("topic", json!("ovnis")),
        ("type", json!("queja_formal")),
        ("consent", json!(false)),
        ("description", json!("corto")),
        ("chat_session_id", json!("no-es-uuid")),
    ];
    for (field, value) in cases {
        let mut body = case_body("alumbrado_publico");
        body[field] = value;
        let (status, v) = file(&app, body).await;
        assert_eq!(status, 422, "{field}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let mut body = case_body("alumbrado_publico");
    body.as_object_mut().expect("obj").remove("name");
    let (status, v) = file(&app, body).await;
    assert_eq!((status, v["error"]["field"].as_str()), (422, Some("name")));
    // Nothing half-written remains.
    let n: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(pool).await.expect("count")
    });
    assert_eq!(n.0, 0);
}

async fn idempotency_key_returns_the_same_case(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/oirs/cases"))
            .header("idempotency-key", "form-7f3a")
            .json(&body)
            .send()
    };
    let first = send(case_body("alumbrado_publico")).await.expect("send");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let again = send(case_body("alumbrado_publico")).await.expect("send");
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(first, again);
    let other = send(case_body("calles_veredas")).await.expect("send");
    assert_eq!(other.status(), 409, "same key, different request");
    let n: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(pool).await.expect("count")
    });
    assert_eq!(n.0, 1);
}
on_both_backends!(idempotency_key_returns_the_same_case);

async fn concurrent_filings_get_consecutive_folios(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            file(&app, case_body("aseo_retiro")).await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let (status, v) = t.await.expect("join");
        assert_eq!(status, 201, "{v}");
        let folio = v["folio"].as_str().expect("folio");
        seqs.push(
            folio
                .rsplit('-')
                .next()
                .expect("seq")
                .parse::<i64>()
                .expect("n"),
        );
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
}
on_both_backends!(concurrent_filings_get_consecutive_folios);

async fn staff_roles_and_case_lifecycle(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let (_, luz) = file(&app, case_body("alumbrado_publico")).await; // aseo_ornato
    let (_, hoyo) = file(&app, case_body("calles_veredas")).await; // secpla
    let luz_folio = luz["folio"].as_str().expect("f").to_string();
    let hoyo_folio = hoyo["folio"].as_str().expect("f").to_string();
    let aseo = app
        .login_as("aseo1", "department", Some("aseo_ornato"))
        .await;
    let secpla = app.login_as("secpla1", "department", Some("secpla")).await;
    let coord = app.login_as("coord", "coordinator", None).await;
    let analyst = app.login_as("ana", "analyst", None).await;
    let admin = app.login_as("root", "admin", None).await;
    let get = |token: &str, path: &str| app.client.get(app.url(path)).bearer_auth(token).send();
    let post = |token: &str, path: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    // Department staff see only their own cases.
    let list: Value = get(&aseo, "/api/v1/staff/cases")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    let folios: Vec<&str> = list
        .as_array()
        .expect("a")
        .iter()
        .map(|c| c["folio"].as_str().expect("f"))
        .collect();
    assert_eq!(folios, vec![luz_folio.as_str()]);
    assert!(list[0].get("rut").is_none(), "lists carry no personal data");
    assert_eq!(
        get(&aseo, &format!("/api/v1/staff/cases/{hoyo_folio}"))
            .await
            .expect("s")
            .status(),
        403
    );
    assert_eq!(
        get(&aseo, "/api/v1/staff/cases?department=secpla")
            .await
            .expect("s")
            .status(),
        403
    );
    assert_eq!(
        get(&analyst, &format!("/api/v1/staff/cases/{luz_folio}"))
            .await
            .expect("s")
            .status(),
        403
    );
    assert_eq!(
        get(&analyst, "/api/v1/staff/cases")
            .await
            .expect("s")
            .status(),
        403
    );
    assert_eq!(app.get("/api/v1/staff/cases").await.status(), 401);
    let all: Value = get(&coord, "/api/v1/staff/cases")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(all.as_array().expect("a").len(), 2);

    // Detail shows personal data, and the read is audited.
    let d: Value = get(&aseo, &format!("/api/v1/staff/cases/{luz_folio}"))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(d["rut"], "12345678-5");
    let cal = app.state.calendar().await;
    let due: chrono::NaiveDate = d["due_date"].as_str().expect("due").parse().expect("date");
    let left = cal.days_left(app.state.today(), due);
    assert_eq!(d["business_days_left"], left);
    assert!(
        (20..=21).contains(&left),
        "a fresh case has its whole deadline ahead: {left}"
    );
    let audit: Value = get(&admin, &format!("/api/v1/admin/audit?folio={luz_folio}"))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert!(audit
        .as_array()
        .expect("a")
        .iter()
        .any(|e| e["action"] == "ver_caso" && e["username"] == "aseo1"));

    // Only the coordinator re-routes; the new department then sees the case.
    let ev = format!("/api/v1/staff/cases/{luz_folio}/events");
    let r = post(
        &aseo,
        &ev,
        json!({"kind": "derivar", "department": "secpla", "text": "no es nuestro"}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 403);
    let r = post(
        &coord,
        &ev,
        json!({"kind": "derivar", "department": "secpla", "text": "corresponde a SECPLA"}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 200);
    let list: Value = get(&secpla, "/api/v1/staff/cases")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(list.as_array().expect("a").len(), 2);
    assert_eq!(
        get(&aseo, &format!("/api/v1/staff/cases/{luz_folio}"))
            .await
            .expect("s")
            .status(),
        403
    );

    // Status machine: illegal transitions are 409; text is required where it matters.
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "cerrar"}))
            .await
            .expect("s")
            .status(),
        409
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "responder"}))
            .await
            .expect("s")
            .status(),
        422
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "volar"}))
            .await
            .expect("s")
            .status(),
        422
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "iniciar"}))
            .await
            .expect("s")
            .status(),
        200
    );
    let r = post(
        &secpla,
        &ev,
        json!({"kind": "pedir_informacion", "text": "¿Cuál es el número del poste?"}),
    )
    .await
    .expect("s");
    let v: Value = r.json().await.expect("j");
    assert_eq!(v["status"], "pendiente_informacion");
    assert!(v["paused_since"].is_string());
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "responder", "text": "x"}))
            .await
            .expect("s")
            .status(),
        409
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "reanudar"}))
            .await
            .expect("s")
            .status(),
        200
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "prorrogar"}))
            .await
            .expect("s")
            .status(),
        409,
        "reclamos have no extension"
    );
    let r = post(
        &secpla,
        &ev,
        json!({"kind": "responder", "text": "Repusimos la luminaria el martes."}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 200);
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "cerrar"}))
            .await
            .expect("s")
            .status(),
        200
    );
    assert_eq!(
        post(&secpla, &ev, json!({"kind": "comentar", "text": "tarde"}))
            .await
            .expect("s")
            .status(),
        409
    );

    // The resident sees the answer and a public history without internal notes.
    let code = luz["tracking_code"].as_str().expect("code");
    let t: Value = app
        .get(&format!("/api/v1/oirs/cases/{luz_folio}?code={code}"))
        .await
        .json()
        .await
        .expect("j");
    assert_eq!(t["status"], "cerrado");
    assert_eq!(t["answer"], "Repusimos la luminaria el martes.");
    assert!(
        !t.to_string().contains("corresponde a SECPLA"),
        "internal reasons stay internal"
    );

    // Pending report per department.
    let rep: Value = get(&coord, "/api/v1/staff/reports/pending")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    let secpla_row = rep
        .as_array()
        .expect("a")
        .iter()
        .find(|r| r["department"] == "secpla")
        .expect("row");
    assert_eq!(secpla_row["pending"], 1);
}
on_both_backends!(staff_roles_and_case_lifecycle);

async fn pause_extends_the_deadline_and_transparency_extends(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let mut body = case_body("transparencia");
    body["type"] = json!("transparencia");
    let (_, filed) = file(&app, body).await;
    let folio = filed["folio"].as_str().expect("f").to_string();
    assert_eq!(filed["department"], "transparencia");
    let coord = app.login_as("coord", "coordinator", None).await;
    let ev = format!("/api/v1/staff/cases/{folio}/events");
    let post = |body: Value| {
        app.client
            .post(app.url(&ev))
            .bearer_auth(&coord)
            .json(&body)
            .send()
    };
    let r: Value = post(json!({"kind": "pedir_informacion", "text": "Precise el periodo"}))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    let due_before: chrono::NaiveDate = r["due_date"].as_str().expect("d").parse().expect("date");
    // Pretend the clock stopped ten calendar days ago.
    let cal = app.state.calendar().await;
    let since = app.state.today() - chrono::Duration::days(10);
    ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query("UPDATE cases SET paused_since = $1 WHERE folio = $2")
            .bind(since.format("%Y-%m-%d").to_string()).bind(&folio).execute(pool).await.expect("update");
    });
    let r: Value = post(json!({"kind": "reanudar"}))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    let due_after: chrono::NaiveDate = r["due_date"].as_str().expect("d").parse().expect("date");
    let waited = cal.between(since, app.state.today()) as u32;
    assert!(waited >= 6);
    assert_eq!(due_after, cal.add(due_before, waited));
    let r: Value = post(json!({"kind": "prorrogar"}))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    let extended: chrono::NaiveDate = r["due_date"].as_str().expect("d").parse().expect("date");
    assert_eq!(extended, cal.add(due_after, 10));
    assert_eq!(
        post(json!({"kind": "prorrogar"}))
            .await
            .expect("s")
            .status(),
        409,
        "only once"
    );
}
on_both_backends!(pause_extends_the_deadline_and_transparency_extends);

#[tokio::test]
async fn staff_registers_cases_from_other_channels() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let partes = app
        .login_as("partes1", "department", Some("oficina_partes"))
        .await;
    let mut body = case_body("permisos_edificacion");
    body["type"] = json!("solicitud");
    body["channel"] = json!("oficina_partes");
    // Saturday 21 November 2026: counts from Monday 23.
    body["received_at"] = json!("2026-11-21T15:00:00Z");
    let r = app
        .client
        .post(app.url("/api/v1/staff/cases"))
        .bearer_auth(&partes)
        .json(&body)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("j");
    assert_eq!(v["due_date"], "2026-12-22");
    assert_eq!(v["department"], "dom");
    body["received_at"] = json!("2099-01-01T00:00:00Z");
    let r = app
        .client
        .post(app.url("/api/v1/staff/cases"))
        .bearer_auth(&partes)
        .json(&body)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"]["field"],
        "received_at"
    );
    body["received_at"] = json!("ayer");
    let r = app
        .client
        .post(app.url("/api/v1/staff/cases"))
        .bearer_auth(&partes)
        .json(&body)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 422);
}

async fn webhook_is_delivered_after_the_receiver_comes_back_and_across_restarts(backend: Backend) {
    // Reserve a port, then leave it closed: the receiver is "down".
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let hook = format!("http://127.0.0.1:{port}/hook");
    let Some(db) = common::TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let app = common::spawn_on(db, with_outbox(hook.clone(), None)).await;
    let (status, filed) = file(&app, case_body("alumbrado_publico")).await;
    assert_eq!(status, 201);
    let folio = filed["folio"].as_str().expect("f").to_string();
    // The worker tries and fails at least once.
    common::wait_for(Duration::from_secs(20), || async {
        let a: (i32,) = ventanilla::with_pool!(&app.state.store, pool => {
            sqlx::query_as("SELECT attempts FROM outbox WHERE kind = 'webhook'").fetch_one(pool).await.expect("q")
        });
        (a.0 >= 1).then_some(())
    })
    .await
    .expect("a failed attempt");
    // The admin view tells failing deliveries apart from ones not yet tried.
    let admin = app.login_as("root", "admin", None).await;
    let v: Value = app
        .client
        .get(app.url("/api/v1/admin/outbox?status=failing"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert!(
        v["counts"]["failing"].as_i64().expect("failing") >= 1,
        "{v}"
    );
    let failing = v["messages"].as_array().expect("a");
    assert!(failing.iter().any(|m| m["kind"] == "webhook"
        && m["status"] == "pending"
        && m["last_error"].is_string()));

    // "Restart": stop this instance, start another on the same database, receiver now up.
    let state = app.state.clone();
    let db = app.stop();
    state.store.close().await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let (rec, _h) = start_receiver(listener).await;
    let app2 = common::spawn_on(db, move |c| {
        c.database_url = url.into();
        with_outbox(hook, None)(c);
    })
    .await;
    // A delivery cut off mid-attempt waits for its lease (timeout + 5 s) to run out.
    let (headers, body) = common::wait_for(Duration::from_secs(30), || async {
        rec.got.lock().expect("lock").first().cloned()
    })
    .await
    .expect("delivered after the receiver came back");
    assert!(verify_signature(&headers, &body));
    assert!(body.contains(&folio));
    let _ = app2;
}
on_both_backends!(webhook_is_delivered_after_the_receiver_comes_back_and_across_restarts);

#[tokio::test]
async fn dead_letters_are_visible_and_retried_by_admins() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let hook = format!("http://127.0.0.1:{port}/hook");
    let Some(app) = spawn_app_with(Backend::Sqlite, move |c| {
        with_outbox(hook, None)(c);
        c.outbox.max_attempts = 2;
    })
    .await
    else {
        return;
    };
    file(&app, case_body("alumbrado_publico")).await;
    let admin = app.login_as("root", "admin", None).await;
    let dead: Value = common::wait_for(Duration::from_secs(20), || async {
        let v: Value = app
            .client
            .get(app.url("/api/v1/admin/outbox?status=dead"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("s")
            .json()
            .await
            .expect("j");
        (!v["messages"].as_array().expect("a").is_empty()).then_some(v)
    })
    .await
    .expect("dead letter");
    let msg = &dead["messages"][0];
    assert_eq!(msg["kind"], "webhook");
    assert_eq!(msg["attempts"], 2);
    assert!(msg["last_error"]
        .as_str()
        .expect("err")
        .contains("cannot reach"));
    let id = msg["id"].as_i64().expect("id");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let (rec, _h) = start_receiver(listener).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/admin/outbox/{id}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 204);
    common::wait_for(Duration::from_secs(20), || async {
        (!rec.got.lock().expect("lock").is_empty()).then_some(())
    })
    .await
    .expect("delivered after retry");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/admin/outbox/{id}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 404, "a sent message cannot be retried");
}

async fn alerts_mark_cases_near_and_past_their_deadline(backend: Backend) {
    // A configured (if unreachable) SMTP relay, so alert e-mails are queued.
    let Some(app) = spawn_app_with(backend, |c| {
        c.smtp.host = Some("127.0.0.1".into());
        c.smtp.port = 9;
    })
    .await
    else {
        return;
    };
    let (_, a) = file(&app, case_body("alumbrado_publico")).await;
    let (_, b) = file(&app, case_body("alumbrado_publico")).await;
    let today = app.state.today();
    let cal = app.state.calendar().await;
    let soon = cal.add(cal.on_or_after(today), 2);
    let past = today - chrono::Duration::days(3);
    for (f, d) in [(&a, soon), (&b, past)] {
        ventanilla::with_pool!(&app.state.store, pool => {
            sqlx::query("UPDATE cases SET due_date = $1 WHERE folio = $2")
                .bind(d.format("%Y-%m-%d").to_string()).bind(f["folio"].as_str()).execute(pool).await.expect("u");
        });
    }
    let changed =
        ventanilla::oirs::service::run_alerts(&app.state.store, &cal, app.state.channels(), today)
            .await
            .expect("alerts");
    assert_eq!(changed, 2);
    assert_eq!(
        ventanilla::oirs::service::run_alerts(&app.state.store, &cal, app.state.channels(), today)
            .await
            .expect("again"),
        0,
        "idempotent"
    );
    let coord = app.login_as("coord", "coordinator", None).await;
    let get = |q: &str| {
        app.client
            .get(app.url(&format!("/api/v1/staff/cases?{q}")))
            .bearer_auth(&coord)
            .send()
    };
    let v: Value = get("alert=alerta")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v[0]["folio"], a["folio"]);
    let v: Value = get("alert=vencido")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v[0]["folio"], b["folio"]);
    let v: Value = get("overdue=true")
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v.as_array().expect("a").len(), 1);
    // The department was told through the outbox.
    let n: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'email' AND payload LIKE '%vence%'").fetch_one(pool).await.expect("q")
    });
    assert_eq!(n.0, 2);
}
on_both_backends!(alerts_mark_cases_near_and_past_their_deadline);

#[tokio::test]
async fn login_backs_off_after_failures() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    app.login_as("maria", "coordinator", None).await;
    for _ in 0..5 {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                json!({"username": "maria", "password": "nope"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post_json(
            "/api/v1/auth/login",
            json!({"username": "maria", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn admin_parameters_and_holidays() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let admin = app.login_as("root", "admin", None).await;
    let coord = app.login_as("coord", "coordinator", None).await;
    let put = |token: &str, path: &str, body: Value| {
        app.client
            .put(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = put(
        &coord,
        "/api/v1/admin/case-types/reclamo",
        json!({"name": "Reclamo", "deadline_days": 10, "alert_days": 3}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 403);
    let r = put(
        &admin,
        "/api/v1/admin/case-types/reclamo",
        json!({"name": "Reclamo", "deadline_days": 10, "alert_days": 10}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 422);
    let r = put(
        &admin,
        "/api/v1/admin/case-types/reclamo",
        json!({"name": "Reclamo", "deadline_days": 10, "alert_days": 3}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 200);
    // A new holiday tomorrow moves deadlines at once.
    let tomorrow = app.state.today() + chrono::Duration::days(1);
    let r = put(
        &admin,
        &format!("/api/v1/admin/holidays/{tomorrow}"),
        json!({"name": "Feriado de prueba"}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 200);
    let cal = app.state.calendar().await;
    assert!(!cal.is_business_day(tomorrow));
    let (_, filed) = file(&app, case_body("alumbrado_publico")).await;
    assert_eq!(
        filed["due_date"],
        cal.due_date(app.state.today(), 10)
            .format("%Y-%m-%d")
            .to_string()
    );
    // Routing rules can be changed and the catch-all is protected.
    let r = put(
        &admin,
        "/api/v1/admin/routing-rules",
        json!({"case_type": "reclamo", "topic": "alumbrado_publico", "department": "dom"}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 200);
    let (_, filed) = file(&app, case_body("alumbrado_publico")).await;
    assert_eq!(filed["department"], "dom");
    let r = app
        .client
        .delete(app.url("/api/v1/admin/routing-rules/*/*"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 409);
    let r = put(
        &admin,
        "/api/v1/admin/routing-rules",
        json!({"case_type": "reclamo", "topic": "nada", "department": "dom"}),
    )
    .await
    .expect("s");
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn filing_from_the_chat_links_the_conversation() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let created: Value = app
        .post_json("/api/v1/chat/sessions", json!({}))
        .await
        .json()
        .await
        .expect("j");
    let sid = created["session_id"].as_str().expect("sid");
    // The OIRS buttons of the chat lead to the filing form.
    let r: Value = app
        .post_json(
            &format!("/api/v1/chat/sessions/{sid}/messages"),
            json!({"button": "hacer_reclamo"}),
        )
        .await
        .json()
        .await
        .expect("j");
    assert!(r["reply"]["links"][0]["url"]
        .as_str()
        .expect("url")
        .starts_with("/oirs?tipo=reclamo"));
    let mut body = case_body("aseo_retiro");
    body["chat_session_id"] = json!(sid);
    let (status, filed) = file(&app, body.clone()).await;
    assert_eq!(status, 201, "{filed}");
    let case =
        ventanilla::oirs::service::find_case(&app.state.store, filed["folio"].as_str().expect("f"))
            .await
            .expect("q")
            .expect("case");
    assert_eq!(case.channel, "chat");
    body["chat_session_id"] = json!("00000000-0000-0000-0000-000000000000");
    let (status, v) = file(&app, body).await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (422, Some("chat_session_id"))
    );
}

/// Staff actions saved at the same moment never undo each other: a comment beside a
/// re-routing keeps the new department, one beside an extension keeps the extension. Each
/// request either takes effect or gets 409 (the caller retries); many rounds, both stores.
async fn concurrent_actions_both_take_effect(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let token = app.login_as("coord", "coordinator", None).await;
    let act = |folio: String, body: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            // A 409 asks the caller to retry; anything else is final.
            for _ in 0..5 {
                let r = app
                    .client
                    .post(app.url(&format!("/api/v1/staff/cases/{folio}/events")))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                if r.status() != 409 {
                    return r.status().as_u16();
                }
            }
            409
        }
    };
    let case_of = |folio: String| {
        let (app, token) = (&app, token.clone());
        async move {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/staff/cases/{folio}")))
                .bearer_auth(&token)
                .send()
                .await
                .expect("send");
            let v: Value = r.json().await.expect("json");
            v
        }
    };
    let (_, filed) = file(&app, case_body("alumbrado_publico")).await;
    let folio = filed["folio"].as_str().expect("folio").to_string();
    for round in 0..12 {
        let target = if round % 2 == 0 { "dom" } else { "dideco" };
        let (a, b) = tokio::join!(
            act(
                folio.clone(),
                json!({"kind": "derivar", "department": target, "text": "corresponde"})
            ),
            act(
                folio.clone(),
                json!({"kind": "comentar", "text": format!("nota {round}")})
            ),
        );
        assert_eq!((a, b), (200, 200), "round {round}");
        let v = case_of(folio.clone()).await;
        assert_eq!(v["department"], target, "round {round}: {v}");
    }
    let v = case_of(folio.clone()).await;
    let notes = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "comentar")
        .count();
    assert_eq!(notes, 12, "every comment was recorded");

    for round in 0..4 {
        let mut body = case_body("alumbrado_publico");
        body["type"] = json!("transparencia");
        let (_, filed) = file(&app, body).await;
        let folio = filed["folio"].as_str().expect("folio").to_string();
        let before = case_of(folio.clone()).await["due_date"].clone();
        let (a, b) = tokio::join!(
            act(folio.clone(), json!({"kind": "prorrogar"})),
            act(
                folio.clone(),
                json!({"kind": "comentar", "text": "revisando"})
            ),
        );
        assert_eq!((a, b), (200, 200), "round {round}");
        let v = case_of(folio.clone()).await;
        assert_eq!(v["extended"], true, "round {round}: {v}");
        assert_ne!(v["due_date"], before, "round {round}: {v}");
    }
}
on_both_backends!(concurrent_actions_both_take_effect);
