//! Satisfaction surveys on closed cases and "¿Te sirvió?" under the chat's answers, on both
//! stores: the survey's rules (closed only, once, the secret, the score), the invitation and
//! the low-score alert through the outbox, the figures in analytics and the monthly report,
//! the feedback's turns (own session only), and that no comment, text or session id reaches
//! an export.

mod common;

use std::time::Duration;

use common::{spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use ventanilla::config::Config;

/// E-mails queue for a relay that never answers: they stay in the outbox to be looked at.
fn with_mail(c: &mut Config) {
    c.smtp.host = Some("127.0.0.1".into());
    c.smtp.port = 9;
    c.outbox.base_backoff_ms = 3_600_000;
    c.outbox.max_backoff_ms = 3_600_000;
    c.public_base_url = "https://oirs.example.cl".into();
}

const COMMENT: &str = "Nadie vino a revisar la luminaria de Juana Pérez";

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let req = match method {
        "POST" => app.client.post(app.url(path)),
        _ => app.client.get(app.url(path)),
    };
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let r = req.bearer_auth(token).send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Files a case on `topic` with an e-mail and the given RUT; returns (folio, code).
async fn file(app: &TestApp, topic: &str, rut: &str) -> (String, String) {
    let v = app
        .file_case(json!({
            "type": "reclamo", "topic": topic,
            "description": "La luminaria del pasaje Los Aromos lleva dos semanas apagada.",
            "name": "Juana Pérez", "rut": rut, "email": "juana@example.cl", "consent": true
        }))
        .await;
    (
        v["folio"].as_str().expect("folio").into(),
        v["tracking_code"].as_str().expect("code").into(),
    )
}

async fn answer_and_close(app: &TestApp, token: &str, folio: &str) {
    let path = format!("/api/v1/staff/cases/{folio}/events");
    for ev in [
        json!({"kind": "responder", "text": "Repusimos la luminaria el martes."}),
        json!({"kind": "cerrar"}),
    ] {
        let (s, b) = call(app, token, "POST", &path, Some(ev)).await;
        assert_eq!(s, 200, "{b}");
    }
}

async fn rate(app: &TestApp, folio: &str, body: Value) -> (u16, Value) {
    let r = app
        .post_json(&format!("/api/v1/oirs/cases/{folio}/satisfaction"), body)
        .await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn emails(app: &TestApp, folio: &str) -> Vec<Value> {
    let rows: Vec<(String,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT payload FROM outbox WHERE kind = 'email' AND folio = $1 ORDER BY id")
            .bind(folio)
            .fetch_all(pool)
            .await
            .expect("outbox")
    });
    rows.into_iter()
        .map(|r| serde_json::from_str(&r.0).expect("payload"))
        .collect()
}

async fn survey_state(app: &TestApp, folio: &str, code: &str) -> String {
    let r = app
        .post_json(
            &format!("/api/v1/oirs/cases/{folio}/tracking"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["survey"].as_str().expect("survey").to_string()
}

async fn satisfaction_survey(backend: Backend) {
    let Some(app) = spawn_app_with(backend, with_mail).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;
    let analyst = app.login_as("ana", "analyst", None).await;
    // Alumbrado público goes to the Dirección de Aseo y Ornato; calles y veredas to SECPLA.
    let (folio, code) = file(&app, "alumbrado_publico", "12.345.678-5").await;

    // Before closing: 409, and the tracking says the survey is not available.
    let (s, v) = rate(&app, &folio, json!({"code": code, "score": 4})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "case_not_closed");
    assert_eq!(survey_state(&app, &folio, &code).await, "not_available");

    answer_and_close(&app, &admin, &folio).await;
    assert_eq!(survey_state(&app, &folio, &code).await, "open");
    // The closing e-mail invites the resident, with an absolute link and no tracking code.
    let mails = emails(&app, &folio).await;
    let invite = mails
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("¿Cómo evalúa"))
        })
        .expect("an invitation");
    assert_eq!(invite["to"], "juana@example.cl");
    let body = invite["body"].as_str().expect("body");
    assert!(body.contains(&format!(
        "https://oirs.example.cl/seguimiento?folio={folio}"
    )));
    assert!(!body.contains(&code), "no tracking code in e-mails");

    // A wrong code is the same 404 as an unknown folio; bad scores and comments are 422.
    let (s, v) = rate(&app, &folio, json!({"code": "ZZZZZZZZZZZZ", "score": 4})).await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = rate(&app, "OIRS-2020-999999", json!({"code": code, "score": 4})).await;
    assert_eq!(s, 404);
    for score in [json!(0), json!(6), json!(-3)] {
        let (s, v) = rate(&app, &folio, json!({"code": code, "score": score})).await;
        assert_eq!(s, 422, "{score}: {v}");
        assert_eq!(v["error"]["field"], "score");
    }
    let (s, v) = rate(&app, &folio, json!({"code": code, "score": "cinco"})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("score")),
        "{v}"
    );
    let (s, v) = rate(
        &app,
        &folio,
        json!({"code": code, "score": 3, "comment": "x".repeat(1001)}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("comment")),
        "{v}"
    );
    let (s, v) = rate(&app, &folio, json!({"score": 3})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("code")),
        "{v}"
    );

    // A low score: 201, once; the department head is alerted without the comment.
    let (s, v) = rate(
        &app,
        &folio,
        json!({"code": code, "score": 1, "comment": COMMENT}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["score"], 1);
    assert_eq!(v["folio"], folio.as_str());
    let (s, v) = rate(&app, &folio, json!({"code": code, "score": 5})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "already_rated");
    assert_eq!(survey_state(&app, &folio, &code).await, "answered");
    let mails = emails(&app, &folio).await;
    let alert = mails
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Evaluación baja"))
        })
        .expect("an alert to the department");
    assert_eq!(alert["to"], "aseo@example.cl");
    assert!(alert["body"]
        .as_str()
        .expect("body")
        .contains(&format!("https://oirs.example.cl/staff/casos/{folio}")));
    assert!(
        !alert.to_string().contains("Nadie vino"),
        "the comment stays on the case"
    );

    // A good score in the same unit (rated with the RUT) alerts nobody; another unit's.
    let (folio2, _) = file(&app, "alumbrado_publico", "11.111.111-1").await;
    answer_and_close(&app, &admin, &folio2).await;
    let (s, v) = rate(&app, &folio2, json!({"rut": "11111111-1", "score": 4})).await;
    assert_eq!(s, 201, "{v}");
    assert!(emails(&app, &folio2).await.iter().all(|m| !m["subject"]
        .as_str()
        .unwrap_or("")
        .starts_with("Evaluación baja")));
    let (folio3, code3) = file(&app, "calles_veredas", "11.111.111-1").await;
    answer_and_close(&app, &admin, &folio3).await;
    let (s, _) = rate(&app, &folio3, json!({"code": code3, "score": 5})).await;
    assert_eq!(s, 201);

    // Staff read the comment on the case; analysts only see scores by department.
    let (s, b) = call(
        &app,
        &admin,
        "GET",
        &format!("/api/v1/staff/cases/{folio}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let detail: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(detail["satisfaction"]["score"], 1);
    assert_eq!(detail["satisfaction"]["comment"], COMMENT);

    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Santiago)
        .date_naive();
    let (s, _) = call(&app, &admin, "GET", "/api/v1/analytics/satisfaction", None).await;
    assert_eq!(s, 200, "admins too");
    let (s, _) = call(
        &app,
        &app.login_as("dom1", "department", Some("dom")).await,
        "GET",
        "/api/v1/analytics/satisfaction",
        None,
    )
    .await;
    assert_eq!(s, 403, "department staff get no figures");
    let (s, _) = call(
        &app,
        &analyst,
        "GET",
        "/api/v1/analytics/satisfaction?from=2026-13-01",
        None,
    )
    .await;
    assert_eq!(s, 422);
    let (s, b) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/analytics/satisfaction?from={today}&to={today}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["count"], 3);
    assert_eq!(v["average"], 3.33);
    let aseo = &v["groups"][0];
    assert_eq!(aseo["department"], "aseo_ornato");
    assert_eq!(aseo["department_name"], "Dirección de Aseo y Ornato");
    assert_eq!(
        (
            aseo["count"].as_i64(),
            aseo["average"].as_f64(),
            aseo["low"].as_i64()
        ),
        (Some(2), Some(2.5), Some(1))
    );
    assert_eq!(v["groups"][1]["department"], "secpla");
    assert_eq!(v["groups"][1]["average"], 5.0);
    assert_eq!(v["months"][0]["count"], 3);
    assert!(!b.contains("Nadie vino"));

    // The monthly report has the table, by name, in every format; never the comment.
    let month = today.format("%Y-%m").to_string();
    let (s, json_report) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}?format=json"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let r: Value = serde_json::from_str(&json_report).expect("json");
    assert_eq!(
        r["satisfaction"][0]["department_name"],
        "Dirección de Aseo y Ornato"
    );
    assert_eq!(r["satisfaction"][0]["average"], 2.5);
    let (_, html) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}"),
        None,
    )
    .await;
    assert!(html.contains("Satisfacción con las respuestas"));
    assert!(
        html.contains(
            "<td>Dirección de Aseo y Ornato</td><td class=\"n\">2</td><td class=\"n\">2,50</td>"
        ),
        "{html}"
    );
    let (_, csv) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}?format=csv"),
        None,
    )
    .await;
    assert!(
        csv.contains("satisfaccion,aseo_ornato,Dirección de Aseo y Ornato,2,2.50"),
        "{csv}"
    );
    let (_, export) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/analytics/export?format=json&from={today}&to={today}"),
        None,
    )
    .await;
    for out in [&json_report, &html, &csv, &export] {
        assert!(!out.contains("Nadie vino"), "a comment in an export");
    }
}
on_both_backends!(satisfaction_survey);

