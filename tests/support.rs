//! Support access (SPEC: support access) and the staff second factor, on both stores: no
//! access without a grant; `config` reaches parameters and catalog but not case details;
//! `cases` reaches case details, audited; revocation and expiry take effect on the next
//! request, also on another instance; the summary lists what was done; TOTP enrolment,
//! login with and without the code, single-use recovery codes, the per-role requirement.

mod common;

use std::time::Duration;

use common::{spawn_app_with, spawn_on, wait_for, Backend, TestApp, TestDb};
use serde_json::{json, Value};
use ventanilla::staff::second_factor;

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, token, None).await
}

fn code_of(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

const CASE_TYPE_FIX: &str = r#"{"name": "Reclamo", "deadline_days": 15, "alert_days": 3}"#;

async fn grant(app: &TestApp, admin: &str, scope: &str) -> i64 {
    let (status, body) = call(
        app,
        reqwest::Method::POST,
        "/api/v1/admin/support-grants",
        admin,
        Some(
            json!({"username": "proveedor", "reason": "Ticket 481: plazos mal cargados",
                    "minutes": 15, "scope": [scope]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["expires_at"].as_str().is_some());
    body["id"].as_i64().expect("grant id")
}

async fn config_scope_fixes_parameters_and_is_summarised(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let admin = app.login_as("admin", "admin", None).await;
    let support = app.login_as("proveedor", "support", None).await;
    let filed = app.file_case(common::pothole_report(1)).await;
    let folio = filed["folio"].as_str().expect("folio");

    // No grant: nothing at all, not even what a grant would allow.
    for path in ["/api/v1/admin/case-types", "/api/v1/staff/cases"] {
        let (status, body) = get(&app, path, &support).await;
        assert_eq!(
            (status, code_of(&body)),
            (403, "no_support_grant"),
            "{path}"
        );
    }
    // Bad grants are refused with the field named; only support users get grants.
    for (body, field) in [
        (
            json!({"username": "proveedor", "reason": " ", "minutes": 15, "scope": ["config"]}),
            "reason",
        ),
        (
            json!({"username": "proveedor", "reason": "x", "minutes": 0, "scope": ["config"]}),
            "minutes",
        ),
        (
            json!({"username": "proveedor", "reason": "x", "minutes": 15, "scope": []}),
            "scope",
        ),
        (
            json!({"username": "admin", "reason": "x", "minutes": 15, "scope": ["config"]}),
            "username",
        ),
    ] {
        let (status, out) = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/admin/support-grants",
            &admin,
            Some(body),
        )
        .await;
        // Not a support user: 404 (the name is well formed, nobody by it may be granted).
        let expected = if field == "username" { 404 } else { 422 };
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (expected, Some(field)),
            "{out}"
        );
    }
    let (status, _) = call(
        &app,
        reqwest::Method::PUT,
        "/api/v1/admin/users/admin",
        &admin,
        Some(json!({"email": "ti@muni.example.cl"})),
    )
    .await;
    assert_eq!(status, 200);

    let id = grant(&app, &admin, "config").await;
    let (status, body) = get(&app, "/api/v1/admin/case-types", &support).await;
    assert_eq!(status, 200, "{body}");
    let fix: Value = serde_json::from_str(CASE_TYPE_FIX).expect("json");
    let (status, body) = call(
        &app,
        reqwest::Method::PUT,
        "/api/v1/admin/case-types/reclamo",
        &support,
        Some(fix),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&app, "/api/v1/admin/catalog/review", &support).await;
    assert_eq!(status, 200, "the catalog is configuration");
    for path in [
        format!("/api/v1/staff/cases/{folio}"),
        "/api/v1/staff/cases".to_string(),
        "/api/v1/admin/users".to_string(),
        "/api/v1/admin/audit".to_string(),
        format!("/api/v1/admin/support-grants/{id}"),
    ] {
        let (status, body) = get(&app, &path, &support).await;
        assert_eq!(
            (status, code_of(&body)),
            (403, "outside_support_scope"),
            "{path}"
        );
    }
    // A second grant while one is active is refused.
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/admin/support-grants",
        &admin,
        Some(json!({"username": "proveedor", "reason": "otra", "minutes": 5, "scope": ["cases"]})),
    )
    .await;
    assert_eq!((status, code_of(&body)), (409, "grant_active"));

    // The live view lists the support user's requests with the grant's id.
    let (status, actions) = get(
        &app,
        &format!("/api/v1/admin/support-grants/{id}/actions"),
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = actions
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        listed.contains(&"PUT /api/v1/admin/case-types/reclamo"),
        "{listed:?}"
    );
    let (_, open) = get(&app, &format!("/api/v1/admin/support-grants/{id}"), &admin).await;
    assert_eq!(open["active"], true);
    assert!(open["summary"].is_null(), "no summary while active");

    // Revocation: at once, with the summary kept and mailed to the administrators.
    let (status, ended) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/admin/support-grants/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["active"], false);
    let summary = &ended["summary"];
    assert_eq!(summary["ended_by"], "revoked");
    assert_eq!(summary["records_read"], 0);
    assert!(summary["requests"].as_i64().expect("requests") >= 3);
    let changes: Vec<&str> = summary["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(changes, vec!["PUT /api/v1/admin/case-types/reclamo"]);
    let (status, body) = get(&app, "/api/v1/admin/case-types", &support).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "no_support_grant"),
        "the next request"
    );
    let (_, outbox) = get(&app, "/api/v1/admin/outbox", &admin).await;
    assert!(
        outbox["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["summary"]
                .as_str()
                .is_some_and(|s| s.contains("Acceso de soporte terminado"))),
        "{outbox}"
    );
    // The fix made under the grant stays.
    let (_, types) = get(&app, "/api/v1/admin/case-types", &admin).await;
    let reclamo = types
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["id"] == "reclamo")
        .cloned();
    assert_eq!(reclamo.expect("reclamo")["term_days"], 15);
}
on_both_backends!(config_scope_fixes_parameters_and_is_summarised);

