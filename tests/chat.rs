//! The chat API: sessions, the botonera, free text, fallback, validation, recording, reload.

mod common;

use std::time::Duration;

use common::{spawn_app, Backend, TestApp};
use serde_json::{json, Value};

async fn new_session(app: &TestApp) -> (String, Value) {
    let r = app.post_json("/api/v1/chat/sessions", json!({})).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    (v["session_id"].as_str().expect("sid").to_string(), v)
}

async fn say(app: &TestApp, sid: &str, body: Value) -> (u16, Value) {
    let r = app
        .post_json(&format!("/api/v1/chat/sessions/{sid}/messages"), body)
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

fn button_ids(reply: &Value) -> Vec<String> {
    reply["buttons"]
        .as_array()
        .expect("buttons")
        .iter()
        .map(|b| b["id"].as_str().expect("id").to_string())
        .collect()
}

fn link_urls(reply: &Value) -> Vec<String> {
    reply["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["url"].as_str().expect("url").to_string())
        .collect()
}

async fn count_interactions(app: &TestApp, kind: &str, button: Option<&str>) -> i64 {
    let sql =
        "SELECT COUNT(*) FROM interactions WHERE kind = $1 AND ($2 IS NULL OR button_id = $2)";
    let n: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as(sql).bind(kind).bind(button).fetch_one(pool).await.expect("count")
    });
    n.0
}

async fn greeting_carries_the_botonera_and_clicks_are_recorded(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (sid, created) = new_session(&app).await;
    let roots = button_ids(&created["reply"]);
    for id in [
        "direcciones_telefonos_correos",
        "oficina_de_partes",
        "pagos_servicios_online",
        "concejo_municipal",
        "oirs",
    ] {
        assert!(
            roots.contains(&id.to_string()),
            "greeting lacks {id}: {roots:?}"
        );
    }

    // A top-level button opens its sub-options.
    let (status, v) = say(
        &app,
        &sid,
        json!({"button": "direcciones_telefonos_correos"}),
    )
    .await;
    assert_eq!(status, 200);
    let subs = button_ids(&v["reply"]);
    assert!(
        subs.contains(&"contactos_telefonicos".to_string()),
        "{subs:?}"
    );
    assert!(v["match"]["intent"].is_null());

    // A sub-option answers deterministically with its intent.
    let (status, v) = say(&app, &sid, json!({"button": "contactos_telefonicos"})).await;
    assert_eq!(status, 200);
    assert_eq!(v["match"]["intent"], "contacto_telefonos");
    assert_eq!(v["match"]["confidence"], 1.0);
    assert_eq!(v["match"]["fallback"], false);
    assert!(v["reply"]["text"].as_str().expect("text").contains("+56"));

    // Both clicks reach the interactions table with the button and its parent.
    common::wait_for(Duration::from_secs(10), || async {
        (count_interactions(&app, "button", None).await == 2).then_some(())
    })
    .await
    .expect("button events recorded");
    let parent: (Option<String>,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT parent_id FROM interactions WHERE button_id = $1")
            .bind("contactos_telefonicos")
            .fetch_one(pool)
            .await
            .expect("row")
    });
    assert_eq!(parent.0.as_deref(), Some("direcciones_telefonos_correos"));
    assert_eq!(count_interactions(&app, "session_started", None).await, 1);
}
on_both_backends!(greeting_carries_the_botonera_and_clicks_are_recorded);

