//! Catalog review (issue #16): the worklist groups what residents asked and the assistant did
//! not answer; teaching a text takes effect at once (an intent, out of scope, a new intent),
//! undo restores, a change that lowers a gated figure is refused unless an administrator
//! confirms, department users get 403, every change is audited, and other instances follow.

mod common;

use std::time::Duration;

use common::{spawn_on, Backend, TestApp, TestDb};
use serde_json::{json, Value};

/// Clarified today ("¿dirección o contactos?"), and nobody taught it yet.
const PISCINA: &str = "donde queda la piscina temperada";
/// Clarified today (turismo?).
const FERIA: &str = "cuando es la feria costumbrista";

/// Sends `text` in a new conversation; returns the reply's match.
async fn ask(app: &TestApp, text: &str) -> Value {
    let r = app.post_json("/api/v1/chat/sessions", json!({})).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("json");
    let id = s["session_id"].as_str().expect("id");
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{id}/messages"),
            json!({ "text": text }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn teach(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(
        app,
        token,
        reqwest::Method::POST,
        "/api/v1/admin/catalog/examples",
        Some(body),
    )
    .await
}

/// The whole review answer (worklist groups and unhelpful answers).
async fn review_out(app: &TestApp, token: &str) -> Value {
    let (status, v) = call(
        app,
        token,
        reqwest::Method::GET,
        "/api/v1/admin/catalog/review",
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn review(app: &TestApp, token: &str) -> Vec<Value> {
    review_out(app, token).await["groups"]
        .as_array()
        .expect("groups")
        .clone()
}

async fn grouping_counts_conversations_and_taught_texts_leave(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    for text in [
        "¿Dónde queda la piscina temperada?",
        "donde queda la piscina temperadaa",
        "donde queda la piscina temperada municipal",
    ] {
        assert_ne!(
            ask(&app, text).await["match"]["decision"],
            "answer",
            "{text}"
        );
    }
    let group = common::wait_for(Duration::from_secs(10), || async {
        review(&app, &analyst)
            .await
            .into_iter()
            .find(|g| g["count"] == 3)
    })
    .await
    .expect("one group of three conversations");
    assert!(group["text"].as_str().expect("text").contains("piscina"));
    assert_eq!(group["decision"], "clarify");
    assert!(
        group["best_title"].is_string(),
        "the guess by its title: {group}"
    );
    assert!(group["confidence"].as_f64().is_some());

    // Taught, the wording leaves the worklist (the group's other wordings stay until taught).
    let text = group["text"].as_str().expect("text").to_string();
    let (status, v) = teach(
        &app,
        &analyst,
        json!({"intent": "cultura_deportes", "text": text}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let left = review(&app, &analyst).await;
    assert!(
        left.iter().all(|g| g["text"] != text.as_str()
            && g["variants"]
                .as_array()
                .is_some_and(|v| !v.contains(&json!(text)))),
        "{left:?}"
    );
    assert_eq!(
        left.iter()
            .find(|g| g["text"].as_str().unwrap_or("").contains("piscina"))
            .map(|g| g["count"].clone()),
        Some(json!(2))
    );
}
on_both_backends!(grouping_counts_conversations_and_taught_texts_leave);

async fn teaching_takes_effect_at_once_and_undo_restores(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    let before = ask(&app, PISCINA).await;
    assert_eq!(before["match"]["decision"], "clarify");

    let (status, ex) = teach(
        &app,
        &analyst,
        json!({"intent": "cultura_deportes", "text": PISCINA}),
    )
    .await;
    assert_eq!(status, 201, "{ex}");
    assert_eq!(ex["intent"], "cultura_deportes");
    // The next message is answered with it; accents and capitals do not matter.
    let after = ask(&app, "¿Dónde queda la PISCINA temperada?").await;
    assert_eq!(after["match"]["decision"], "answer", "{after}");
    assert_eq!(after["match"]["intent"], "cultura_deportes");

    // The same text cannot be taught twice.
    let (status, v) = teach(&app, &analyst, json!({"intent": null, "text": PISCINA})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "already_taught");

    // Out of scope: the text falls back.
    assert_eq!(ask(&app, FERIA).await["match"]["decision"], "clarify");
    let (status, oos) = teach(&app, &analyst, json!({"intent": null, "text": FERIA})).await;
    assert_eq!(status, 201, "{oos}");
    assert_eq!(ask(&app, FERIA).await["match"]["decision"], "fallback");

    let (status, list) = call(
        &app,
        &analyst,
        reqwest::Method::GET,
        "/api/v1/admin/catalog/examples",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().expect("list").len(), 2);
    assert_eq!(list[0]["text"], FERIA, "newest first");

    // Undo restores what the assistant did before.
    for id in [&ex["id"], &oos["id"]] {
        let (status, _) = call(
            &app,
            &analyst,
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/catalog/examples/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 204);
    }
    assert_eq!(ask(&app, PISCINA).await["match"], before["match"]);
    assert_eq!(ask(&app, FERIA).await["match"]["decision"], "clarify");
    let (status, _) = call(
        &app,
        &analyst,
        reqwest::Method::DELETE,
        &format!("/api/v1/admin/catalog/examples/{}", ex["id"]),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Unknown intents and empty texts are refused, naming the field.
    let (status, v) = teach(
        &app,
        &analyst,
        json!({"intent": "no_existe", "text": PISCINA}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["field"].clone()),
        (422, json!("intent"))
    );
    let (status, v) = teach(&app, &analyst, json!({"intent": null, "text": " ¿? "})).await;
    assert_eq!((status, v["error"]["field"].clone()), (422, json!("text")));
}
on_both_backends!(teaching_takes_effect_at_once_and_undo_restores);

async fn a_change_that_lowers_a_figure_needs_an_administrator(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    let admin = app.login_as("admin", "admin", None).await;
    // A line of the regression set, taught to the wrong intent.
    let wrong = json!({"intent": "cementerio", "text": "cual es el whatsapp de la muni"});
    let (status, v) = teach(&app, &analyst, wrong.clone()).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "figures_lowered");
    let lowered = v["figures"]["lowered"].as_array().expect("lowered");
    assert!(
        lowered
            .iter()
            .any(|l| l == "regression.tsv: answer_precision"),
        "{v}"
    );
    let before = &v["figures"]["before"];
    let after = &v["figures"]["after"];
    let set = |f: &Value| {
        f.as_array()
            .expect("sets")
            .iter()
            .find(|s| s["set"] == "regression.tsv")
            .expect("regression set")["answer_precision"]
            .as_f64()
            .expect("figure")
    };
    assert!(set(after) < set(before));
    // Nothing changed.
    assert_ne!(
        ask(&app, "cual es el whatsapp de la muni").await["match"]["intent"],
        "cementerio"
    );

    let mut confirmed = wrong.clone();
    confirmed["confirm"] = json!(true);
    let (status, v) = teach(&app, &analyst, confirmed.clone()).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "confirmation_requires_admin");
    let (status, v) = teach(&app, &admin, confirmed).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        ask(&app, "cual es el whatsapp de la muni").await["match"]["intent"],
        "cementerio"
    );
}
on_both_backends!(a_change_that_lowers_a_figure_needs_an_administrator);

async fn new_intents_answer_what_is_taught_to_them(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    let body = json!({
        "topic": "cultura_deportes",
        "title": "Piscina municipal",
        "answer": "La piscina temperada está en el polideportivo. Consultas al {{telefono_central}}.",
        "buttons": []
    });
    let (status, v) = call(
        &app,
        &analyst,
        reqwest::Method::POST,
        "/api/v1/admin/catalog/intents",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["id"], "piscina_municipal");
    let (status, v) = teach(
        &app,
        &analyst,
        json!({"intent": "piscina_municipal", "text": PISCINA}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let got = ask(&app, PISCINA).await;
    assert_eq!(got["match"]["intent"], "piscina_municipal", "{got}");
    let answer = got["reply"]["text"].as_str().expect("text");
    assert!(
        answer.contains("polideportivo") && !answer.contains("{{"),
        "{answer}"
    );

    // Unknown placeholders, topics and buttons are refused as `intents check` would.
    let mut bad = body.clone();
    bad["title"] = json!("Otra piscina");
    bad["answer"] = json!("Llame al {{no_existe}}");
    let (status, v) = call(
        &app,
        &analyst,
        reqwest::Method::POST,
        "/api/v1/admin/catalog/intents",
        Some(bad),
    )
    .await;
    assert_eq!(
        (status, v["error"]["field"].clone()),
        (422, json!("answer")),
        "{v}"
    );
    let (status, _) = call(
        &app,
        &analyst,
        reqwest::Method::POST,
        "/api/v1/admin/catalog/intents",
        Some(body),
    )
    .await;
    assert_eq!(status, 409, "the same title twice");

    // Removing the intent removes what was taught to it.
    let (status, _) = call(
        &app,
        &analyst,
        reqwest::Method::DELETE,
        "/api/v1/admin/catalog/intents/piscina_municipal",
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(ask(&app, PISCINA).await["match"]["decision"], "clarify");
}
on_both_backends!(new_intents_answer_what_is_taught_to_them);

async fn only_analysts_and_admins_review_and_every_change_is_audited(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let dept = app.login_as("dom1", "department", Some("dom")).await;
    let coord = app.login_as("coord", "coordinator", None).await;
    for token in [&dept, &coord] {
        for (method, path) in [
            (reqwest::Method::GET, "/api/v1/admin/catalog/review"),
            (reqwest::Method::GET, "/api/v1/admin/catalog/examples"),
            (reqwest::Method::GET, "/api/v1/admin/catalog/intents"),
        ] {
            assert_eq!(call(&app, token, method, path, None).await.0, 403, "{path}");
        }
        let (status, _) = teach(&app, token, json!({"intent": null, "text": FERIA})).await;
        assert_eq!(status, 403);
    }
    assert_eq!(
        ask(&app, FERIA).await["match"]["decision"],
        "clarify",
        "nothing was taught"
    );

    let analyst = app.login_as("analista", "analyst", None).await;
    let (_, ex) = teach(&app, &analyst, json!({"intent": null, "text": FERIA})).await;
    call(
        &app,
        &analyst,
        reqwest::Method::DELETE,
        &format!("/api/v1/admin/catalog/examples/{}", ex["id"]),
        None,
    )
    .await;
    let admin = app.login_as("admin", "admin", None).await;
    let (status, audit) = call(
        &app,
        &admin,
        reqwest::Method::GET,
        "/api/v1/admin/audit?username=analista",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"ensenar_ejemplo"), "{audit}");
    assert!(actions.contains(&"deshacer_ejemplo"), "{audit}");
}
on_both_backends!(only_analysts_and_admins_review_and_every_change_is_audited);

/// Taught on one instance, answered on the other (PostgreSQL: several instances share it).
async fn every_instance_follows_a_change(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let a = spawn_on(db, |c| c.signal_poll_ms = 100).await;
    let b = spawn_on(TestDb::at(url), |c| c.signal_poll_ms = 100).await;
    let analyst = a.login_as("analista", "analyst", None).await;
    let (status, v) = teach(
        &a,
        &analyst,
        json!({"intent": "cultura_deportes", "text": PISCINA}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let reached = common::wait_for(Duration::from_secs(20), || async {
        (ask(&b, PISCINA).await["match"]["intent"] == "cultura_deportes").then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "the other instance answers the taught text"
    );
    // A restarted instance loads the overlay from the database.
    let db = b.stop();
    let c = spawn_on(db, |_| {}).await;
    assert_eq!(
        ask(&c, PISCINA).await["match"]["intent"],
        "cultura_deportes"
    );
}
on_both_backends!(every_instance_follows_a_change);

/// `ventanilla intents export` writes the overlay in the catalog's format (the files parse as
/// TOML and hold what was taught); `intents check` checks files and overlay together.
async fn export_writes_the_overlay_as_catalog_files(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    let (status, _) = call(
        &app,
        &analyst,
        reqwest::Method::POST,
        "/api/v1/admin/catalog/intents",
        Some(
            json!({"topic": "cultura_deportes", "title": "Piscina municipal",
                    "answer": "Llame al {{telefono_central}}.", "buttons": []}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    for body in [
        json!({"intent": "piscina_municipal", "text": PISCINA}),
        json!({"intent": "cementerio", "text": "a que hora cierra el camposanto"}),
        json!({"intent": null, "text": FERIA}),
    ] {
        assert_eq!(teach(&app, &analyst, body).await.0, 201);
    }
    let out = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ventanilla"))
            .args(args)
            .env("DATABASE_URL", &app.db.url)
            .env("VENTANILLA_INTENTS_DIR", common::intents_dir())
            .env_remove("VENTANILLA_CONFIG")
            .output()
            .expect("run ventanilla")
    };
    let export = run(&[
        "intents",
        "export",
        "--out",
        &out.path().display().to_string(),
    ]);
    assert!(export.status.success(), "{export:?}");
    let read = |name: &str| -> toml::Value {
        let text = std::fs::read_to_string(out.path().join(name)).expect(name);
        toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
    };
    let new = read("95-revision.toml");
    let intent = &new["intent"][0];
    assert_eq!(intent["id"].as_str(), Some("piscina_municipal"));
    assert_eq!(
        intent["answer"].as_str(),
        Some("Llame al {{telefono_central}}.")
    );
    assert_eq!(intent["examples"][0].as_str(), Some(PISCINA));
    let examples = read("revision-ejemplos.toml");
    assert_eq!(
        examples["examples"]["cementerio"][0].as_str(),
        Some("a que hora cierra el camposanto")
    );
    assert_eq!(
        read("revision-fuera-de-ambito.toml")["examples"][0].as_str(),
        Some(FERIA)
    );
    let check = run(&["intents", "check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}");
    assert!(
        said.contains("overlay: 3 taught example(s), 1 new intent(s)"),
        "{said}"
    );
}
on_both_backends!(export_writes_the_overlay_as_catalog_files);

/// An answer a resident marked as not useful shows in the review with its question, by the
/// intent's title (the console offers to teach the question elsewhere from there).
async fn answers_marked_unhelpful_are_reviewed(backend: Backend) {
    let Some(app) = common::spawn_app(backend).await else {
        return;
    };
    let analyst = app.login_as("analista", "analyst", None).await;
    const ASKED: &str = "cuanto cuesta el permiso de circulacion";
    let r = app.post_json("/api/v1/chat/sessions", json!({})).await;
    let s: Value = r.json().await.expect("json");
    let id = s["session_id"].as_str().expect("id").to_string();
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{id}/messages"),
            json!({ "text": ASKED }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    let answered = v["match"]["intent"].as_str().expect("intent").to_string();
    let r = app
        .post_json(
            &format!("/api/v1/chat/sessions/{id}/feedback"),
            json!({"turn_id": v["turn_id"], "useful": false}),
        )
        .await;
    assert_eq!(r.status(), 204);

    let entry = common::wait_for(Duration::from_secs(10), || async {
        review_out(&app, &analyst).await["unhelpful"]
            .as_array()
            .and_then(|u| u.iter().find(|e| e["intent"] == answered.as_str()).cloned())
            .filter(|e| e["texts"].as_array().is_some_and(|t| !t.is_empty()))
    })
    .await
    .expect("the unhelpful answer in the review");
    assert_eq!(entry["unhelpful"], 1);
    assert!(
        entry["title"].as_str().is_some_and(|t| !t.contains('_')),
        "by its title: {entry}"
    );
    assert_eq!(entry["texts"][0]["text"], ASKED);
    // Not used in the review's own worklist: an answered message is not "unanswered".
    assert!(review(&app, &analyst)
        .await
        .iter()
        .all(|g| g["text"] != ASKED));
}
on_both_backends!(answers_marked_unhelpful_are_reviewed);