async fn new_session(app: &TestApp) -> String {
    let r = app.post_json("/api/v1/chat/sessions", json!({})).await;
    let v: Value = r.json().await.expect("json");
    v["session_id"].as_str().expect("sid").to_string()
}

async fn say(app: &TestApp, sid: &str, text: &str) -> Value {
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{sid}/messages"),
            json!({ "text": text }),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn feedback(app: &TestApp, sid: &str, turn: &Value, useful: bool) -> (u16, Value) {
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{sid}/feedback"),
            json!({"turn_id": turn, "useful": useful}),
        )
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const QUESTION: &str = "kiero sacar el permiso de sirculasion del auto";

async fn answer_feedback(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let analyst = app.login_as("ana", "analyst", None).await;
    let sid = new_session(&app).await;
    let v = say(&app, &sid, QUESTION).await;
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    let intent = v["match"]["intent"].as_str().expect("intent").to_string();
    let turn = v["turn_id"].clone();
    assert!(turn.is_string());

    // 204; a second verdict on the same turn replaces the first (the latest wins).
    assert_eq!(feedback(&app, &sid, &turn, true).await.0, 204);
    assert_eq!(feedback(&app, &sid, &turn, false).await.0, 204);
    let rows: Vec<(bool,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT useful FROM answer_feedback").fetch_all(pool).await.expect("rows")
    });
    assert_eq!(rows, vec![(false,)], "one row per turn, the latest verdict");

    // Another session's turn, a made-up turn, an unknown session: 404.
    let other = new_session(&app).await;
    let (s, v) = feedback(&app, &other, &turn, false).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(
        feedback(&app, &sid, &json!("1a2b.a.horario.0011223344556677"), false)
            .await
            .0,
        404
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_eq!(feedback(&app, &ghost, &turn, false).await.0, 404);
    // Only answers can be rated (409); a missing verdict is a 422.
    let v = say(&app, &sid, "receta de calzones rotos").await;
    assert_eq!(v["match"]["decision"], "fallback", "{v}");
    let (s, v) = feedback(&app, &sid, &v["turn_id"], false).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("not_an_answer")),
        "{v}"
    );
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{sid}/feedback"),
            json!({"turn_id": turn}),
        )
        .await;
    assert_eq!(r.status(), 422);

    // Two more residents find the same answer unhelpful, one finds it useful.
    for useful in [false, false, true] {
        let s = new_session(&app).await;
        let v = say(&app, &s, QUESTION).await;
        assert_eq!(feedback(&app, &s, &v["turn_id"], useful).await.0, 204);
    }

    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Santiago)
        .date_naive();
    let (s, b) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/analytics/feedback?from={today}&to={today}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).expect("json");
    let g = &v["groups"][0];
    assert_eq!(g["intent"], intent.as_str());
    assert_eq!(
        (
            g["unhelpful"].as_i64(),
            g["useful"].as_i64(),
            g["share_unhelpful"].as_f64()
        ),
        (Some(3), Some(1), Some(0.75))
    );
    assert!(
        !g["title"].as_str().expect("title").contains('_'),
        "a title, not an id: {g}"
    );

    // For the catalog review: the questions answered unhelpfully, masked, once the
    // interactions are written (the recorder batches them).
    let store = app.state.store.clone();
    let found = common::wait_for(Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let rows = ventanilla::chat::feedback::unhelpful_answers(&store, today, today)
                .await
                .ok()?;
            rows.first()
                .filter(|r| r.texts.first().is_some_and(|t| t.count == 3))
                .cloned()
        }
    })
    .await
    .expect("the unhelpful answers with their questions");
    assert_eq!(found.intent, intent);
    assert_eq!((found.unhelpful, found.rated), (3, 4));
    assert_eq!(found.texts[0].text, QUESTION);

    // The monthly report lists the answer by its title; no text, no session id anywhere.
    let month = today.format("%Y-%m").to_string();
    let (_, json_report) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}?format=json"),
        None,
    )
    .await;
    let r: Value = serde_json::from_str(&json_report).expect("json");
    assert_eq!(r["unhelpful_answers"][0]["intent"], intent.as_str());
    assert_eq!(r["unhelpful_answers"][0]["unhelpful"], 3);
    let (_, html) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}"),
        None,
    )
    .await;
    assert!(html.contains("marcadas como no útiles"));
    assert!(
        html.contains(&format!(
            "<td>{}</td><td class=\"n\">3</td><td class=\"n\">4</td><td class=\"n\">75,0%</td>",
            g["title"].as_str().expect("title")
        )),
        "{html}"
    );
    let (_, csv) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/reports/monthly/{month}?format=csv"),
        None,
    )
    .await;
    assert!(
        csv.contains(&format!("respuestas_no_utiles,{intent},")),
        "{csv}"
    );
    let (_, export) = call(
        &app,
        &analyst,
        "GET",
        &format!("/api/v1/analytics/export?format=json&from={today}&to={today}"),
        None,
    )
    .await;
    for out in [&b, &json_report, &html, &csv, &export] {
        assert!(!out.contains(&sid), "a session id in an export");
        assert!(
            !out.contains(turn.as_str().expect("turn")),
            "a turn id in an export"
        );
    }
    for out in [&b, &csv, &export] {
        assert!(
            !out.contains("sirculasion"),
            "a resident's text in an export"
        );
    }
}
on_both_backends!(answer_feedback);
