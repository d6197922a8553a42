//! Analytics on both backends: a generated event set with a known distribution (across the
//! America/Santiago daylight-saving changes) gives exact counts and shares in every grouping;
//! exports, the monthly report, its sentences, history import, and the HTML in Chromium.

mod common;

use chrono::{DateTime, Utc};
use common::{spawn_app_with, Backend, TestApp};
use serde_json::Value;
use ventanilla::analytics::recorder::insert_batch;
use ventanilla::analytics::{Interaction, InteractionKind};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn ev(when: &str, kind: InteractionKind, session: &str) -> Interaction {
    Interaction {
        occurred_at: at(when),
        session_id: Some(session.into()),
        kind,
        ..Interaction::default()
    }
}

fn click(when: &str, session: &str, button: &str, parent: Option<&str>) -> Interaction {
    Interaction {
        button_id: Some(button.into()),
        parent_id: parent.map(String::from),
        ..ev(when, InteractionKind::Button, session)
    }
}

/// The known event set:
/// - Tuesday 2026-04-21 09:00 local (13:00Z): 6 interactions from session s1 (4 button clicks
///   under Direcciones, Teléfonos y Correos, 2 messages, one a fallback).
/// - Wednesday 2026-04-22 16:00 local (20:00Z): 3 interactions (Pagos: parent + Pagos Online +
///   Patentes) from s2, plus 1 message.
/// - Saturday 2026-04-04 23:30 local, twice (02:30Z and 03:30Z on the 5th, either side of the
///   end of summer time), and Sunday 2026-04-05 00:30 local (04:30Z): 3 messages from s3.
/// - 2026-09-05 23:30 local (03:30Z on the 6th) and 2026-09-06 01:30 local (04:30Z, after the
///   start of summer time): 2 messages from s4.
/// - Session starts are recorded but are not interactions.
fn events() -> Vec<Interaction> {
    let t1 = "2026-04-21T13:00:00Z";
    let t2 = "2026-04-22T20:00:00Z";
    let msg = |when: &str, s: &str, fallback: bool, text: &str| Interaction {
        intent: (!fallback).then(|| "horario_atencion".to_string()),
        topic: (!fallback).then(|| "horario_atencion".to_string()),
        fallback,
        text_masked: Some(text.into()),
        ..ev(when, InteractionKind::Message, s)
    };
    vec![
        ev(t1, InteractionKind::SessionStarted, "s1"),
        click(t1, "s1", "direcciones_telefonos_correos", None),
        click(
            t1,
            "s1",
            "contactos_telefonicos",
            Some("direcciones_telefonos_correos"),
        ),
        click(
            t1,
            "s1",
            "contactos_telefonicos",
            Some("direcciones_telefonos_correos"),
        ),
        click(t1, "s1", "correos", Some("direcciones_telefonos_correos")),
        msg(t1, "s1", false, "horario"),
        msg(t1, "s1", true, "receta de queque"),
        click(t2, "s2", "pagos_servicios_online", None),
        click(t2, "s2", "pagos_online", Some("pagos_servicios_online")),
        click(t2, "s2", "patentes", Some("pagos_servicios_online")),
        msg(t2, "s2", true, "receta de queque"),
        msg("2026-04-05T02:30:00Z", "s3", false, "a"),
        msg("2026-04-05T03:30:00Z", "s3", false, "b"),
        msg("2026-04-05T04:30:00Z", "s3", false, "c"),
        msg("2026-09-06T03:30:00Z", "s4", false, "d"),
        msg("2026-09-06T04:30:00Z", "s4", false, "e"),
    ]
}

async fn seeded(backend: Backend) -> Option<(TestApp, String)> {
    // The fixture is older than the default text retention; keep its text for the test.
    let app = spawn_app_with(backend, |c| c.analytics.text_retention_days = 100_000).await?;
    insert_batch(&app.state.store, app.state.tz, &events())
        .await
        .expect("insert");
    let token = app.login_as("analista", "analyst", None).await;
    Some((app, token))
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

fn group<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {v}"))
}

