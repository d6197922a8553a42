//! Two instances on one database, as behind a load balancer (SPEC: no instance keeps state
//! another needs): folios stay consecutive and unique under filing on both, each outbox
//! message reaches the receiver once, deadline alerts are recorded and e-mailed once, a chat
//! continues on the other instance, and a catalog reload on one reaches the other.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{spawn_on, Backend, TestApp, TestDb};
use serde_json::{json, Value};
use ventanilla::config::{Config, Secret};

fn case_body() -> Value {
    json!({
        "type": "reclamo",
        "topic": "alumbrado_publico",
        "description": "La luminaria del pasaje Los Aromos lleva dos semanas apagada.",
        "name": "Juana Pérez",
        "rut": "12.345.678-5",
        "email": "juana@example.cl",
        "consent": true
    })
}

/// Two instances on one fresh database of `backend`, both configured by `tweak`.
async fn two_instances(
    backend: Backend,
    tweak: impl Fn(&mut Config),
) -> Option<(TestApp, TestApp)> {
    let db = TestDb::new(backend).await?;
    let url = db.url.clone();
    let a = spawn_on(db, &tweak).await;
    let b = spawn_on(TestDb::at(url), &tweak).await;
    Some((a, b))
}

async fn file(app: &TestApp) -> Value {
    app.file_case(case_body()).await
}

fn seq(folio: &str) -> i64 {
    folio
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("folio sequence")
}

/// Counts webhook deliveries per `X-Ventanilla-Delivery` id, and which instance made each.
#[derive(Clone, Default)]
struct Receiver {
    deliveries: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

async fn start_receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let rec = Receiver::default();
    let r2 = rec.clone();
    let app = axum::Router::new().route(
        "/hook/{instance}",
        axum::routing::post(
            move |axum::extract::Path(instance): axum::extract::Path<String>,
                  headers: HeaderMap| {
                let r = r2.clone();
                async move {
                    let id = headers["x-ventanilla-delivery"]
                        .to_str()
                        .expect("delivery id")
                        .to_string();
                    r.deliveries
                        .lock()
                        .expect("lock")
                        .entry(id)
                        .or_default()
                        .push(instance);
                    "ok"
                }
            },
        ),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, rec)
}

/// Filing on both instances at once gives unique consecutive folios, and every derivation
/// webhook is delivered exactly once although both outbox workers compete for the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folios_and_deliveries_are_shared_by_two_instances() {
    let (hook, rec) = start_receiver().await;
    let db = match TestDb::new(Backend::Postgres).await {
        Some(db) => db,
        None => return,
    };
    let url = db.url.clone();
    let outbox = |name: &'static str, hook: String| {
        move |c: &mut Config| {
            c.outbox.webhook_url = Some(format!("{hook}/hook/{name}"));
            c.webhook_secret = Secret::new("clave-de-prueba-webhook");
            c.outbox.poll_ms = 10;
            c.outbox.base_backoff_ms = 20;
            c.outbox.max_backoff_ms = 200;
        }
    };
    let a = Arc::new(spawn_on(db, outbox("a", hook.clone())).await);
    let b = Arc::new(spawn_on(TestDb::at(url), outbox("b", hook)).await);

    const PER_INSTANCE: usize = 60;
    let mut tasks = Vec::new();
    for i in 0..2 * PER_INSTANCE {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { file(&app).await }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let v = t.await.expect("join");
        seqs.push(seq(v["folio"].as_str().expect("folio")));
    }
    seqs.sort_unstable();
    let n = 2 * PER_INSTANCE as i64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "unique and consecutive");

    let store = &a.state.store;
    let ids: Vec<(i64,)> = ventanilla::with_pool!(store, pool => {
        sqlx::query_as("SELECT id FROM outbox WHERE kind = 'webhook' ORDER BY id")
            .fetch_all(pool).await.expect("ids")
    });
    assert_eq!(ids.len() as i64, n, "one derivation webhook per case");
    let all_sent = common::wait_for(Duration::from_secs(60), || async {
        let (pending,): (i64,) = ventanilla::with_pool!(store, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND status <> 'sent'")
                .fetch_one(pool).await.expect("count")
        });
        (pending == 0).then_some(())
    })
    .await;
    assert!(all_sent.is_some(), "every webhook delivered");
    let deliveries = rec.deliveries.lock().expect("lock").clone();
    let twice: Vec<_> = deliveries.iter().filter(|(_, by)| by.len() != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let mut delivered: Vec<i64> = deliveries.keys().map(|k| k.parse().expect("id")).collect();
    delivered.sort_unstable();
    assert_eq!(delivered, ids.iter().map(|r| r.0).collect::<Vec<_>>());
    let by_a = deliveries.values().filter(|by| by[0] == "a").count();
    eprintln!(
        "deliveries: {by_a} by instance a, {} by instance b",
        deliveries.len() - by_a
    );
}

