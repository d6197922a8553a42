//! The HTTP contract: every rejection (path and query parameters included) answers with the
//! JSON error body, and the served OpenAPI document lists the statuses routes answer and the
//! rules their inputs follow. `scripts/contract.sh` checks the whole document against the
//! running service with schemathesis; these tests pin the parts a refactor could lose.

mod common;

use common::{spawn_app, Backend};
use serde_json::{json, Value};

/// Asserts the SPEC error body and returns it.
async fn error_body(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let b: Value = r.json().await.expect("a JSON body");
    assert!(b["error"]["code"].is_string(), "code in {b}");
    assert!(b["error"]["message"].is_string(), "message in {b}");
    b
}

async fn path_rejections_use_the_error_body(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("root", "admin", None).await;
    // `{id}` is an i64: a word, and a number past i64, are the client's mistake, named.
    for id in ["abc", "9223372036854775808"] {
        let r = app
            .client
            .post(app.url(&format!("/api/v1/admin/outbox/{id}/retry")))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send");
        let b = error_body(r, 422).await;
        assert_eq!(b["error"]["code"], "invalid_field");
        assert_eq!(b["error"]["field"], "id");
    }
}
on_both_backends!(path_rejections_use_the_error_body);

async fn query_rejections_use_the_error_body(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("root", "admin", None).await;
    for (path, field) in [
        ("/api/v1/admin/outbox?limit=abc", "limit"),
        ("/api/v1/admin/audit?limit=1.5", "limit"),
        ("/api/v1/staff/cases?overdue=maybe", "overdue"),
        ("/api/v1/staff/cases?due_before=tomorrow", "due_before"),
        ("/api/v1/analytics/interactions?group_by=year", "group_by"),
        ("/api/v1/analytics/export?excel=si", "excel"),
    ] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send");
        let b = error_body(r, 422).await;
        assert_eq!(b["error"]["code"], "invalid_field", "{path}");
        assert_eq!(b["error"]["field"], field, "{path}");
    }
    // Dates are exactly YYYY-MM-DD, as the document's `format: date` says.
    let r = app
        .client
        .get(app.url("/api/v1/analytics/interactions?from=2026-4-1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    assert_eq!(error_body(r, 422).await["error"]["field"], "from");
}
on_both_backends!(query_rejections_use_the_error_body);

async fn bodies_are_json_objects(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Not declared JSON → 415; no body at all is the same.
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("username=admin")
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_body(r, 415).await["error"]["code"],
        "unsupported_content_type"
    );
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .send()
        .await
        .expect("send");
    error_body(r, 415).await;
    // serde would read a struct from an array of its fields; the contract says object.
    let r = app
        .post_json("/api/v1/auth/login", json!(["admin", "secret-password"]))
        .await;
    error_body(r, 422).await;
}
on_both_backends!(bodies_are_json_objects);

async fn openapi(app: &common::TestApp) -> Value {
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} has responses"))
        .keys()
        .cloned()
        .collect()
}

async fn openapi_lists_the_statuses_routes_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let doc = openapi(&app).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // A staff route: no session → 401, the wrong role → 403.
    let s = statuses(&doc, "/api/v1/staff/cases", "get");
    for status in ["200", "401", "403", "422", "503"] {
        assert!(
            s.contains(&status.to_string()),
            "GET /staff/cases lists {status}: {s:?}"
        );
    }
    // A body route: malformed JSON 400, too large 413, not JSON 415, a bad field 422.
    let s = statuses(&doc, "/api/v1/oirs/cases", "post");
    for status in ["201", "400", "409", "413", "415", "422", "429", "503"] {
        assert!(
            s.contains(&status.to_string()),
            "POST /oirs/cases lists {status}: {s:?}"
        );
    }
    // Error statuses carry the error body.
    assert_eq!(
        doc["paths"]["/api/v1/oirs/cases"]["post"]["responses"]["415"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // Public routes are rate limited; operations endpoints are not.
    assert!(statuses(&doc, "/api/v1/chat/menu", "get").contains(&"429".to_string()));
    assert!(!statuses(&doc, "/healthz", "get").contains(&"429".to_string()));

    // Query parameters are declared in the query, not in the path.
    let params = doc["paths"]["/api/v1/staff/cases"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let limit = params
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit parameter");
    assert_eq!(limit["in"], "query");
    assert_ne!(limit["required"], true);

    // Operation ids are unique (clients generate method names from them).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operationId");
}
on_both_backends!(openapi_lists_the_statuses_routes_answer);

async fn openapi_states_the_validators_rules(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let doc = openapi(&app).await;
    let schemas = &doc["components"]["schemas"];
    // Lengths and ranges the handlers check.
    assert_eq!(
        schemas["MessageIn"]["properties"]["text"]["maxLength"],
        1000
    );
    assert_eq!(
        schemas["CaseIn"]["properties"]["description"]["maxLength"],
        5000
    );
    assert_eq!(
        schemas["CaseTypeIn"]["properties"]["deadline_days"]["minimum"],
        1
    );
    assert_eq!(schemas["UserIn"]["properties"]["password"]["minLength"], 10);
    assert_eq!(schemas["CaseIn"]["additionalProperties"], false);
    // Live values: the chat's buttons and the store's departments.
    let buttons = schemas["MessageIn"]["properties"]["button"]["enum"]
        .as_array()
        .expect("button enum");
    assert!(buttons.contains(&json!("menu")));
    let departments = schemas["RoutingRule"]["properties"]["department"]["enum"]
        .as_array()
        .expect("department enum");
    assert!(departments.contains(&json!("dom")));
    // A staff registration is one closed object with the filing's fields and its own.
    let staff = &schemas["StaffCaseIn"];
    assert_eq!(staff["additionalProperties"], false);
    assert!(staff["properties"]["channel"].is_object());
    assert!(staff["properties"]["description"].is_object());
    // Path parameters the handlers check.
    let params = doc["paths"]["/api/v1/admin/holidays/{date}"]["put"]["parameters"]
        .as_array()
        .expect("parameters");
    assert_eq!(params[0]["schema"]["format"], "date");
}
on_both_backends!(openapi_states_the_validators_rules);