async fn groupings_are_exact(backend: Backend) {
    let Some((app, token)) = seeded(backend).await else {
        return;
    };
    let q = |g: &str| {
        format!("/api/v1/analytics/interactions?from=2026-04-01&to=2026-09-30&group_by={g}")
    };

    let v = get_json(&app, &token, &q("month")).await;
    assert_eq!(v["total"], 15);
    assert_eq!(v["sessions"], 4);
    assert_eq!(group(&v, "2026-04")["count"], 13);
    assert_eq!(group(&v, "2026-09")["count"], 2);

    let v = get_json(&app, &token, &q("day")).await;
    assert_eq!(
        group(&v, "2026-04-04")["count"],
        2,
        "both 23:30 of the DST night"
    );
    assert_eq!(group(&v, "2026-04-05")["count"], 1);
    assert_eq!(group(&v, "2026-04-21")["count"], 6);
    assert_eq!(group(&v, "2026-09-05")["count"], 1);
    assert_eq!(group(&v, "2026-09-06")["count"], 1);

    let v = get_json(&app, &token, &q("weekday")).await;
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .expect("g")
        .iter()
        .map(|g| g["key"].as_str().expect("k"))
        .collect();
    assert_eq!(
        keys,
        [
            "lunes",
            "martes",
            "miercoles",
            "jueves",
            "viernes",
            "sabado",
            "domingo"
        ]
    );
    assert_eq!(group(&v, "martes")["count"], 6);
    assert_eq!(group(&v, "miercoles")["count"], 4);
    assert_eq!(group(&v, "sabado")["count"], 3);
    assert_eq!(group(&v, "domingo")["count"], 2);
    assert!((group(&v, "martes")["share"].as_f64().expect("s") - 6.0 / 15.0).abs() < 1e-9);
    // 09:00 Tuesday and 16:00 Wednesday are business hours: 10 of 15.
    assert!((v["business_hours_share"].as_f64().expect("b") - 10.0 / 15.0).abs() < 1e-9);

    let v = get_json(&app, &token, &q("hour")).await;
    assert_eq!(v["groups"].as_array().expect("g").len(), 24);
    assert_eq!(group(&v, "09")["count"], 6);
    assert_eq!(group(&v, "16")["count"], 4);
    assert_eq!(group(&v, "23")["count"], 3);
    assert_eq!(group(&v, "00")["count"], 1);
    assert_eq!(
        group(&v, "01")["count"],
        1,
        "01:30 on the day summer time starts"
    );

    let v = get_json(&app, &token, &q("button")).await;
    let dir = group(&v, "direcciones_telefonos_correos");
    assert_eq!(dir["count"], 1);
    assert!((dir["share"].as_f64().expect("s") - 0.5).abs() < 1e-9);
    let children = dir["children"].as_array().expect("children");
    assert_eq!(children[0]["key"], "contactos_telefonicos");
    assert_eq!(children[0]["count"], 2);
    assert!((children[0]["share"].as_f64().expect("s") - 2.0 / 3.0).abs() < 1e-9);
    assert!((children[1]["share"].as_f64().expect("s") - 1.0 / 3.0).abs() < 1e-9);
    let pagos = group(&v, "pagos_servicios_online");
    assert_eq!(pagos["children"].as_array().expect("c").len(), 2);

    // The aggregate as CSV.
    let r = app
        .client
        .get(app.url(&format!("{}&format=csv", q("weekday"))))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s");
    let csv = r.text().await.expect("t");
    assert!(
        csv.lines().any(|l| l.starts_with("martes,,6,0.400000,1")),
        "{csv}"
    );
}
on_both_backends!(groupings_are_exact);

