//! Ley 21.719 on both stores: clocks per case type, data-rights requests, data subjects
//! (gathering, rectification, anonymisation, block), retention, roles and audit.

mod common;

use chrono::Duration as Days;
use common::{spawn_app_with, spawn_on, Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use ventanilla::config::Config;
use ventanilla::oirs::calendar::Clock;

const RUT_A: &str = "12.345.678-5";
const RUT_A_NORM: &str = "12345678-5";
const RUT_B: &str = "11.111.111-1";

/// E-mails queue for a relay that never answers: they stay in the outbox to be looked at.
fn with_mail(c: &mut Config) {
    c.smtp.host = Some("127.0.0.1".into());
    c.smtp.port = 9;
    c.outbox.base_backoff_ms = 3_600_000;
    c.outbox.max_backoff_ms = 3_600_000;
}

fn body(case_type: &str, rut: &str, name: &str, email: &str, right: Option<&str>) -> Value {
    let mut b = json!({
        "type": case_type,
        "topic": if case_type == "datos_personales" { "datos_personales" } else { "alumbrado_publico" },
        "description": format!("Solicitud de {name}: la luminaria de mi pasaje está apagada hace semanas."),
        "name": name,
        "rut": rut,
        "email": email,
        "phone": "+56 9 8765 4321",
        "address": "Pasaje Los Aromos 123",
        "consent": true
    });
    if let Some(r) = right {
        b["right"] = json!(r);
    }
    b
}

async fn file(app: &TestApp, b: Value) -> (u16, Value) {
    let r = app.post_json("/api/v1/oirs/cases", b).await;
    (r.status().as_u16(), r.json().await.expect("json"))
}

async fn call(
    app: &TestApp,
    method: &str,
    token: &str,
    path: &str,
    b: Option<Value>,
) -> (u16, Value) {
    let req = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app.client.post(app.url(path)),
        "PUT" => app.client.put(app.url(path)),
        "PATCH" => app.client.patch(app.url(path)),
        "DELETE" => app.client.delete(app.url(path)),
        _ => unreachable!(),
    };
    let req = req.bearer_auth(token);
    let req = match b {
        Some(b) => req.json(&b),
        None => req,
    };
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn event(app: &TestApp, token: &str, folio: &str, b: Value) -> Value {
    let (s, v) = call(
        app,
        "POST",
        token,
        &format!("/api/v1/staff/cases/{folio}/events"),
        Some(b),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn close(app: &TestApp, token: &str, folio: &str) {
    event(
        app,
        token,
        folio,
        json!({"kind": "responder", "text": "Estimada vecina: la luminaria fue reparada."}),
    )
    .await;
    event(app, token, folio, json!({"kind": "cerrar"})).await;
}

fn date(v: &Value) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(v.as_str().expect("date"), "%Y-%m-%d").expect("date")
}

async fn clocks_follow_the_case_type(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let types: Value = app
        .get("/api/v1/oirs/case-types")
        .await
        .json()
        .await
        .expect("json");
    let of = |id: &str| {
        types
            .as_array()
            .expect("types")
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .expect(id)
    };
    let dp = of("datos_personales");
    assert_eq!(
        (
            dp["clock"].as_str(),
            dp["term_days"].as_i64(),
            dp["extension_days"].as_i64()
        ),
        (Some("corridos"), Some(30), Some(30)),
        "{dp}"
    );
    assert!(
        dp["label"].as_str().is_some_and(|l| l.contains("21.719")),
        "{dp}"
    );
    let r = of("reclamo");
    assert_eq!(
        (r["clock"].as_str(), r["term_days"].as_i64()),
        (Some("habiles"), Some(20))
    );
    let t = of("transparencia");
    assert_eq!(
        (
            t["clock"].as_str(),
            t["term_days"].as_i64(),
            t["extension_days"].as_i64()
        ),
        (Some("habiles"), Some(20), Some(10))
    );

    // A data-rights request needs its right and a RUT; other types take no right.
    let (s, v) = file(
        &app,
        body(
            "datos_personales",
            "",
            "Juana Pérez",
            "juana@example.cl",
            None,
        ),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"right") && fields.contains(&"rut"), "{v}");
    let (s, v) = file(
        &app,
        body(
            "datos_personales",
            RUT_A,
            "Juana Pérez",
            "juana@example.cl",
            Some("olvido"),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("right")),
        "{v}"
    );
    let (s, v) = file(
        &app,
        body(
            "reclamo",
            RUT_A,
            "Juana Pérez",
            "juana@example.cl",
            Some("acceso"),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("right")),
        "{v}"
    );

    // Filed publicly: 30 días corridos from today, the next business day if that one is not.
    let (s, filed) = file(
        &app,
        body(
            "datos_personales",
            RUT_A,
            "Juana Pérez",
            "juana@example.cl",
            Some("acceso"),
        ),
    )
    .await;
    assert_eq!(s, 201, "{filed}");
    let cal = app.state.calendar().await;
    let today = app.state.today();
    let due = cal.due_on(Clock::Corridos, today, 30);
    assert_eq!(date(&filed["due_date"]), due);
    assert!((due - today).num_days() >= 30 && cal.is_business_day(due));
    let folio = filed["folio"].as_str().expect("folio").to_string();
    assert_eq!(filed["department"], "transparencia");

    let admin = app.login_as("admin1", "admin", None).await;
    let (s, d) = call(
        &app,
        "GET",
        &admin,
        &format!("/api/v1/staff/cases/{folio}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (d["clock"].as_str(), d["right"].as_str()),
        (Some("corridos"), Some("acceso")),
        "{d}"
    );
    assert_eq!(d["days_left"].as_i64(), Some((due - today).num_days()));

    // The extension adds 30 días corridos once.
    let v = event(
        &app,
        &admin,
        &folio,
        json!({"kind": "prorrogar", "text": "Volumen de datos"}),
    )
    .await;
    assert_eq!(date(&v["due_date"]), cal.extend(Clock::Corridos, due, 30));
    let (s, _) = call(
        &app,
        "POST",
        &admin,
        &format!("/api/v1/staff/cases/{folio}/events"),
        Some(json!({"kind": "prorrogar"})),
    )
    .await;
    assert_eq!(s, 409);
    // A pause that ends the same day costs nothing.
    let before = date(
        &event(
            &app,
            &admin,
            &folio,
            json!({"kind": "pedir_informacion", "text": "Copia de su cédula"}),
        )
        .await["due_date"],
    );
    let after = date(&event(&app, &admin, &folio, json!({"kind": "reanudar"})).await["due_date"]);
    assert_eq!(before, after);

    // Registered by staff with its real reception date: the term runs from then.
    let received = chrono::Utc::now() - Days::days(10);
    let mut b = body(
        "datos_personales",
        RUT_A,
        "Juana Pérez",
        "juana@example.cl",
        Some("supresion"),
    );
    b["channel"] = json!("presencial");
    b["received_at"] = json!(received.to_rfc3339());
    let (s, v) = call(&app, "POST", &admin, "/api/v1/staff/cases", Some(b)).await;
    assert_eq!(s, 201, "{v}");
    let local = received.with_timezone(&app.state.tz).date_naive();
    assert_eq!(date(&v["due_date"]), cal.due_on(Clock::Corridos, local, 30));

    // An administrator moves reclamos to 15 días corridos: new cases follow, old ones keep theirs.
    let (_, old) = file(
        &app,
        body("reclamo", RUT_B, "Pedro Soto", "pedro@example.cl", None),
    )
    .await;
    assert_eq!(
        date(&old["due_date"]),
        cal.due_on(Clock::Habiles, today, 20)
    );
    let (s, v) = call(
        &app,
        "PUT",
        &admin,
        "/api/v1/admin/case-types/reclamo",
        Some(json!({"label": "Reclamo", "clock": "corridos", "term_days": 15, "alert_days": 3})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, new) = file(
        &app,
        body("reclamo", RUT_B, "Pedro Soto", "pedro@example.cl", None),
    )
    .await;
    assert_eq!(
        date(&new["due_date"]),
        cal.due_on(Clock::Corridos, today, 15)
    );
    let (_, d) = call(
        &app,
        "GET",
        &admin,
        &format!("/api/v1/staff/cases/{}", old["folio"].as_str().expect("f")),
        None,
    )
    .await;
    assert_eq!(
        (d["clock"].as_str(), date(&d["due_date"])),
        (Some("habiles"), date(&old["due_date"]))
    );
    // A clock that does not exist is refused.
    let (s, _) = call(
        &app,
        "PUT",
        &admin,
        "/api/v1/admin/case-types/reclamo",
        Some(json!({"label": "Reclamo", "clock": "semanas", "term_days": 15, "alert_days": 3})),
    )
    .await;
    assert_eq!(s, 422);
}
on_both_backends!(clocks_follow_the_case_type);

async fn outbox_payloads(app: &TestApp) -> Vec<String> {
    let rows: Vec<(String,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT payload FROM outbox").fetch_all(pool).await.expect("outbox")
    });
    rows.into_iter().map(|r| r.0).collect()
}

async fn audit_details(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT action, folio, detail FROM audit_log ORDER BY id").fetch_all(pool).await.expect("audit")
    })
}