async fn free_text_with_typos_and_honest_fallback(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    let (status, v) = say(
        &app,
        &sid,
        json!({"text": "kiero sacar el permiso de sirculasion del auto"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["match"]["topic"], "permiso_circulacion", "{v}");
    assert_eq!(v["match"]["fallback"], false);
    assert_eq!(v["match"]["decision"], "answer");

    let (_, v) = say(&app, &sid, json!({"text": "receta de calzones rotos"})).await;
    assert_eq!(v["match"]["fallback"], true, "{v}");
    assert_eq!(v["match"]["decision"], "fallback");
    assert!(v["match"]["intent"].is_null());
    let ways_out = button_ids(&v["reply"]);
    for id in ["menu", "quiero_que_me_contacten", "hacer_solicitud"] {
        assert!(ways_out.contains(&id.to_string()), "{ways_out:?}");
    }

    // A second miss in a row insists on a person.
    let (_, v) = say(&app, &sid, json!({"text": "zxcvbn qwerty"})).await;
    assert_eq!(v["match"]["fallback"], true);
    assert!(v["reply"]["text"]
        .as_str()
        .expect("t")
        .contains("Quiero que me contacten"));

    // A folio goes straight to tracking.
    let (_, v) = say(&app, &sid, json!({"text": "mi folio es OIRS-2026-000012"})).await;
    assert_eq!(v["match"]["topic"], "seguimiento");
    assert!(v["reply"]["links"][0]["url"]
        .as_str()
        .expect("url")
        .contains("OIRS-2026-000012"));

    // Chat text is stored masked.
    let (_, _) = say(
        &app,
        &sid,
        json!({"text": "llamenme al +56 9 8765 4321, rut 12.345.678-5"}),
    )
    .await;
    let masked: (String,) = common::wait_for(Duration::from_secs(10), || async {
        ventanilla::with_pool!(&app.state.store, pool => {
            sqlx::query_as("SELECT text_masked FROM interactions WHERE text_masked LIKE '%llamenme%'")
                .fetch_optional(pool)
                .await
                .expect("query")
        })
    })
    .await
    .expect("message recorded");
    assert_eq!(masked.0, "llamenme al [teléfono], rut [rut]");
}
on_both_backends!(free_text_with_typos_and_honest_fallback);

#[tokio::test]
async fn bad_messages_are_rejected_with_the_field_named() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    for (body, field) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "   \n\t "}), "text"),
        (json!({"text": "a".repeat(1001)}), "text"),
        (json!({}), "text"),
        (json!({"button": "no_existe"}), "button"),
        (json!({"button": "intent:no_existe"}), "button"),
    ] {
        let (status, v) = say(&app, &sid, body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(v["error"]["field"], field, "{body}");
    }
    let (status, _) = say(&app, &sid, json!({"text": "a".repeat(1000)})).await;
    assert_eq!(status, 200, "1,000 characters is allowed");
    let (status, v) = say(
        &app,
        "00000000-0000-0000-0000-000000000000",
        json!({"text": "hola"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn menu_endpoint_returns_the_tree() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let menu: Value = app
        .get("/api/v1/chat/menu")
        .await
        .json()
        .await
        .expect("json");
    let pagos = menu
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["id"] == "pagos_servicios_online")
        .expect("pagos button");
    assert_eq!(pagos["label"], "Pagos y servicios en línea");
    let labels: Vec<&str> = pagos["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["label"].as_str().expect("label"))
        .collect();
    for l in [
        "Pagos en línea",
        "Permiso de circulación",
        "Patentes",
        "Licencia de conducir",
    ] {
        assert!(labels.contains(&l), "{labels:?}");
    }
}

/// Two instances on one database: a conversation started on one continues on the other.
async fn sessions_live_in_the_store(backend: Backend) {
    let Some(db) = common::TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let a = common::spawn_on(db, |_| {}).await;
    let b_db_guard = common::TestDb::new(Backend::Sqlite)
        .await
        .expect("unused guard");
    let b = common::spawn_on(b_db_guard, |c| c.database_url = url.clone().into()).await;
    let (sid, _) = new_session(&a).await;
    let (status, v) = say(&b, &sid, json!({"button": "oirs"})).await;
    assert_eq!(status, 200, "{v}");
    assert!(button_ids(&v["reply"]).contains(&"hacer_reclamo".to_string()));
}
on_both_backends!(sessions_live_in_the_store);

#[tokio::test]
async fn catalog_reload_swaps_or_rejects_atomically() {
    let dir = tempfile::tempdir().expect("tmp");
    let intents = dir.path().join("intents");
    std::fs::create_dir_all(&intents).expect("mkdir");
    for e in std::fs::read_dir(common::intents_dir()).expect("dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), intents.join(e.file_name())).expect("copy");
    }
    let intents_for_app = intents.clone();
    let Some(app) = common::spawn_app_with(Backend::Sqlite, move |c| {
        c.intents_dir = intents_for_app;
    })
    .await
    else {
        return;
    };
    // Only admins may reload.
    let r = app
        .post_json("/api/v1/admin/catalog/reload", json!({}))
        .await;
    assert_eq!(r.status(), 401);
    let analyst = app.login_as("ana_lista", "analyst", None).await;
    let r = app
        .client
        .post(app.url("/api/v1/admin/catalog/reload"))
        .bearer_auth(&analyst)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let admin = app.login_as("admin", "admin", None).await;
    let reload = || async {
        app.client
            .post(app.url("/api/v1/admin/catalog/reload"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send")
    };

    // Break one intent: unknown topic on a known line.
    let file = intents.join("50-servicios.toml");
    let original = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        original.replacen("topic = \"cementerio\"", "topic = \"cementerios\"", 1),
    )
    .expect("write");
    let r = reload().await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("50-servicios.toml:"), "{msg}");
    assert!(msg.contains("cementerios"), "{msg}");
    assert_eq!(v["error"]["field"], "50-servicios.toml");

    // The running catalog still answers.
    let (sid, _) = new_session(&app).await;
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "horario de visitas del cementerio"}),
    )
    .await;
    assert_eq!(v["match"]["topic"], "cementerio");

    // A valid change is swapped in.
    std::fs::write(
        &file,
        original
            .replace(
                "horario de visitas del cementerio",
                "horario del camposanto",
            )
            .replace(
                "\"horario del cementerio\",",
                "\"horario del cementerio\",\n  \"a que hora abre el camposanto municipal\",",
            ),
    )
    .expect("write");
    let r = reload().await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["intents"].as_u64().expect("n") >= 47);
    let (_, v) = say(&app, &sid, json!({"text": "camposanto horario"})).await;
    assert_eq!(v["match"]["topic"], "cementerio", "{v}");
}