async fn cases_scope_reads_cases_until_the_time_is_up(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.signal_poll_ms = 50).await else {
        return;
    };
    let admin = app.login_as("admin", "admin", None).await;
    let support = app.login_as("proveedor", "support", None).await;
    let filed = app.file_case(common::pothole_report(2)).await;
    let folio = filed["folio"].as_str().expect("folio").to_string();
    let id = grant(&app, &admin, "cases").await;

    let (status, body) = get(&app, &format!("/api/v1/staff/cases/{folio}"), &support).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/staff/cases/{folio}/events"),
        &support,
        Some(json!({"kind": "comentar", "text": "hola"})),
    )
    .await;
    assert_eq!(status, 403, "reading only");
    let (_, audit) = get(&app, &format!("/api/v1/admin/audit?folio={folio}"), &admin).await;
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|e| e["username"] == "proveedor"),
        "the read is audited: {audit}"
    );

    // Its time is up: the next request is refused and the sweep ends it unasked.
    ventanilla::write_pool!(&app.state.store, pool => {
        sqlx::query("UPDATE support_grants SET expires_at = $1 WHERE id = $2")
            .bind(ventanilla::store::now_millis() - 1)
            .bind(id)
            .execute(pool)
            .await
            .expect("expire");
    });
    let (status, body) = get(&app, "/api/v1/admin/case-types", &support).await;
    assert_eq!((status, code_of(&body)), (403, "no_support_grant"));
    let store = app.state.store.clone();
    let summary = wait_for(Duration::from_secs(20), || {
        let store = store.clone();
        async move {
            let row: Option<(Option<String>,)> = ventanilla::with_pool!(&store, pool => {
                sqlx::query_as("SELECT summary FROM support_grants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .expect("grant")
            });
            row.and_then(|r| r.0)
        }
    })
    .await
    .expect("the sweep ends an expired grant");
    let summary: Value = serde_json::from_str(&summary).expect("summary json");
    assert_eq!(summary["ended_by"], "expired");
    assert_eq!(summary["records_read"], 1);
    let (_, ended) = get(&app, &format!("/api/v1/admin/support-grants/{id}"), &admin).await;
    assert_eq!(ended["summary"]["records_read"], 1);
}
on_both_backends!(cases_scope_reads_cases_until_the_time_is_up);