/// Both instances run the deadline alert job at the same moment, repeatedly: each case's
/// level moves once and its department gets one e-mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_alerts_are_not_doubled() {
    // A configured (if unreachable) SMTP relay, so alert e-mails are queued.
    let Some((a, b)) = two_instances(Backend::Postgres, |c| {
        c.smtp.host = Some("127.0.0.1".into());
        c.smtp.port = 9;
    })
    .await
    else {
        return;
    };
    const CASES: usize = 40;
    let mut folios = Vec::new();
    for i in 0..CASES {
        let v = file(if i % 2 == 0 { &a } else { &b }).await;
        folios.push(v["folio"].as_str().expect("folio").to_string());
    }
    let today = a.state.today();
    let cal = a.state.calendar().await;
    let soon = cal.add(cal.on_or_after(today), 2);
    let past = today - chrono::Duration::days(3);
    for (i, folio) in folios.iter().enumerate() {
        let due = if i % 2 == 0 { soon } else { past };
        ventanilla::with_pool!(&a.state.store, pool => {
            sqlx::query("UPDATE cases SET due_date = $1 WHERE folio = $2")
                .bind(due.format("%Y-%m-%d").to_string()).bind(folio).execute(pool).await.expect("due");
        });
    }
    let run = |app: &TestApp| {
        let (store, channels) = (app.state.store.clone(), app.state.channels());
        let cal = cal.clone();
        async move {
            ventanilla::oirs::service::run_alerts(&store, &cal, channels, today)
                .await
                .expect("alerts")
        }
    };
    let mut changed = 0;
    for _ in 0..3 {
        let (x, y) = tokio::join!(run(&a), run(&b));
        changed += x + y;
    }
    assert_eq!(changed, CASES, "each case's level moved once in all");
    let per_folio: Vec<(String, i64)> = ventanilla::with_pool!(&a.state.store, pool => {
        sqlx::query_as(
            "SELECT folio, COUNT(*) FROM outbox WHERE kind = 'email' AND payload LIKE '%vence%' \
             GROUP BY folio ORDER BY folio",
        )
        .fetch_all(pool).await.expect("emails")
    });
    let per_folio: BTreeMap<String, i64> = per_folio.into_iter().collect();
    assert_eq!(per_folio.len(), CASES, "every case alerted: {per_folio:?}");
    assert!(
        per_folio.values().all(|&n| n == 1),
        "one e-mail per alert: {per_folio:?}"
    );
    let levels: Vec<(String, i64)> = ventanilla::with_pool!(&a.state.store, pool => {
        sqlx::query_as("SELECT alert_level, COUNT(*) FROM cases GROUP BY alert_level ORDER BY alert_level")
            .fetch_all(pool).await.expect("levels")
    });
    assert_eq!(
        levels,
        vec![
            ("alerta".to_string(), CASES as i64 / 2),
            ("vencido".to_string(), CASES as i64 / 2)
        ]
    );
}

async fn say(app: &TestApp, sid: &str, text: &str) -> Value {
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{sid}/messages"),
            json!({ "text": text }),
        )
        .await;
    assert_eq!(r.status(), 200, "{sid} on {}", app.base);
    r.json().await.expect("json")
}

