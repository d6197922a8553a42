//! Staff console and the staff API it builds on: user administration, logout, CSRF for
//! cookie sessions, session expiry, inbox counters. Storage-touching tests run on both
//! backends; the browser side is in webtests/console.test.mjs.

mod common;

use common::{spawn_app, Backend, TestApp};
use serde_json::{json, Value};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("put")
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post")
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// Logs in and returns the bearer token.
async fn token(app: &TestApp, username: &str, password: &str) -> String {
    let r = login(app, username, password).await;
    assert_eq!(r.status(), 200, "login {username}");
    r.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

async fn users_are_administered(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("admin", "admin", None).await;
    let coord = app.login_as("coord", "coordinator", None).await;

    // Only admins manage users.
    let r = app
        .client
        .get(app.url("/api/v1/admin/users"))
        .bearer_auth(&coord)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);

    // Validation names the field; nothing is written.
    for (body, field) in [
        (
            json!({"username": "x1", "password": "corta", "role": "analyst"}),
            "password",
        ),
        (
            json!({"username": "dom2", "password": "una-clave-larga", "role": "department"}),
            "department",
        ),
        (
            json!({"username": "dom2", "password": "una-clave-larga", "role": "department", "department": "no_existe"}),
            "department",
        ),
        (
            json!({"username": "Con Espacio", "password": "una-clave-larga", "role": "analyst"}),
            "username",
        ),
        (
            json!({"username": "ana2", "password": "una-clave-larga", "role": "analyst", "department": "dom"}),
            "department",
        ),
    ] {
        let r = post(&app, &admin, "/api/v1/admin/users", body.clone()).await;
        assert_eq!(r.status(), 422, "{body}");
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{body}");
    }

    let r = post(
        &app,
        &admin,
        "/api/v1/admin/users",
        json!({"username": "dom2", "password": "una-clave-larga", "role": "department", "department": "dom"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["department"], "dom");
    assert!(created.get("password_hash").is_none());
    let again = post(
        &app,
        &admin,
        "/api/v1/admin/users",
        json!({"username": "dom2", "password": "una-clave-larga", "role": "analyst"}),
    )
    .await;
    assert_eq!(again.status(), 409);

    // The new user logs in; a new password ends the session and the old password stops working.
    let dom2 = token(&app, "dom2", "una-clave-larga").await;
    let r = put(
        &app,
        &admin,
        "/api/v1/admin/users/dom2",
        json!({"password": "otra-clave-larga"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/api/v1/staff/cases"))
        .bearer_auth(&dom2)
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status(),
        401,
        "the session ended with the password change"
    );
    assert_eq!(login(&app, "dom2", "una-clave-larga").await.status(), 401);
    assert_eq!(login(&app, "dom2", "otra-clave-larga").await.status(), 200);

    // Role change clears the department; deactivation blocks login.
    let r = put(
        &app,
        &admin,
        "/api/v1/admin/users/dom2",
        json!({"role": "analyst", "department": ""}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = put(
        &app,
        &admin,
        "/api/v1/admin/users/dom2",
        json!({"active": false}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(login(&app, "dom2", "otra-clave-larga").await.status(), 401);

    // An admin cannot lock themselves out.
    let r = put(
        &app,
        &admin,
        "/api/v1/admin/users/admin",
        json!({"active": false}),
    )
    .await;
    assert_eq!(r.status(), 409);

    // Changing one's own password ends one's other sessions, not the one making the change.
    let other = token(&app, "admin", "correct horse battery").await;
    let r = put(
        &app,
        &admin,
        "/api/v1/admin/users/admin",
        json!({"password": "una-clave-nueva-larga"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let status_with = |t: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/admin/users"))
                .bearer_auth(t)
                .send()
                .await
                .expect("get")
                .status()
        }
    };
    assert_eq!(
        status_with(admin.clone()).await,
        200,
        "the caller's session stays"
    );
    assert_eq!(status_with(other).await, 401, "the other session ended");

    let list = get_json(&app, &admin, "/api/v1/admin/users").await;
    let dom2 = list
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["username"] == "dom2")
        .expect("dom2 listed");
    assert_eq!(dom2["role"], "analyst");
    assert_eq!(dom2["active"], false);
    assert_eq!(dom2["department"], Value::Null);

    // Every change is in the audit log.
    let audit = get_json(&app, &admin, "/api/v1/admin/audit?action=crear_usuario").await;
    assert_eq!(audit[0]["detail"], "dom2");
}
on_both_backends!(users_are_administered);

async fn cookie_sessions_need_the_csrf_token_and_logout_ends_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.login_as("coord", "coordinator", None).await;
    let r = login(&app, "coord", "correct horse battery").await;
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let body: Value = r.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    let filed: Value = app
        .post_json(
            "/api/v1/oirs/cases",
            json!({"type": "consulta", "topic": "becas", "description": "Consulta sobre becas municipales.", "name": "Ana Pérez", "consent": true}),
        )
        .await
        .json()
        .await
        .expect("json");
    let events = app.url(&format!(
        "/api/v1/staff/cases/{}/events",
        filed["folio"].as_str().expect("folio")
    ));
    let comment = json!({"kind": "comentar", "text": "nota"});

    // Reads with the cookie alone are fine; changes need the header.
    let r = app
        .client
        .get(app.url("/api/v1/staff/cases"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(&events)
        .header("cookie", &cookie)
        .json(&comment)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"]["code"],
        "csrf"
    );
    let r = app
        .client
        .post(&events)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&comment)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);

    // Logout ends the session and clears the cookie.
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .contains("Max-Age=0"));
    let r = app
        .client
        .get(app.url("/api/v1/staff/cases"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
}
on_both_backends!(cookie_sessions_need_the_csrf_token_and_logout_ends_them);

async fn console_redirects_to_login_and_expired_sessions_say_so(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let client = no_redirects();
    let r = client
        .get(app.url("/staff/casos?estado=derivado"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/staff/ingreso?next=/staff/casos%3Festado%3Dderivado"
    );

    // A session past its expiry sends the user to log in again, with the reason.
    let hash = ventanilla::staff::auth::hash_password("correct horse battery").expect("hash");
    let id = ventanilla::staff::auth::add_user(
        &app.state.store,
        "dom1",
        &hash,
        ventanilla::staff::auth::Role::Department,
        Some("dom"),
    )
    .await
    .expect("user");
    let expired = ventanilla::staff::auth::create_session(&app.state.store, id, -1)
        .await
        .expect("session");
    let r = client
        .get(app.url("/staff/casos"))
        .header("cookie", format!("ventanilla_session={expired}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .expect("loc")
        .ends_with("motivo=expirada"));
    assert_eq!(
        ventanilla::staff::auth::purge_sessions(&app.state.store)
            .await
            .expect("purge"),
        1
    );

    // A login posted from another site is refused (login CSRF).
    let r = client
        .post(app.url("/staff/ingreso"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("usuario", "dom1"), ("clave", "correct horse battery")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());

    // The login form: a wrong password is 401 with the form again, a right one sets the
    // cookie and goes to `next` (console paths only).
    let r = client
        .post(app.url("/staff/ingreso"))
        .form(&[
            ("usuario", "dom1"),
            ("clave", "mala"),
            ("next", "/staff/casos"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .expect("html")
        .contains("Usuario o contraseña incorrectos"));
    let r = client
        .post(app.url("/staff/ingreso"))
        .form(&[
            ("usuario", "dom1"),
            ("clave", "correct horse battery"),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/staff");
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().expect("pair").to_string();
    let r = client
        .get(app.url("/staff/casos"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let html = r.text().await.expect("html");
    assert!(!html.contains("<script"), "the console needs no script");
    assert!(!html.contains("style="), "no inline styles");
    // Every form that changes something carries the token.
    assert_eq!(
        html.matches(r#"method="post""#).count(),
        html.matches(r#"name="_csrf""#).count()
    );
}
on_both_backends!(console_redirects_to_login_and_expired_sessions_say_so);

async fn inbox_counts_follow_status_and_alert_level(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = app.login_as("coord", "coordinator", None).await;
    let mut folios = Vec::new();
    for topic in ["permisos_edificacion", "permisos_edificacion", "becas"] {
        let r: Value = app
            .post_json(
                "/api/v1/oirs/cases",
                json!({"type": "solicitud", "topic": topic, "description": "Una solicitud de prueba.", "name": "Ana Pérez", "consent": true}),
            )
            .await
            .json()
            .await
            .expect("json");
        folios.push(r["folio"].as_str().expect("folio").to_string());
    }
    let r = post(
        &app,
        &token,
        &format!("/api/v1/staff/cases/{}/events", folios[0]),
        json!({"kind": "iniciar"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let store = &app.state.store;
    use ventanilla::oirs::service::{inbox_counts, InboxCounts};
    assert_eq!(
        inbox_counts(store, Some("dom")).await.expect("counts"),
        InboxCounts {
            nuevos: 1,
            en_proceso: 1,
            por_vencer: 0,
            vencidos: 0
        }
    );
    assert_eq!(
        inbox_counts(store, None).await.expect("counts").nuevos,
        2,
        "all departments"
    );
    // Answered cases leave the counters.
    let r = post(
        &app,
        &token,
        &format!("/api/v1/staff/cases/{}/events", folios[0]),
        json!({"kind": "responder", "text": "Listo."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        inbox_counts(store, Some("dom"))
            .await
            .expect("counts")
            .en_proceso,
        0
    );
}
on_both_backends!(inbox_counts_follow_status_and_alert_level);

async fn demo_data_seeds_once_and_logs_in(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    assert!(ventanilla::demo::seed(&app.state).await.expect("seed"));
    assert!(
        !ventanilla::demo::seed(&app.state).await.expect("seed"),
        "a database with users is left alone"
    );
    for (user, _, _) in ventanilla::demo::DEMO_USERS {
        assert_eq!(
            login(&app, user, ventanilla::demo::DEMO_PASSWORD)
                .await
                .status(),
            200,
            "{user}"
        );
    }
    let coord = token(&app, "coordinacion", ventanilla::demo::DEMO_PASSWORD).await;
    let cases = get_json(&app, &coord, "/api/v1/staff/cases").await;
    let cases = cases.as_array().expect("array");
    assert_eq!(cases.len(), 7);
    for status in [
        "derivado",
        "en_proceso",
        "pendiente_informacion",
        "respondido",
    ] {
        assert!(
            cases.iter().any(|c| c["status"] == status),
            "a demo case is {status}"
        );
    }
    let analyst = token(&app, "analista", ventanilla::demo::DEMO_PASSWORD).await;
    let agg = get_json(
        &app,
        &analyst,
        "/api/v1/analytics/interactions?group_by=weekday",
    )
    .await;
    assert!(agg["total"].as_i64().expect("total") > 1000, "{agg}");
}
on_both_backends!(demo_data_seeds_once_and_logs_in);