async fn exports_stream_rows_without_personal_data(backend: Backend) {
    let Some((app, token)) = seeded(backend).await else {
        return;
    };
    let r = app
        .client
        .get(app.url("/api/v1/analytics/export?format=csv&from=2026-04-01&to=2026-09-30"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .expect("cd")
        .contains("attachment"));
    let csv = r.text().await.expect("t");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "occurred_at,local_date,weekday,hour,kind,button_id,parent_id,intent,topic,confidence,fallback");
    assert_eq!(lines.len(), 1 + 16, "every event, session starts included");
    assert!(
        !csv.contains("queque") && !csv.contains("s1"),
        "no text, no session ids"
    );
    let v: Value = app
        .client
        .get(app.url("/api/v1/analytics/export?format=json&from=2026-04-04&to=2026-04-05"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json array");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["hour"], "23");
    assert_eq!(rows[0]["weekday"], "sabado");
}
on_both_backends!(exports_stream_rows_without_personal_data);

/// An unanswered text reaches the report only when three different sessions wrote it, masked
/// for names, addresses and numbers; one resident's words never do.
async fn the_report_lists_only_what_several_residents_asked(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.analytics.text_retention_days = 100_000).await
    else {
        return;
    };
    let fallback = |s: &str, text: &str| Interaction {
        fallback: true,
        text_masked: Some(text.into()),
        ..ev("2026-05-12T15:00:00Z", InteractionKind::Message, s)
    };
    let events = vec![
        fallback("a", "Venden entradas para el estadio?"),
        fallback("b", "venden entradas para el estadio?"),
        fallback("c", "VENDEN  entradas para el estadio?"),
        // One session three times is one resident.
        fallback("d", "mi vecino Juan Soto tiene VIH"),
        fallback("d", "mi vecino Juan Soto tiene VIH"),
        fallback("d", "mi vecino Juan Soto tiene VIH"),
        // Three residents, each with their own street and number: the same question.
        fallback("e", "hay corte de agua en calle Los Aromos 1234"),
        fallback("f", "hay corte de agua en calle Las Lilas 55"),
        fallback("g", "hay corte de agua en calle Pedro de Valdivia 3"),
    ];
    insert_batch(&app.state.store, app.state.tz, &events)
        .await
        .expect("insert");
    let token = app.login_as("analista", "analyst", None).await;
    let v = get_json(&app, &token, "/api/v1/reports/monthly/2026-05?format=json").await;
    let listed: Vec<(String, i64)> = v["unanswered"]
        .as_array()
        .expect("unanswered")
        .iter()
        .map(|u| {
            (
                u["label"].as_str().expect("label").to_string(),
                u["count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("hay corte de agua en calle [dirección]".to_string(), 3),
            ("venden entradas para el estadio?".to_string(), 3),
        ]
    );
    let html = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-05?format=html"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("html");
    for secret in ["Juan", "Soto", "VIH", "Aromos", "1234"] {
        assert!(!html.contains(secret), "{secret} reached the report");
    }
}
on_both_backends!(the_report_lists_only_what_several_residents_asked);

async fn monthly_report_tells_it_in_sentences(backend: Backend) {
    let Some((app, token)) = seeded(backend).await else {
        return;
    };
    let v = get_json(&app, &token, "/api/v1/reports/monthly/2026-04?format=json").await;
    assert_eq!(v["interactions"], 13);
    let obs: Vec<&str> = v["observations"]
        .as_array()
        .expect("o")
        .iter()
        .map(|o| o.as_str().expect("s"))
        .collect();
    assert!(
        obs.contains(
            &"Los días martes y miércoles concentraron el 76,9% de las interacciones semanales."
        ),
        "{obs:?}"
    );
    assert!(obs.contains(&"Un 76,9% de las interacciones totales se hicieron en horario hábil entre 9:00 y 18:00 horas."), "{obs:?}");
    assert!(obs.contains(
        &"El 66,7% de los usuarios que ingresó al botón Direcciones, teléfonos y correos consultó por la opción Contactos telefónicos."
    ), "{obs:?}");
    assert!((v["fallback_rate"].as_f64().expect("f") - 2.0 / 6.0).abs() < 1e-9);
    // Two sessions asked "receta de queque": not enough for the mayor's report.
    assert_eq!(v["unanswered"], serde_json::json!([]));
    let csv = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-04?format=csv"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .text()
        .await
        .expect("t");
    assert!(csv.starts_with("section,key,label,count,share"));
    assert!(csv.contains("botonera,direcciones_telefonos_correos/contactos_telefonicos,Contactos telefónicos,2,0.6667"), "{csv}");
    // The variant a Chilean Excel opens in columns.
    let excel = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-04?format=csv&excel=true"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .text()
        .await
        .expect("t");
    assert!(
        excel.starts_with("\u{feff}section;key;label;count;share"),
        "{excel}"
    );
    assert!(excel.contains("botonera;direcciones_telefonos_correos/contactos_telefonicos;Contactos telefónicos;2;0,6667"), "{excel}");
    let html = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-04"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .text()
        .await
        .expect("t");
    assert!(html.contains("<svg") && html.contains("abril de 2026"));
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no external assets"
    );
    let r = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-4x"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 422);
}
on_both_backends!(monthly_report_tells_it_in_sentences);

#[tokio::test]
async fn analytics_are_for_analysts_and_admins() {
    let Some((app, _)) = seeded(Backend::Sqlite).await else {
        return;
    };
    let dept = app.login_as("dom1", "department", Some("dom")).await;
    let coord = app.login_as("coord", "coordinator", None).await;
    for token in [&dept, &coord] {
        let r = app
            .client
            .get(app.url("/api/v1/analytics/interactions"))
            .bearer_auth(token)
            .send()
            .await
            .expect("s");
        assert_eq!(r.status(), 403);
    }
    assert_eq!(app.get("/api/v1/analytics/export").await.status(), 401);
    let admin = app.login_as("root", "admin", None).await;
    let r = app
        .client
        .get(app.url("/api/v1/analytics/interactions?from=2026-05-01&to=2026-04-01"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn history_import_continues_the_series() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let engine = app.state.chat.engine();
    let menu = &engine.catalog.botonera;
    let csv = "timestamp,button,sub_option\n\
               2026-03-10 10:15,Direcciones, Teléfonos y Correos,Contactos Telefónicos\n\
               2026-03-10 11:00,oficina_de_partes,Quiero que me contacten\n\
               2026-03-11T15:00:00Z,Concejo Municipal,\n";
    // The label with a comma must be quoted in real CSV; unquoted it is a bad line.
    assert!(
        ventanilla::analytics::import::import_csv(&app.state.store, app.state.tz, menu, csv)
            .await
            .is_err()
    );
    let csv = "timestamp,button,sub_option\n\
               2026-03-10 10:15,\"Direcciones, Teléfonos y Correos\",Contactos Telefónicos\n\
               2026-03-10 11:00,oficina_de_partes,Quiero que me contacten\n\
               2026-03-11T15:00:00Z,Concejo Municipal,\n";
    let n = ventanilla::analytics::import::import_csv(&app.state.store, app.state.tz, menu, csv)
        .await
        .expect("import");
    assert_eq!(n, 5);
    let token = app.login_as("analista", "analyst", None).await;
    let v = get_json(
        &app,
        &token,
        "/api/v1/analytics/interactions?from=2026-03-01&to=2026-03-31&group_by=button",
    )
    .await;
    assert_eq!(
        group(&v, "oficina_de_partes")["children"][0]["key"],
        "quiero_que_me_contacten"
    );
    assert_eq!(group(&v, "oficina_de_partes")["children"][0]["share"], 1.0);
    let v = get_json(
        &app,
        &token,
        "/api/v1/analytics/interactions?from=2026-03-01&to=2026-03-31&group_by=hour",
    )
    .await;
    assert_eq!(group(&v, "10")["count"], 2, "local time stays local");
    assert_eq!(
        group(&v, "12")["count"],
        1,
        "15:00Z is 12:00 in March (UTC-3)"
    );
}

#[tokio::test]
async fn chat_text_is_purged_after_retention() {
    let Some((app, _)) = seeded(Backend::Sqlite).await else {
        return;
    };
    let cutoff = at("2026-09-01T00:00:00Z").timestamp_millis();
    let n = ventanilla::analytics::aggregate::purge_text(&app.state.store, cutoff)
        .await
        .expect("purge");
    assert_eq!(n, 6, "April texts go, September texts stay");
    let left: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM interactions WHERE text_masked IS NOT NULL").fetch_one(pool).await.expect("q")
    });
    assert_eq!(left.0, 2);
}

/// The HTML report renders in headless Chromium (Debian's package) without console errors.
#[tokio::test]
async fn html_report_renders_in_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium is not installed (CI installs it with apt)");
        }
        eprintln!("SKIPPED: chromium not installed");
        return;
    };
    let Some((app, token)) = seeded(Backend::Sqlite).await else {
        return;
    };
    let html = app
        .client
        .get(app.url("/api/v1/reports/monthly/2026-04"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .text()
        .await
        .expect("t");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("informe.html");
    std::fs::write(&file, &html).expect("write");
    let profile = dir.path().join("profile");
    let target = format!("file://{}", file.display());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(target)
            .output()
    })
    .await
    .expect("join")
    .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        dom.contains("<svg") && dom.contains("Observaciones"),
        "{dom}"
    );
    assert!(
        !log.contains("Uncaught") && !log.contains("Refused to"),
        "{log}"
    );
}