/// A conversation started on one instance continues on the other, in context both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_continues_on_the_other_instance() {
    let Some((a, b)) = two_instances(Backend::Postgres, |_| {}).await else {
        return;
    };
    let r = a.post_json("/api/v1/chat/sessions", json!({})).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    let sid = v["session_id"].as_str().expect("sid").to_string();

    let v = say(
        &a,
        &sid,
        "como saco la licencia de conducir por primera vez",
    )
    .await;
    assert_eq!(v["match"]["topic"], "licencia_conducir", "{v}");
    // "¿y cuánto sale?" names no subject: the other instance knows it is the licence.
    let v = say(&b, &sid, "¿y cuánto sale?").await;
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    assert_eq!(v["match"]["topic"], "licencia_conducir", "{v}");
    // And back: what was said on the second instance is the context on the first.
    let v = say(&b, &sid, "y donde pago el permiso de circulacion?").await;
    assert_eq!(v["match"]["topic"], "permiso_circulacion", "{v}");
    let v = say(&a, &sid, "¿y cuánto sale?").await;
    assert_eq!(v["match"]["topic"], "permiso_circulacion", "{v}");
}

async fn menu_labels(app: &TestApp) -> Vec<String> {
    let v: Value = app
        .get("/api/v1/chat/menu")
        .await
        .json()
        .await
        .expect("json");
    v.as_array()
        .expect("menu")
        .iter()
        .filter_map(|b| b["label"].as_str().map(String::from))
        .collect()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

/// A catalog reload asked of one instance reaches the other through the database signal
/// (within the poll interval); a catalog broken on disk is rejected and signals nothing.
async fn a_catalog_reload_reaches_every_instance(backend: Backend) {
    let intents = tempfile::tempdir().expect("tempdir");
    copy_dir(&common::intents_dir(), intents.path());
    let dir = intents.path().to_path_buf();
    let Some((a, b)) = two_instances(backend, |c| {
        c.intents_dir = dir.clone();
        c.signal_poll_ms = 100;
    })
    .await
    else {
        return;
    };
    const OLD: &str = "Direcciones, teléfonos y correos";
    const NEW: &str = "Contactos del municipio";
    assert!(menu_labels(&b).await.iter().any(|l| l == OLD));

    let botonera = intents.path().join("botonera.toml");
    let text = std::fs::read_to_string(&botonera).expect("read");
    std::fs::write(
        &botonera,
        text.replace(&format!("label = \"{OLD}\""), &format!("label = \"{NEW}\"")),
    )
    .expect("write");
    let admin = a.login_as("admin", "admin", None).await;
    let reload = |app: &TestApp| {
        app.client
            .post(app.url("/api/v1/admin/catalog/reload"))
            .bearer_auth(&admin)
            .send()
    };
    assert!(
        menu_labels(&b).await.iter().any(|l| l == OLD),
        "nothing changes before the reload"
    );
    assert_eq!(reload(&a).await.expect("reload").status(), 200);
    assert!(menu_labels(&a).await.iter().any(|l| l == NEW));
    let reached = common::wait_for(Duration::from_secs(20), || async {
        menu_labels(&b).await.iter().any(|l| l == NEW).then_some(())
    })
    .await;
    assert!(reached.is_some(), "the other instance reloaded");

    // A broken catalog is refused where it was asked and not announced to the others.
    let generation =
        ventanilla::store::signals::generation(&a.state.store, ventanilla::store::signals::CATALOG)
            .await
            .expect("generation");
    std::fs::write(&botonera, "[[button]]\nid = \"roto\"\n").expect("write");
    assert_eq!(reload(&b).await.expect("reload").status(), 422);
    assert_eq!(
        ventanilla::store::signals::generation(&a.state.store, ventanilla::store::signals::CATALOG)
            .await
            .expect("generation"),
        generation
    );
    assert!(menu_labels(&a).await.iter().any(|l| l == NEW));
    assert!(menu_labels(&b).await.iter().any(|l| l == NEW));
}
on_both_backends!(a_catalog_reload_reaches_every_instance);
