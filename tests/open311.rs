//! Open311 GeoReport v2 on both backends: services, filing with and without a key, listing
//! filters, single requests, JSON and XML, no personal data in any listing, publication
//! opt-in, errors; and location on cases filed through the API.

mod common;

use common::{spawn_app, Backend, TestApp};
use serde_json::{json, Value};

const BASE: &str = "/open311/v2";

async fn get_raw(app: &TestApp, path: &str) -> (u16, String, String) {
    let r = app.get(&format!("{BASE}/{path}")).await;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let (status, _, body) = get_raw(app, path).await;
    (status, serde_json::from_str(&body).expect("json"))
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .client
        .post(app.url(&format!("{BASE}/{path}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Issues a key through the admin API; returns (id, key).
async fn issue_key(app: &TestApp, admin: &str, name: &str) -> (i64, String) {
    let r = app
        .client
        .post(app.url("/api/v1/admin/open311/keys"))
        .bearer_auth(admin)
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201, "key issued");
    let body: Value = r.json().await.expect("json");
    (
        body["id"].as_i64().expect("id"),
        body["api_key"].as_str().expect("key").to_string(),
    )
}

/// A resident's report from an app, with contact data that must never be listed.
fn report<'a>(key: &'a str, description: &'a str, publish: bool) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("api_key", key),
        ("service_code", "alumbrado_publico"),
        ("lat", "-36.6183"),
        ("long", "-72.9556"),
        ("address_string", "Avenida Latorre 1200, Tomé"),
        ("description", description),
        ("first_name", "Rosa"),
        ("last_name", "Quintana"),
        ("email", "rosa.quintana@example.cl"),
        ("phone", "+56 9 8765 4321"),
    ];
    if publish {
        form.push(("public_description", "true"));
    }
    form
}

async fn file(app: &TestApp, key: &str, description: &str, publish: bool) -> String {
    let (status, body) = post_form(app, "requests.json", &report(key, description, publish)).await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v[0]["account_id"], Value::Null);
    assert!(v[0]["service_notice"]
        .as_str()
        .expect("notice")
        .contains("folio"));
    v[0]["service_request_id"].as_str().expect("id").to_string()
}

async fn services_in_both_formats(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (status, ct, body) = get_raw(&app, "services.json").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    let services: Value = serde_json::from_str(&body).expect("json");
    let light = services
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["service_code"] == "alumbrado_publico")
        .expect("street lighting is a service");
    assert_eq!(light["service_name"], "Alumbrado público");
    assert_eq!(light["group"], "Dirección de Aseo y Ornato");
    assert_eq!(light["metadata"], false);
    assert_eq!(light["type"], "realtime");
    assert!(light["description"]
        .as_str()
        .expect("d")
        .contains("Luminarias"));
    // Only territorial topics: nothing about payments or personal data.
    let codes: Vec<&str> = services
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["service_code"].as_str())
        .collect();
    assert!(codes.contains(&"calles_veredas") && codes.contains(&"areas_verdes"));
    assert!(!codes.contains(&"pagos_online") && !codes.contains(&"datos_personales"));

    let (status, ct, xml) = get_raw(&app, "services.xml").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/xml"), "{ct}");
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<services><service><service_code>"), "{xml}");
    assert!(
        xml.contains("<service_name>Alumbrado público</service_name>"),
        "{xml}"
    );
    assert!(xml.contains("<metadata>false</metadata><type>realtime</type>"));

    let (status, def) = get_json(&app, "services/alumbrado_publico.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        def,
        json!({"service_code": "alumbrado_publico", "attributes": []})
    );
    let (status, _, xml) = get_raw(&app, "services/alumbrado_publico.xml").await;
    assert_eq!(status, 200);
    assert!(xml.contains("<service_definition><service_code>alumbrado_publico</service_code>"));
    let (status, err) = get_json(&app, "services/pagos_online.json").await;
    assert_eq!(status, 404);
    assert_eq!(err[0]["code"], 404);

    let (status, d) = get_json(&app, "discovery.json").await;
    assert_eq!(status, 200);
    assert!(d["endpoints"][0]["url"]
        .as_str()
        .expect("url")
        .ends_with("/open311/v2"));
}
on_both_backends!(services_in_both_formats);