async fn data_subjects(backend: Backend) {
    let Some(app) = spawn_app_with(backend, with_mail).await else {
        return;
    };
    let (_, a1) = file(
        &app,
        body("reclamo", RUT_A, "Juana Pérez", "juana@example.cl", None),
    )
    .await;
    let (_, a2) = file(
        &app,
        body(
            "datos_personales",
            RUT_A,
            "Juana Pérez",
            "juana@example.cl",
            Some("acceso"),
        ),
    )
    .await;
    let (_, b1) = file(
        &app,
        body("reclamo", RUT_B, "Pedro Soto", "pedro@example.cl", None),
    )
    .await;
    let (fa1, fa2, fb1) = (
        a1["folio"].as_str().expect("f"),
        a2["folio"].as_str().expect("f"),
        b1["folio"].as_str().expect("f"),
    );
    let path = format!("/api/v1/staff/data-subjects/{RUT_A_NORM}");

    // Who may: administrators and the unit that handles personal data; nobody else.
    let admin = app.login_as("admin1", "admin", None).await;
    let privacy = app
        .login_as("transp", "department", Some("transparencia"))
        .await;
    let dom = app.login_as("dom1", "department", Some("dom")).await;
    let coord = app.login_as("coord", "coordinator", None).await;
    let analyst = app.login_as("ana", "analyst", None).await;
    for t in [&dom, &coord, &analyst] {
        let (s, v) = call(&app, "GET", t, &path, None).await;
        assert_eq!(s, 403, "{v}");
        let (s, _) = call(&app, "POST", t, &format!("{path}/anonymize"), None).await;
        assert_eq!(s, 403);
    }
    let (s, v) = call(
        &app,
        "GET",
        &admin,
        "/api/v1/staff/data-subjects/12345678-9",
        None,
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("rut")), "{v}");

    // Everything of that RUT, nothing of another.
    let (s, subject) = call(&app, "GET", &privacy, &path, None).await;
    assert_eq!(s, 200, "{subject}");
    let folios: Vec<&str> = subject["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["folio"].as_str())
        .collect();
    assert_eq!(folios, vec![fa1, fa2]);
    let text = subject.to_string();
    assert!(
        !text.contains(fb1) && !text.contains("Pedro") && !text.contains("pedro@example.cl"),
        "{text}"
    );
    assert_eq!(subject["contact"]["emails"], json!(["juana@example.cl"]));
    assert!(subject["cases"][0]["events"]
        .as_array()
        .is_some_and(|e| e.len() >= 2));
    assert!(
        subject["messages"].as_array().is_some_and(
            |m| !m.is_empty() && m.iter().all(|m| m["payload"]["to"] == "juana@example.cl")
        ),
        "{subject}"
    );
    let reads: Vec<_> = audit_details(&app)
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "ver_titular")
        .collect();
    assert_eq!(reads.len(), 2, "one audit row per case read");
    assert!(reads
        .iter()
        .all(|(_, _, d)| !d.as_deref().unwrap_or("").contains("12345678")));

    // Rectification of contact data, with its trail.
    let (s, v) = call(
        &app,
        "PATCH",
        &privacy,
        &path,
        Some(json!({"email": "juana.perez@example.cl"})),
    )
    .await;
    assert_eq!((s, v["rectified"].as_i64()), (200, Some(2)), "{v}");
    let (s, _) = call(
        &app,
        "PATCH",
        &privacy,
        &path,
        Some(json!({"email": "no-es-correo"})),
    )
    .await;
    assert_eq!(s, 422);
    let (_, d) = call(
        &app,
        "GET",
        &admin,
        &format!("/api/v1/staff/cases/{fa1}"),
        None,
    )
    .await;
    assert_eq!(d["email"], "juana.perez@example.cl");
    assert!(
        d["events"]
            .as_array()
            .expect("ev")
            .iter()
            .any(|e| e["kind"] == "rectificar"),
        "{d}"
    );
    assert!(audit_details(&app)
        .await
        .iter()
        .any(|(a, f, _)| a == "rectificar_datos" && f.as_deref() == Some(fa1)));

    // Anonymisation touches closed cases only, and statistics stay.
    let month = app.state.today().format("%Y-%m").to_string();
    let report = |app: &TestApp, admin: String| {
        let url = format!("/api/v1/reports/monthly/{month}?format=json");
        let client = app.client.clone();
        let full = app.url(&url);
        async move {
            let v: Value = client
                .get(full)
                .bearer_auth(admin)
                .send()
                .await
                .expect("r")
                .json()
                .await
                .expect("j");
            (
                v["oirs"]["filed"].clone(),
                v["oirs"]["by_type"].clone(),
                v["oirs"]["by_department"].clone(),
            )
        }
    };
    close(&app, &admin, fa1).await;
    let before = report(&app, admin.clone()).await;
    let (s, v) = call(&app, "POST", &privacy, &format!("{path}/anonymize"), None).await;
    assert_eq!((s, v["anonymized"].as_i64()), (200, Some(1)), "{v}");
    assert_eq!(
        report(&app, admin.clone()).await,
        before,
        "statistics unchanged"
    );
    let (_, d) = call(
        &app,
        "GET",
        &admin,
        &format!("/api/v1/staff/cases/{fa1}"),
        None,
    )
    .await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["type"].as_str(),
            d["topic"].as_str(),
            d["department"].as_str()
        ),
        (
            Some("cerrado"),
            Some("reclamo"),
            Some("alumbrado_publico"),
            Some("aseo_ornato")
        )
    );
    for k in ["rut", "email", "phone", "address", "answer"] {
        assert!(d[k].is_null(), "{k} left: {d}");
    }
    assert_eq!(
        (d["name"].as_str(), d["description"].as_str()),
        (Some(""), Some(""))
    );
    assert!(d["events"]
        .as_array()
        .expect("ev")
        .iter()
        .all(|e| e["note"].is_null()));
    // Nothing of the person left in the outbox or the audit log, except on the open case.
    let (_, d2) = call(
        &app,
        "GET",
        &admin,
        &format!("/api/v1/staff/cases/{fa2}"),
        None,
    )
    .await;
    assert_eq!(d2["rut"], RUT_A_NORM, "the open case keeps its data");
    for p in outbox_payloads(&app).await {
        if p.contains(fa1) {
            panic!("outbox keeps the anonymised case: {p}");
        }
    }
    assert!(audit_details(&app)
        .await
        .iter()
        .all(|(_, _, d)| !d.as_deref().unwrap_or("").contains(RUT_A_NORM)));
    assert!(audit_details(&app)
        .await
        .iter()
        .any(|(a, f, _)| a == "anonimizar" && f.as_deref() == Some(fa1)));
    // An anonymised message cannot be sent again.
    let (id,): (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT id FROM outbox WHERE payload = $1 ORDER BY id LIMIT 1")
            .bind(ventanilla::outbox::ANONYMIZED_PAYLOAD).fetch_one(pool).await.expect("anonymised message")
    });
    let (s, _) = call(
        &app,
        "POST",
        &admin,
        &format!("/api/v1/admin/outbox/{id}/retry"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Tracking the anonymised case with the RUT no longer finds it.
    let r = app
        .get(&format!("/api/v1/oirs/cases/{fa1}?rut={RUT_A_NORM}"))
        .await;
    assert_eq!(r.status(), 404);
    // Again: nothing more to do.
    let (_, v) = call(&app, "POST", &admin, &format!("{path}/anonymize"), None).await;
    assert_eq!(v["anonymized"].as_i64(), Some(0));

    // Block: waiting e-mails to the person are skipped, and no new one is queued.
    let (s, v) = call(
        &app,
        "POST",
        &privacy,
        &format!("{path}/block"),
        Some(json!({"reason": "Solicitud de bloqueo"})),
    )
    .await;
    assert_eq!((s, v["blocked"].as_bool()), (200, Some(true)), "{v}");
    let (_, subject) = call(&app, "GET", &privacy, &path, None).await;
    assert!(subject["blocked"]["since"].is_string(), "{subject}");
    assert!(
        subject["messages"]
            .as_array()
            .expect("m")
            .iter()
            .all(|m| m["status"] != "pending"),
        "{subject}"
    );
    let queued = outbox_payloads(&app).await.len();
    event(
        &app,
        &admin,
        fa2,
        json!({"kind": "pedir_informacion", "text": "Su cédula por ambos lados"}),
    )
    .await;
    let after: Vec<String> = outbox_payloads(&app).await;
    assert!(
        after[queued..].iter().all(|p| !p.contains("juana")),
        "{after:?}"
    );
    let (s, v) = call(&app, "DELETE", &privacy, &format!("{path}/block"), None).await;
    assert_eq!((s, v["blocked"].as_bool()), (200, Some(false)));
    assert!(audit_details(&app)
        .await
        .iter()
        .any(|(a, _, _)| a == "bloquear_titular"));
}
on_both_backends!(data_subjects);

/// The daily retention job anonymises closed cases older than the setting, at start and then
/// every day; recent ones keep their data.
async fn retention_job(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;
    let (_, old) = file(
        &app,
        body("reclamo", RUT_A, "Juana Pérez", "juana@example.cl", None),
    )
    .await;
    let (_, recent) = file(
        &app,
        body("reclamo", RUT_B, "Pedro Soto", "pedro@example.cl", None),
    )
    .await;
    let (old, recent) = (
        old["folio"].as_str().expect("f").to_string(),
        recent["folio"].as_str().expect("f").to_string(),
    );
    close(&app, &admin, &old).await;
    close(&app, &admin, &recent).await;
    let long_ago = ventanilla::store::now_millis() - 40 * 86_400_000;
    ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query("UPDATE cases SET closed_at = $1 WHERE folio = $2").bind(long_ago).bind(&old).execute(pool).await.expect("age");
    });
    let db = app.stop();
    let app = spawn_on(db, |c| c.retention.case_personal_data_days = 30).await;
    let anonymized = common::wait_for(Duration::from_secs(20), || async {
        let r: (Option<i64>,) = ventanilla::with_pool!(&app.state.store, pool => {
            sqlx::query_as("SELECT anonymized_at FROM cases WHERE folio = $1").bind(&old).fetch_one(pool).await.expect("row")
        });
        r.0
    })
    .await;
    assert!(anonymized.is_some(), "the job anonymised the old case");
    let row: (String, Option<String>, Option<i64>) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT name, rut, anonymized_at FROM cases WHERE folio = $1").bind(&recent).fetch_one(pool).await.expect("row")
    });
    assert_eq!(
        (row.0.as_str(), row.1.as_deref(), row.2),
        ("Pedro Soto", Some("11111111-1"), None)
    );
    let row: (String, Option<String>, String) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT name, rut, status FROM cases WHERE folio = $1").bind(&old).fetch_one(pool).await.expect("row")
    });
    assert_eq!(
        (row.0.as_str(), row.1, row.2.as_str()),
        ("", None, "cerrado")
    );
}
on_both_backends!(retention_job);