async fn revocation_reaches_every_instance(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let a = spawn_on(db, |_| {}).await;
    let b = spawn_on(TestDb::at(url), |_| {}).await;
    let admin = a.login_as("admin", "admin", None).await;
    let support = b.login_as("proveedor", "support", None).await;
    let id = grant(&a, &admin, "config").await;
    let (status, _) = get(&b, "/api/v1/admin/holidays", &support).await;
    assert_eq!(status, 200, "granted on A, in force on B");
    let (status, _) = call(
        &a,
        reqwest::Method::DELETE,
        &format!("/api/v1/admin/support-grants/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(&b, "/api/v1/admin/holidays", &support).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "no_support_grant"),
        "revoked on A, ended on B"
    );
}
on_both_backends!(revocation_reaches_every_instance);

async fn login(app: &TestApp, username: &str, code: Option<&str>) -> (u16, Value) {
    let mut body = json!({"username": username, "password": "correct horse battery"});
    if let Some(c) = code {
        body["code"] = json!(c);
    }
    let resp = app.post_json("/api/v1/auth/login", body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

/// Logs `admin` in (the role requires a second factor it has not got: a session limited to
/// enrolment), enrols one with the current code and returns the session's token (now a full
/// one), the secret and the recovery codes.
async fn enrol_admin(app: &TestApp) -> (String, String, Vec<String>) {
    let limited = app.login_as("admin", "admin", None).await;
    let (_, again) = login(app, "admin", None).await;
    assert_eq!(again["enrolment_required"], true);
    let (status, body) = get(app, "/api/v1/admin/case-types", &limited).await;
    assert_eq!((status, code_of(&body)), (403, "enrolment_required"));
    let (status, started) = call(
        app,
        reqwest::Method::POST,
        "/api/v1/auth/2fa/start",
        &limited,
        None,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let secret = started["secret"].as_str().expect("secret").to_string();
    assert!(started["otpauth_uri"]
        .as_str()
        .expect("uri")
        .starts_with("otpauth://totp/"));
    let (status, body) = call(
        app,
        reqwest::Method::POST,
        "/api/v1/auth/2fa/confirm",
        &limited,
        Some(json!({"code": "000000x"})),
    )
    .await;
    assert_eq!((status, code_of(&body)), (401, "totp_invalid"));
    let code = second_factor::code_in_steps(&secret, 0);
    let (status, confirmed) = call(
        app,
        reqwest::Method::POST,
        "/api/v1/auth/2fa/confirm",
        &limited,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    (limited, secret, recovery)
}

async fn totp_enrolment_login_and_recovery(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.require_2fa = vec!["admin".into()]).await else {
        return;
    };
    let (limited, secret, recovery) = enrol_admin(&app).await;
    assert_eq!(recovery.len(), 10);
    let (status, _) = get(&app, "/api/v1/admin/case-types", &limited).await;
    assert_eq!(status, 200, "the enrolling session is now a full one");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/2fa/start",
        &limited,
        None,
    )
    .await;
    assert_eq!((status, code_of(&body)), (409, "already_enrolled"));

    // Login needs the code now.
    let (status, body) = login(&app, "admin", None).await;
    assert_eq!((status, code_of(&body)), (401, "totp_required"));
    let (status, body) = login(&app, "admin", Some("abcdef")).await;
    assert_eq!((status, code_of(&body)), (401, "totp_invalid"));
    // The next step's code (clock drift allowed), once.
    let next = second_factor::code_in_steps(&secret, 1);
    let (status, body) = login(&app, "admin", Some(&next)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enrolment_required"], false);
    let (status, body) = login(&app, "admin", Some(&next)).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, "totp_invalid"),
        "a code works once"
    );
    // Recovery codes: any one, once.
    let (status, body) = login(&app, "admin", Some(&recovery[3].to_uppercase())).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login(&app, "admin", Some(&recovery[3])).await;
    assert_eq!((status, code_of(&body)), (401, "totp_invalid"));

    // Per role: a department user logs in with the password alone.
    let (status, body) = login(&app, "admin", Some("999999x")).await;
    assert_eq!(status, 401, "{body}");
    app.login_as("dom1", "department", Some("dom")).await;
    let (_, body) = login(&app, "dom1", None).await;
    assert_eq!(body["enrolment_required"], false);

    // Reset (the CLI's reset-2fa): enrol again at the next login.
    assert!(second_factor::reset(&app.state.store, "admin")
        .await
        .expect("reset"));
    let (status, _) = get(&app, "/api/v1/admin/case-types", &limited).await;
    assert_eq!(status, 401, "sessions end with the reset");
    let (status, body) = login(&app, "admin", None).await;
    assert_eq!(
        (status, body["enrolment_required"].as_bool()),
        (200, Some(true))
    );
}
on_both_backends!(totp_enrolment_login_and_recovery);

async fn wrong_codes_are_throttled_like_passwords(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.require_2fa = vec!["admin".into()]).await else {
        return;
    };
    let (_, secret, _) = enrol_admin(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login(&app, "admin", Some("abcdef")).await.0);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    // Even the right code waits now.
    let good = second_factor::code_in_steps(&secret, 1);
    assert_eq!(login(&app, "admin", Some(&good)).await.0, 429);
}
on_both_backends!(wrong_codes_are_throttled_like_passwords);