#[tokio::test]
async fn a_tie_between_topics_is_asked_not_guessed() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    // "permiso" alone: de circulación, de edificación, patente… The bot offers them.
    let (_, v) = say(&app, &sid, json!({"text": "permiso"})).await;
    assert_eq!(v["match"]["fallback"], false, "{v}");
    assert_eq!(v["match"]["decision"], "clarify", "{v}");
    let ids = button_ids(&v["reply"]);
    assert!(
        ids.iter().filter(|b| b.starts_with("intent:")).count() >= 2,
        "{ids:?}"
    );
    assert!(
        ids.contains(&"intent:permiso_circulacion".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"intent:permisos_edificacion".to_string()),
        "{ids:?}"
    );
    let (_, v) = say(&app, &sid, json!({"button": "intent:permisos_edificacion"})).await;
    assert_eq!(v["match"]["topic"], "permisos_edificacion");

    // A clear question still gets its answer directly.
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "donde pago el permiso de circulacion"}),
    )
    .await;
    assert_eq!(v["match"]["topic"], "permiso_circulacion");
    assert!(!button_ids(&v["reply"])
        .iter()
        .any(|b| b.starts_with("intent:")));

    // "ayuda" alone asks for help; it is not a thank-you.
    let (_, v) = say(&app, &sid, json!({"text": "ayuda"})).await;
    assert_ne!(v["match"]["topic"], "despedida", "{v}");
}

/// The conversation carries over between messages, through the store (so another instance
/// would continue it): a follow-up is answered for the last topic, a follow-up naming
/// another topic goes there, and a clarifying question can be answered by typing.
async fn the_conversation_gives_context(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "como saco la licencia de conducir por primera vez"}),
    )
    .await;
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    assert_eq!(v["match"]["topic"], "licencia_conducir");

    // Alone, "¿y cuánto sale?" names no subject: it is about the licence.
    let (_, v) = say(&app, &sid, json!({"text": "¿y cuánto sale?"})).await;
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    assert_eq!(v["match"]["topic"], "licencia_conducir", "{v}");
    // A new conversation does not know what "it" is.
    let (other, _) = new_session(&app).await;
    let (_, v) = say(&app, &other, json!({"text": "¿y cuánto sale?"})).await;
    assert_ne!(v["match"]["topic"], "licencia_conducir", "{v}");

    // A follow-up that names another subject goes there.
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "y donde pago el permiso de circulacion?"}),
    )
    .await;
    assert_eq!(v["match"]["topic"], "permiso_circulacion", "{v}");

    // Something out of scope after an answer is still out of scope.
    let (_, v) = say(&app, &sid, json!({"text": "receta de calzones rotos"})).await;
    assert_eq!(v["match"]["decision"], "fallback", "{v}");

    // In a new conversation, "permiso" alone is ambiguous; the clarifying question can be
    // answered with the option's number. (Right after an answer about the circulation
    // permit, the same word would be about that permit.)
    let (sid, _) = new_session(&app).await;
    let (_, v) = say(&app, &sid, json!({"text": "permiso"})).await;
    assert_eq!(v["match"]["decision"], "clarify", "{v}");
    let options: Vec<String> = button_ids(&v["reply"])
        .into_iter()
        .filter_map(|b| b.strip_prefix("intent:").map(String::from))
        .collect();
    assert!(options.len() >= 2, "{options:?}");
    let (_, v) = say(&app, &sid, json!({"text": "la segunda"})).await;
    assert_eq!(v["match"]["decision"], "answer", "{v}");
    assert_eq!(v["match"]["intent"], options[1].as_str(), "{v}");
}
on_both_backends!(the_conversation_gives_context);