async fn filing_needs_a_live_key(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;

    // No key, a made-up key: 403 in GeoReport's error form, nothing filed.
    let mut form = report(
        "",
        "Luminaria apagada hace una semana en la avenida.",
        false,
    );
    form.retain(|(k, _)| *k != "api_key");
    let (status, body) = post_form(&app, "requests.json", &form).await;
    assert_eq!(status, 403, "{body}");
    let err: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(err[0]["code"], 403);
    assert!(err[0]["description"]
        .as_str()
        .expect("d")
        .contains("api_key"));
    let (status, xml) = post_form(
        &app,
        "requests.xml",
        &report(
            "o311_inventada",
            "Luminaria apagada hace una semana.",
            false,
        ),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        xml.contains("<errors><error><code>403</code><description>"),
        "{xml}"
    );

    // Department staff may not issue keys.
    let dom = app.login_as("dom1", "department", Some("dom")).await;
    let r = app
        .client
        .post(app.url("/api/v1/admin/open311/keys"))
        .bearer_auth(&dom)
        .json(&json!({"name": "App"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);

    let (key_id, key) = issue_key(&app, &admin, "App Vecinos Tomé").await;
    let folio = file(
        &app,
        &key,
        "Luminaria apagada hace una semana frente al número 1200.",
        false,
    )
    .await;
    assert!(folio.starts_with("OIRS-"), "{folio}");

    // The case routes like any other and keeps the location and the contact data for staff.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/staff/cases/{folio}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    let case: Value = r.json().await.expect("json");
    assert_eq!(case["department"], "aseo_ornato");
    assert_eq!(case["type"], "reclamo");
    assert_eq!(case["channel"], "open311");
    assert_eq!(case["name"], "Rosa Quintana");
    assert_eq!(case["email"], "rosa.quintana@example.cl");
    assert_eq!(case["lat"], -36.6183);
    assert_eq!(case["long"], -72.9556);
    assert_eq!(case["public_description"], false);

    // Attributed to its key in the audit log.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/admin/audit?folio={folio}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    let audit: Value = r.json().await.expect("json");
    let filed = audit
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["action"] == "open311_registrar")
        .expect("the filing is audited");
    assert_eq!(filed["username"], "open311:App Vecinos Tomé");
    assert_eq!(filed["detail"], format!("clave {key_id}"));

    // Listed without the key; revoked, it files nothing more.
    let r = app
        .client
        .get(app.url("/api/v1/admin/open311/keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    let listed = r.text().await.expect("body");
    assert!(
        listed.contains("App Vecinos Tomé") && !listed.contains(&key),
        "{listed}"
    );
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/admin/open311/keys/{key_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let revoked: Value = r.json().await.expect("json");
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = post_form(
        &app,
        "requests.json",
        &report(&key, "Otra luminaria apagada en la misma avenida.", false),
    )
    .await;
    assert_eq!(status, 403, "a revoked key files nothing");
    let r = app
        .client
        .delete(app.url("/api/v1/admin/open311/keys/999999"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
}
on_both_backends!(filing_needs_a_live_key);

async fn listings_filter_and_never_carry_personal_data(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;
    let (_, key) = issue_key(&app, &admin, "App").await;
    let private = file(&app, &key, "Luminaria apagada; llamar a mi celular.", false).await;
    let public = file(&app, &key, "Poste inclinado a punto de caer.", true).await;
    // A pothole reported on the web form, and a non-territorial case that is never listed.
    let web = app
        .file_case(json!({
            "type": "reclamo", "topic": "calles_veredas",
            "description": "Bache profundo en la calle Serrano.",
            "name": "Tomás Riquelme", "rut": "12.345.678-5", "email": "tomas@example.cl",
            "phone": "987654321", "address": "Serrano 50", "lat": -36.62, "long": -72.95,
            "consent": true
        }))
        .await;
    let web = web["folio"].as_str().expect("folio").to_string();
    let other = app.file_case(common::pothole_report(1)).await;
    let payments = app
        .file_case(json!({
            "type": "reclamo", "topic": "pagos_online",
            "description": "El pago en línea del permiso falla.",
            "name": "Tomás Riquelme", "consent": true
        }))
        .await;
    let payments = payments["folio"].as_str().expect("folio").to_string();

    // Close the web case so the status filter has something to tell apart.
    for ev in [
        json!({"kind": "responder", "text": "Reparamos el bache el martes."}),
        json!({"kind": "cerrar"}),
    ] {
        let r = app
            .client
            .post(app.url(&format!("/api/v1/staff/cases/{web}/events")))
            .bearer_auth(&admin)
            .json(&ev)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{ev}");
    }

    let (status, list) = get_json(&app, "requests.json").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["service_request_id"].as_str())
        .collect();
    for folio in [&private, &public, &web] {
        assert!(ids.contains(&folio.as_str()), "{folio} listed: {ids:?}");
    }
    assert!(
        !ids.contains(&payments.as_str()),
        "payments are not territorial"
    );
    assert!(other["folio"].is_string());

    let find = |folio: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|r| r["service_request_id"] == folio)
            .cloned()
            .expect("listed")
    };
    let p = find(&public);
    assert_eq!(p["description"], "Poste inclinado a punto de caer.");
    assert_eq!(p["status"], "open");
    assert_eq!(p["service_code"], "alumbrado_publico");
    assert_eq!(p["service_name"], "Alumbrado público");
    assert_eq!(p["agency_responsible"], "Dirección de Aseo y Ornato");
    assert_eq!(p["address"], "Avenida Latorre 1200, Tomé");
    assert_eq!(p["lat"], -36.6183);
    assert_eq!(p["long"], -72.9556);
    assert_eq!(p["status_notes"], "Derivado a la unidad responsable");
    let requested = p["requested_datetime"].as_str().expect("requested");
    assert!(
        chrono::DateTime::parse_from_rfc3339(requested).is_ok()
            && (requested.ends_with("-03:00") || requested.ends_with("-04:00")),
        "{requested}"
    );
    assert!(p["expected_datetime"]
        .as_str()
        .expect("expected")
        .contains("T23:59:59"));
    assert_eq!(find(&private)["description"], Value::Null, "not published");
    let w = find(&web);
    assert_eq!(w["status"], "closed");
    assert_eq!(w["description"], Value::Null);

    // No personal data anywhere in the raw answers, in either format.
    let mut raw = Vec::new();
    for path in [
        "requests.json".to_string(),
        "requests.xml".to_string(),
        format!("requests/{private}.json"),
        format!("requests/{web}.xml"),
    ] {
        let (status, _, body) = get_raw(&app, &path).await;
        assert_eq!(status, 200, "{path}");
        raw.push(body);
    }
    for body in &raw {
        for secret in [
            "Rosa",
            "Quintana",
            "rosa.quintana",
            "8765",
            "Tomás",
            "Riquelme",
            "12345678",
            "12.345.678",
            "tomas@",
            "987654321",
            "celular",
            "Bache profundo",
            "Reparamos",
        ] {
            assert!(!body.contains(secret), "{secret:?} leaked in {body}");
        }
    }
    assert!(raw[1].contains("<service_requests><request><service_request_id>"));
    assert!(raw[1].contains("<description>Poste inclinado a punto de caer.</description>"));

    // Filters.
    let ids_of = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["service_request_id"].as_str().map(String::from))
            .collect()
    };
    let (_, v) = get_json(&app, "requests.json?service_code=calles_veredas").await;
    let only_streets = ids_of(&v);
    assert!(only_streets.contains(&web) && !only_streets.contains(&public));
    let (_, v) = get_json(&app, "requests.json?status=closed").await;
    assert_eq!(ids_of(&v), vec![web.clone()]);
    let (_, v) = get_json(
        &app,
        "requests.json?status=open&service_code=alumbrado_publico",
    )
    .await;
    let open = ids_of(&v);
    assert!(open.contains(&public) && open.contains(&private) && !open.contains(&web));
    let (_, v) = get_json(
        &app,
        "requests.json?start_date=2020-01-01T00:00:00Z&end_date=2020-02-01T00:00:00Z",
    )
    .await;
    assert_eq!(v, json!([]), "nothing filed in 2020");
    let (_, v) = get_json(
        &app,
        &format!("requests.json?service_request_id={public},{web}"),
    )
    .await;
    let mut both = ids_of(&v);
    both.sort();
    let mut want = vec![public.clone(), web.clone()];
    want.sort();
    assert_eq!(both, want);

    // One request: a list of one; a non-territorial or unknown folio is not found.
    let (status, one) = get_json(&app, &format!("requests/{public}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    assert_eq!(one[0]["service_request_id"], public.as_str());
    for missing in [payments.as_str(), "OIRS-2020-000999", "no-es-un-folio"] {
        let (status, err) = get_json(&app, &format!("requests/{missing}.json")).await;
        assert_eq!(status, 404, "{missing}");
        assert_eq!(err[0]["code"], 404);
    }
}
on_both_backends!(listings_filter_and_never_carry_personal_data);

async fn bad_input_gets_georeport_errors(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;
    let (_, key) = issue_key(&app, &admin, "App").await;
    let base = report(&key, "Árbol caído bloqueando la vereda.", false);
    let with = |changes: &[(&'static str, &'static str)], drop: &[&str]| {
        let mut f: Vec<(&str, &str)> = base
            .iter()
            .filter(|(k, _)| !drop.contains(k) && !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        f.extend_from_slice(changes);
        f
    };
    for (form, word) in [
        (with(&[("lat", "40.41"), ("long", "-3.70")], &[]), "lat"),
        (with(&[("lat", "abc")], &[]), "lat"),
        (with(&[], &["long"]), "long"),
        (with(&[], &["service_code"]), "service_code"),
        (
            with(&[("service_code", "pagos_online")], &[]),
            "service_code",
        ),
        (with(&[], &["lat", "long", "address_string"]), "lat y long"),
        (with(&[("email", "no-es-correo")], &[]), "email"),
        (with(&[("description", "corto")], &[]), "description"),
    ] {
        let (status, body) = post_form(&app, "requests.json", &form).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        let err: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(err[0]["code"], 400);
        let d = err[0]["description"].as_str().expect("description");
        assert!(d.contains(word), "{word}: {d}");
    }
    let (status, xml) = post_form(&app, "requests.xml", &with(&[("lat", "abc")], &[])).await;
    assert_eq!(status, 400);
    assert!(
        xml.contains("<errors><error><code>400</code><description>lat: "),
        "{xml}"
    );

    let (status, err) = get_json(&app, "requests.json?status=pending").await;
    assert_eq!(status, 400);
    assert!(err[0]["description"]
        .as_str()
        .expect("d")
        .contains("status"));
    let (status, _, xml) = get_raw(&app, "requests.xml?start_date=ayer").await;
    assert_eq!(status, 400);
    assert!(xml.contains("<code>400</code>"), "{xml}");
    let (status, err) = get_json(&app, "services.html").await;
    assert_eq!(status, 404);
    assert_eq!(err[0]["code"], 404);
    let (status, body) = post_form(&app, "services.json", &[]).await;
    assert_eq!(status, 405, "{body}");
    // The body limit applies (64 KiB by default).
    let big = "x".repeat(70 * 1024);
    let (status, _) = post_form(
        &app,
        "requests.json",
        &with(&[("description", "a")], &[])
            .into_iter()
            .chain([("media_url", big.as_str())])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(status, 413);
}
on_both_backends!(bad_input_gets_georeport_errors);

async fn api_filings_carry_a_checked_location(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut body = common::pothole_report(7);
    body["lat"] = json!(-36.62);
    let r = app.post_json("/api/v1/oirs/cases", body.clone()).await;
    assert_eq!(r.status(), 422);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["field"], "long");
    body["long"] = json!(2.35);
    body["lat"] = json!(48.85);
    let r = app.post_json("/api/v1/oirs/cases", body.clone()).await;
    assert_eq!(r.status(), 422, "Paris is not in Chile");
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["field"], "lat");
    assert!(err["error"]["message"]
        .as_str()
        .expect("m")
        .contains("fuera"));
    body["lat"] = json!(-36.62);
    body["long"] = json!(-72.95);
    body["public_description"] = json!(true);
    let filed = app.file_case(body).await;
    let folio = filed["folio"].as_str().expect("folio");
    let (_, one) = get_json(&app, &format!("requests/{folio}.json")).await;
    assert_eq!(one[0]["lat"], -36.62);
    assert_eq!(
        one[0]["description"],
        "Bache profundo frente al número 7 de la calle Serrano."
    );
}
on_both_backends!(api_filings_carry_a_checked_location);
