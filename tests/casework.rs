//! Case work on both backends: attachments (judged by content, cleaned of metadata, limited,
//! scoped and audited), assignment within a department, and reply templates.

mod common;

use common::{spawn_app, Backend, TestApp};
use serde_json::{json, Value};

const BOUNDARY: &str = "----ventanilla-test-boundary";

fn multipart(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    name: &str,
    data: &[u8],
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(name, data));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Files a reclamo about street lighting; returns (folio, tracking code, department).
async fn file_case(app: &TestApp) -> (String, String, String) {
    let r = app
        .post_json(
            "/api/v1/oirs/cases",
            json!({
                "type": "reclamo",
                "topic": "alumbrado_publico",
                "description": "La luminaria del pasaje Los Aromos lleva dos semanas apagada.",
                "name": "Juana Pérez",
                "email": "juana@example.cl",
                "consent": true
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    (
        v["folio"].as_str().expect("folio").to_string(),
        v["tracking_code"].as_str().expect("code").to_string(),
        v["department"].as_str().expect("department").to_string(),
    )
}

fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([120, 120, 40]));
    let mut plain = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new(&mut plain))
        .expect("encode");
    let exif = b"Exif\0\0MM\0*GPSLatitude S 33 26 56 GPSLongitude W 70 39 SECRET-GPS-MARK";
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(exif);
    out.extend_from_slice(&plain[2..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn attachments_are_judged_by_content_cleaned_and_limited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (folio, code, department) = file_case(&app).await;
    let path = format!("/api/v1/oirs/cases/{folio}/attachments?code={code}");

    // A photo with a GPS position in its EXIF: accepted, stored without it.
    let photo = jpeg_with_gps();
    assert!(contains(&photo, b"SECRET-GPS-MARK"));
    let (s, v) = upload(&app, &path, None, "bache.jpg", &photo).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["content_type"], "image/jpeg");
    assert_eq!(v["name"], "bache.jpg");
    let photo_id = v["id"].as_i64().expect("id");
    assert!(v["bytes"].as_i64().expect("bytes") < photo.len() as i64);

    // A PDF renamed .jpg is a PDF; a Windows program renamed .jpg is refused.
    let (s, v) = upload(
        &app,
        &path,
        None,
        "foto.jpg",
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["content_type"], "application/pdf");
    assert_eq!(v["name"], "foto.pdf");
    let (s, v) = upload(
        &app,
        &path,
        None,
        "foto.jpg",
        b"MZ\x90\x00\x03\x00\x00\x00 program",
    )
    .await;
    assert_eq!(s, 415, "{v}");
    assert_eq!(v["error"]["field"], "file");

    // Over 5 MB: 413, whether the envelope or the file says so.
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(5 * 1024 * 1024 + 1, b' ');
    let (s, _) = upload(&app, &path, None, "grande.pdf", &big).await;
    assert_eq!(s, 413);

    // Not multipart at all: 415. No file field: 422.
    let r = app
        .client
        .post(app.url(&path))
        .json(&json!({"file": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 415);

    // A wrong code answers like an unknown folio.
    let wrong = format!("/api/v1/oirs/cases/{folio}/attachments?code=NOPE-NOPE");
    let (s, _) = upload(&app, &wrong, None, "bache.jpg", &photo).await;
    assert_eq!(s, 404);

    // Up to five: three more, then the sixth is refused with 409 and nothing is stored.
    for i in 0..3 {
        let (s, v) = upload(
            &app,
            &path,
            None,
            &format!("doc{i}.pdf"),
            b"%PDF-1.4\n%%EOF\n",
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = upload(&app, &path, None, "sexto.pdf", b"%PDF-1.4\n%%EOF\n").await;
    assert_eq!(s, 409, "{v}");

    // The tracking page lists the five, and the resident can download them with the code.
    let t: Value = app
        .get(&format!("/api/v1/oirs/cases/{folio}?code={code}"))
        .await
        .json()
        .await
        .expect("json");
    let files = t["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 5);
    assert_eq!(files[0]["source"], "vecino");
    assert_eq!(files[0]["has_thumbnail"], true);
    let r = app
        .get(&format!(
            "/api/v1/oirs/cases/{folio}/attachments/{photo_id}?code={code}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let r = app
        .get(&format!(
            "/api/v1/oirs/cases/{folio}/attachments/{photo_id}"
        ))
        .await;
    assert_eq!(r.status(), 404);

    // What is stored has no trace of the GPS marker: read straight from the database too.
    let coord = app.login_as("jefa", "coordinator", None).await;
    let r = get_as(
        &app,
        &coord,
        &format!("/api/v1/staff/cases/{folio}/attachments/{photo_id}"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let stored = r.bytes().await.expect("bytes");
    assert!(!contains(&stored, b"SECRET-GPS-MARK"));
    image::load_from_memory(&stored).expect("the photo still decodes");
    let rows: Vec<(Vec<u8>,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT data FROM attachments").fetch_all(pool).await.expect("rows")
    });
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|(d,)| !contains(d, b"SECRET-GPS-MARK")));
    let r = get_as(
        &app,
        &coord,
        &format!("/api/v1/staff/cases/{folio}/attachments/{photo_id}?thumbnail=true"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let thumb = image::load_from_memory(&r.bytes().await.expect("bytes")).expect("thumbnail");
    assert!(thumb.width() <= 240 && thumb.height() <= 240);

    // Staff attach a file to their answer; the resident sees it.
    let (s, v) = upload(
        &app,
        &format!("/api/v1/staff/cases/{folio}/attachments"),
        Some(&coord),
        "respuesta.pdf",
        b"%PDF-1.4\n%%EOF\n",
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let t: Value = app
        .get(&format!("/api/v1/oirs/cases/{folio}?code={code}"))
        .await
        .json()
        .await
        .expect("json");
    let files = t["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 6);
    assert_eq!(files[5]["source"], "staff");
    assert_eq!(files[5]["name"], "respuesta.pdf");
    let _ = department;
}
on_both_backends!(attachments_are_judged_by_content_cleaned_and_limited);

async fn staff_reads_of_attachments_are_scoped_and_audited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (folio, code, department) = file_case(&app).await;
    let path = format!("/api/v1/oirs/cases/{folio}/attachments?code={code}");
    let (s, v) = upload(&app, &path, None, "bache.jpg", &jpeg_with_gps()).await;
    assert_eq!(s, 201);
    let id = v["id"].as_i64().expect("id");
    let other = if department == "dom" { "daf" } else { "dom" };
    let outsider = app.login_as("otra", "department", Some(other)).await;
    let file = format!("/api/v1/staff/cases/{folio}/attachments/{id}");
    assert_eq!(get_as(&app, &outsider, &file).await.status(), 403);
    let (s, _) = upload(
        &app,
        &format!("/api/v1/staff/cases/{folio}/attachments"),
        Some(&outsider),
        "x.pdf",
        b"%PDF-1.4\n",
    )
    .await;
    assert_eq!(s, 403);
    let analyst = app.login_as("ana", "analyst", None).await;
    assert_eq!(get_as(&app, &analyst, &file).await.status(), 403);

    let member = app.login_as("pedro", "department", Some(&department)).await;
    assert_eq!(get_as(&app, &member, &file).await.status(), 200);
    // Another case's attachment id under this folio is not found.
    assert_eq!(
        get_as(
            &app,
            &member,
            &format!("/api/v1/staff/cases/{folio}/attachments/{}", id + 100)
        )
        .await
        .status(),
        404
    );
    // The detail lists the files; the read was audited with who and which file.
    let d: Value = get_as(&app, &member, &format!("/api/v1/staff/cases/{folio}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(d["attachments"][0]["id"], id);
    let admin = app.login_as("admin1", "admin", None).await;
    let audit: Value = get_as(&app, &admin, &format!("/api/v1/admin/audit?folio={folio}"))
        .await
        .json()
        .await
        .expect("json");
    let reads: Vec<&Value> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "ver_adjunto")
        .collect();
    assert_eq!(reads.len(), 1, "{audit}");
    assert_eq!(reads[0]["username"], "pedro");
}
on_both_backends!(staff_reads_of_attachments_are_scoped_and_audited);

async fn cases_are_assigned_within_their_department(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (folio, code, department) = file_case(&app).await;
    let other = if department == "dom" { "daf" } else { "dom" };
    let coord = app.login_as("jefa", "coordinator", None).await;
    let pedro = app.login_as("pedro", "department", Some(&department)).await;
    let outsider = app.login_as("otra", "department", Some(other)).await;
    let events = format!("/api/v1/staff/cases/{folio}/events");

    // Only active staff of the case's department can be assignees.
    for who in ["otra", "nadie", ""] {
        let (s, v) = post_as(
            &app,
            &coord,
            &events,
            json!({"kind": "asignar", "assignee": who}),
        )
        .await;
        assert_eq!(s, 422, "{who}: {v}");
        assert_eq!(v["error"]["field"], "assignee");
    }
    // Another department's staff cannot assign.
    let (s, _) = post_as(
        &app,
        &outsider,
        &events,
        json!({"kind": "asignar", "assignee": "pedro"}),
    )
    .await;
    assert_eq!(s, 403);
    // A colleague of the department can; the coordinator can.
    let (s, v) = post_as(
        &app,
        &pedro,
        &events,
        json!({"kind": "asignar", "assignee": "pedro"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["assignee"], "pedro");
    let (s, _) = post_as(
        &app,
        &coord,
        &events,
        json!({"kind": "asignar", "assignee": "pedro"}),
    )
    .await;
    assert_eq!(s, 409, "already theirs");

    // Filters: mine, by username.
    let list = |token: String, q: &'static str| {
        let app = &app;
        async move {
            let v: Value = get_as(app, &token, &format!("/api/v1/staff/cases?{q}"))
                .await
                .json()
                .await
                .expect("json");
            v.as_array()
                .expect("list")
                .iter()
                .map(|c| c["folio"].as_str().expect("folio").to_string())
                .collect::<Vec<_>>()
        }
    };
    let (other_folio, _, _) = file_case(&app).await;
    let mine = list(pedro.clone(), "assignee=me").await;
    assert_eq!(mine, vec![folio.clone()]);
    assert_eq!(
        list(coord.clone(), "assignee=pedro").await,
        vec![folio.clone()]
    );
    assert!(list(coord.clone(), "assignee=me").await.is_empty());
    assert!(list(coord.clone(), "").await.contains(&other_folio));

    // The assignment is audited, internal (not in the resident's history).
    let admin = app.login_as("admin1", "admin", None).await;
    let audit: Value = get_as(&app, &admin, &format!("/api/v1/admin/audit?folio={folio}"))
        .await
        .json()
        .await
        .expect("json");
    assert!(audit
        .as_array()
        .expect("entries")
        .iter()
        .any(|e| e["action"] == "asignar" && e["username"] == "pedro"));
    let t: Value = app
        .get(&format!("/api/v1/oirs/cases/{folio}?code={code}"))
        .await
        .json()
        .await
        .expect("json");
    assert!(!t.to_string().contains("pedro"), "{t}");

    // Re-routing clears the assignee.
    let (s, v) = post_as(
        &app,
        &coord,
        &events,
        json!({"kind": "derivar", "department": other, "text": "Corresponde a otra unidad"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["assignee"], Value::Null);
    assert!(list(pedro.clone(), "assignee=me").await.is_empty());
}
on_both_backends!(cases_are_assigned_within_their_department);

async fn reply_templates_are_managed_by_administrators(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_as("admin1", "admin", None).await;
    let coord = app.login_as("jefa", "coordinator", None).await;
    let path = "/api/v1/admin/templates";
    let body = json!({"title": "Luminaria reparada",
        "body": "Estimada {{nombre}}: la luminaria de su caso {{folio}} del {{ fecha_ingreso }} fue reparada por {{unidad}}."});
    let (s, _) = post_as(&app, &coord, path, body.clone()).await;
    assert_eq!(s, 403);
    let (s, global) = post_as(&app, &admin, path, body).await;
    assert_eq!(s, 201, "{global}");
    assert_eq!(global["department"], Value::Null);
    let (s, own) = post_as(
        &app,
        &admin,
        path,
        json!({"department": "dom", "title": "Permiso de edificación", "body": "Su caso {{folio}} está en revisión."}),
    )
    .await;
    assert_eq!(s, 201, "{own}");

    // Bad input: an unknown placeholder named in the message, an unknown department, blanks.
    let (s, v) = post_as(
        &app,
        &admin,
        path,
        json!({"title": "x", "body": "Hola {{comuna}}"}),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(v["error"]["field"], "body");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("{{comuna}}"),
        "{v}"
    );
    let (s, v) = post_as(
        &app,
        &admin,
        path,
        json!({"department": "nada", "title": "x", "body": "y"}),
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("department")));
    let (s, v) = post_as(&app, &admin, path, json!({"title": "  ", "body": "y"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("title")));

    // Update, list, delete.
    let id = own["id"].as_i64().expect("id");
    let r = app
        .client
        .put(app.url(&format!("{path}/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"department": "dom", "title": "Permiso en revisión", "body": "Su caso {{folio}} sigue en revisión."}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let all: Value = get_as(&app, &admin, path).await.json().await.expect("json");
    let titles: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, vec!["Luminaria reparada", "Permiso en revisión"]);
    let del = |id: i64| {
        app.client
            .delete(app.url(&format!("{path}/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(del(id).await.expect("delete").status(), 204);
    assert_eq!(del(id).await.expect("delete").status(), 404);

    // A department sees its own and the global ones, resolved for the case.
    let dom_only = ventanilla::staff::templates::list(&app.state.store, Some("daf"))
        .await
        .expect("list");
    assert_eq!(dom_only.len(), 1);
}
on_both_backends!(reply_templates_are_managed_by_administrators);

fn form_multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (field, name, data) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, String) {
    let r = app
        .client
        .post(app.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.expect("text"))
}

async fn residents_attach_files_on_the_form_and_the_tracking_page(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let fields = [
        ("token", "6c1d4b43-1f55-4c4a-9d8e-3a1b2c3d4e5f"),
        ("tipo", "reclamo"),
        ("tema", "alumbrado_publico"),
        (
            "descripcion",
            "La luminaria del pasaje Los Aromos lleva dos semanas apagada.",
        ),
        ("nombre", "Juana Pérez"),
        ("consentimiento", "si"),
    ];
    // A program disguised as a photo: the form comes back with the error beside the field,
    // and nothing is filed.
    let exe: &[u8] = b"MZ\x90\x00 program";
    let (s, html) = post_form(
        &app,
        "/oirs",
        form_multipart(&fields, &[("archivos", "foto.jpg", exe)]),
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains(r#"id="archivos-error""#), "{html}");
    assert!(html.contains("«foto.jpg»: Solo se aceptan"), "{html}");
    let none: Vec<(i64,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT id FROM cases").fetch_all(pool).await.expect("rows")
    });
    assert!(none.is_empty());

    // With a photo: filed, the photo stored without its GPS marker.
    let photo = jpeg_with_gps();
    let (s, html) = post_form(
        &app,
        "/oirs",
        form_multipart(&fields, &[("archivos", "bache.jpg", &photo)]),
    )
    .await;
    assert_eq!(s, 200, "{html}");
    let folio = html
        .split(r#"name="folio" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("folio")
        .to_string();
    let code = html
        .split(r#"name="code" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("code")
        .to_string();
    // The same form again (a double click) files and attaches nothing more.
    let (s, _) = post_form(
        &app,
        "/oirs",
        form_multipart(&fields, &[("archivos", "bache.jpg", &photo)]),
    )
    .await;
    assert_eq!(s, 200);
    let rows: Vec<(String, Vec<u8>)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT name, data FROM attachments").fetch_all(pool).await.expect("rows")
    });
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "bache.jpg");
    assert!(!contains(&rows[0].1, b"SECRET-GPS-MARK"));

    // The tracking page lists it; a PDF added there shows up too; downloading needs the code.
    let track = [("folio", folio.as_str()), ("code", code.as_str())];
    let (s, html) = post_form(
        &app,
        "/seguimiento/adjuntar",
        form_multipart(
            &track,
            &[("archivo", "certificado.pdf", b"%PDF-1.4\n%%EOF\n")],
        ),
    )
    .await;
    assert_eq!(s, 200, "{html}");
    assert!(
        html.contains("bache.jpg") && html.contains("certificado.pdf"),
        "{html}"
    );
    assert!(html.contains("Adjuntamos «certificado.pdf» a su caso."));
    let id = rows_id(&app).await;
    let r = app
        .client
        .post(app.url("/seguimiento/adjunto"))
        .form(&[
            ("folio", folio.as_str()),
            ("code", code.as_str()),
            ("id", &id.to_string()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let r = app
        .client
        .post(app.url("/seguimiento/adjunto"))
        .form(&[
            ("folio", folio.as_str()),
            ("code", "MAL-CODIGO"),
            ("id", &id.to_string()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
}
on_both_backends!(residents_attach_files_on_the_form_and_the_tracking_page);

async fn rows_id(app: &TestApp) -> i64 {
    let rows: Vec<(i64,)> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT id FROM attachments ORDER BY id").fetch_all(pool).await.expect("rows")
    });
    rows[0].0
}