/// A complaint typed in the chat offers a reclamo about what the resident is talking about,
/// and the OIRS buttons clicked later keep that topic.
#[tokio::test]
async fn filing_offers_carry_the_conversation_topic() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "quiero reclamar porque hace una semana no pasa el camion de la basura"}),
    )
    .await;
    assert_eq!(v["match"]["topic"], "aseo_retiro", "{v}");
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "reclamo", "topic": "aseo_retiro"}),
        "{v}"
    );
    assert!(button_ids(&v["reply"]).contains(&"hacer_reclamo".to_string()));

    // The generic "Hacer una solicitud" button keeps the topic of the conversation, and its
    // link opens the form on it.
    let (_, v) = say(&app, &sid, json!({"button": "hacer_solicitud"})).await;
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "solicitud", "topic": "aseo_retiro"}),
        "{v}"
    );
    let urls = link_urls(&v["reply"]);
    assert!(
        urls.contains(&"/oirs?tipo=solicitud&tema=aseo_retiro".to_string()),
        "{urls:?}"
    );

    // A request about one's personal data is a datos_personales case.
    let (fresh, _) = new_session(&app).await;
    let (_, v) = say(
        &app,
        &fresh,
        json!({"text": "quiero que borren mis datos personales de sus registros"}),
    )
    .await;
    assert_eq!(v["reply"]["filing"]["type"], "datos_personales", "{v}");
    // ... naming the right the words ask for, on its link too.
    assert_eq!(v["reply"]["filing"]["right"], "supresion", "{v}");
    assert!(
        link_urls(&v["reply"]).contains(
            &"/oirs?tipo=datos_personales&tema=datos_personales&derecho=supresion".into()
        ),
        "{v}"
    );

    // "Quiero poner un reclamo" alone names no topic: the form will ask for one.
    let (fresh, _) = new_session(&app).await;
    let (_, v) = say(&app, &fresh, json!({"text": "quiero poner un reclamo"})).await;
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "reclamo", "topic": null}),
        "{v}"
    );
    // Replies that offer no filing carry none.
    let (_, v) = say(
        &app,
        &fresh,
        json!({"text": "horario de atencion de la municipalidad"}),
    )
    .await;
    assert!(v["reply"].get("filing").is_none(), "{v}");
}

/// A reply that is not sure still offers the OIRS form among its ways out, and says what it
/// would file: the type the words call for, the topic only when one is clear.
#[tokio::test]
async fn unsure_replies_offer_the_filing_the_words_call_for() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    // Read as about garbage collection, not surely enough to answer: the bot asks, and the
    // complaint it offers is about that.
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "pedi retiro de escombros hace un mes y nunca vinieron"}),
    )
    .await;
    assert_eq!(v["match"]["decision"], "clarify", "{v}");
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "reclamo", "topic": "aseo_retiro"}),
        "{v}"
    );
    let ids = button_ids(&v["reply"]);
    assert!(ids.contains(&"hacer_reclamo".to_string()), "{ids:?}");
    assert!(!ids.contains(&"hacer_solicitud".to_string()), "{ids:?}");

    // Two topics to choose from: the filing names neither.
    let (fresh, _) = new_session(&app).await;
    let (_, v) = say(&app, &fresh, json!({"text": "permiso"})).await;
    assert_eq!(v["match"]["decision"], "clarify", "{v}");
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "solicitud", "topic": null}),
        "{v}"
    );

    // Not understood at all: the request form, on no topic, one click away.
    let (_, v) = say(&app, &fresh, json!({"text": "blablabla qwerty"})).await;
    assert_eq!(v["match"]["decision"], "fallback", "{v}");
    assert_eq!(
        v["reply"]["filing"],
        json!({"type": "solicitud", "topic": null}),
        "{v}"
    );
    let urls = link_urls(&v["reply"]);
    assert!(
        urls.contains(&"/oirs?tipo=solicitud".to_string()),
        "{urls:?}"
    );
}

/// The conversation's memory reaches the store: at once with PostgreSQL, written behind within
/// a moment with SQLite (which keeps it in memory too), so a restart or another instance
/// continues it.
async fn conversation_state_reaches_the_store(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (sid, _) = new_session(&app).await;
    let (_, v) = say(
        &app,
        &sid,
        json!({"text": "que dias pasa el camion de la basura"}),
    )
    .await;
    assert_eq!(v["match"]["topic"], "aseo_retiro", "{v}");
    let sql = "SELECT state FROM chat_sessions WHERE id = $1";
    let stored = common::wait_for(Duration::from_secs(10), || async {
        let row: (String,) = ventanilla::with_pool!(&app.state.soft_store, pool => {
            sqlx::query_as(sql).bind(&sid).fetch_one(pool).await.expect("row")
        });
        row.0.contains("aseo_retiro").then_some(row.0)
    })
    .await
    .expect("the session's state is written");
    let state: Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(state["case_topic"], "aseo_retiro");
}
on_both_backends!(conversation_state_reaches_the_store);
