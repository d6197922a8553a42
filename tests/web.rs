//! Resident pages without JavaScript: the OIRS form with errors beside the fields, filing,
//! tracking, and the register of processing (/privacidad, also in the console).

mod common;

use common::{spawn_app, spawn_app_with, Backend};

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn oirs_form_files_and_tracking_page_shows_the_case() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app.get("/oirs?tipo=reclamo&tema=alumbrado_publico").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("script-src 'self'"));
    let html = r.text().await.expect("html");
    assert!(
        html.contains(r#"<option value="reclamo" selected>"#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="alumbrado_publico" selected>"#));
    assert!(
        html.contains(r#"<label for="descripcion">"#),
        "labelled fields"
    );
    // The form posts to the server (works without JavaScript); the only scripts are the
    // chat widget and the location button's, both external and deferred.
    assert!(html.contains(r#"<form method="post" action="/oirs""#));
    assert_eq!(html.matches("<script").count(), 2);
    assert!(html.contains(r#"<script src="/widget.js" defer"#));
    assert!(html.contains(r#"<script src="/oirs.js" defer>"#));
    let token = html
        .split(r#"name="token" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("one-time token")
        .to_string();

    // Without a topic in the link, nothing is chosen for the resident: "Elija un tema". Only
    // topics a case can be about are listed, in Spanish alphabetical order.
    let html = app.get("/oirs?tipo=reclamo").await.text().await.expect("t");
    assert!(html.contains(r#"<option value="">Elija un tema</option>"#));
    let topics = html.split(r#"<select id="tema""#).nth(1).expect("topics");
    assert!(!topics.contains(" selected>"), "no topic preselected");
    assert!(
        !topics.contains(r#"value="horario_atencion""#),
        "chat-only topic listed"
    );
    assert!(!topics.contains(r#"value="seguimiento""#));
    let at = |label: &str| topics.find(label).expect(label);
    assert!(at("Áreas verdes") < at("Becas"), "Spanish collation");

    // An empty form reports every problem at once, each beside its field and in a summary at
    // the top that links to it.
    let r = app
        .client
        .post(app.url("/oirs"))
        .form(&form(&[("token", &token)]))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("html");
    for field in ["tipo", "tema", "descripcion", "nombre", "consentimiento"] {
        assert!(
            html.contains(&format!(r#"id="{field}-error""#)),
            "{field}: {html}"
        );
        assert!(
            html.contains(&format!(r##"<a href="#{field}">"##)),
            "{field} in summary"
        );
    }
    assert!(html.contains("Revise estos 5 campos"), "{html}");
    assert!(html.contains("Elija el tema de su caso."), "sentence case");

    // A bad RUT comes back beside its field, with what was typed kept.
    let mut fields = form(&[
        ("token", &token),
        ("tipo", "reclamo"),
        ("tema", "alumbrado_publico"),
        (
            "descripcion",
            "La luminaria del pasaje está apagada hace días.",
        ),
        ("nombre", "Rosa Muñoz"),
        ("correo", "rosa@example.cl"),
        ("rut", "12.345.678-9"),
        ("consentimiento", "si"),
    ]);
    let r = app
        .client
        .post(app.url("/oirs"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("html");
    assert!(
        html.contains(r#"id="rut-error""#) && html.contains("dígito verificador"),
        "{html}"
    );
    assert!(html.contains(r#"rut-hint rut-error""#));
    assert!(html.contains("Rosa Muñoz"), "typed values are kept");

    // A description without a topic gets a suggestion to confirm; nothing is filed yet.
    let mut no_topic = fields.clone();
    no_topic[2].1 = String::new();
    no_topic[6].1 = "12.345.678-5".into();
    let html = app
        .client
        .post(app.url("/oirs"))
        .form(&no_topic)
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("t");
    assert!(
        html.contains("sugerimos el tema «Alumbrado público»"),
        "{html}"
    );
    assert!(html.contains(r#"<option value="alumbrado_publico" selected>"#));

    // Filed: Post/Redirect/Get to a receipt that says which unit received the case.
    fields[6].1 = "12.345.678-5".into();
    let r = app
        .client
        .post(app.url("/oirs"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(r.url().path().ends_with("/oirs/recibido"), "{}", r.url());
    assert_eq!(r.headers()["cache-control"], "no-store");
    let receipt = r.url().clone();
    let html = r.text().await.expect("html");
    assert!(
        html.contains("Dirección de Aseo y Ornato"),
        "the unit is named: {html}"
    );
    let folio = html
        .split("OIRS-")
        .nth(1)
        .map(|s| format!("OIRS-{}", &s[..11]))
        .expect("folio shown");
    let code_start = html
        .find("Código de seguimiento: <strong class=\"code\">")
        .expect("code")
        + 45;
    let code = html[code_start..code_start + 12].to_string();

    // Reloading the receipt, or posting the same form again (back button, double click),
    // files nothing more.
    let receipt = format!("{}?{}", receipt.path(), receipt.query().unwrap_or(""));
    let again = app.get(&receipt).await.text().await.expect("t");
    assert!(again.contains(&folio));
    let r = app
        .client
        .post(app.url("/oirs"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert!(r.text().await.expect("t").contains(&folio), "same case");
    let cases: (i64,) = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(pool).await.expect("count")
    });
    assert_eq!(cases.0, 1);

    // Tracking is a POST: the code stays out of the address. The page names the unit and
    // dates every step.
    let track = |secret: (&'static str, String)| {
        app.client
            .post(app.url("/seguimiento"))
            .form(&[
                ("folio".to_string(), folio.clone()),
                (secret.0.to_string(), secret.1),
            ])
            .send()
    };
    let page = track(("code", code.clone()))
        .await
        .expect("post")
        .text()
        .await
        .expect("t");
    assert!(
        page.contains(&folio) && page.contains("Derivado a la unidad responsable"),
        "{page}"
    );
    assert!(
        page.contains("Unidad responsable</dt><dd>Dirección de Aseo y Ornato"),
        "{page}"
    );
    assert!(!page.contains("aseo_ornato"), "no raw ids: {page}");
    assert!(page.contains(r#"<span class="when">"#), "dated history");
    let page = track(("rut", "12345678-5".into()))
        .await
        .expect("post")
        .text()
        .await
        .expect("t");
    assert!(page.contains("Derivado a la unidad responsable"));
    let r = track(("code", "XXXXXXXXXXXX".into())).await.expect("post");
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("t").contains("No encontramos"));
    // A code in the address is not looked up.
    let page = app
        .get(&format!("/seguimiento?folio={folio}&code={code}"))
        .await
        .text()
        .await
        .expect("t");
    assert!(!page.contains("Historial"));

    let css = app.get("/static/site.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn widget_assets_are_compressed_cached_small_and_carry_the_profile_contacts() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut gz_total = 0;
    for path in ["/widget.js", "/widget.css"] {
        let r = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-encoding"], "gzip", "{path}");
        assert!(h["cache-control"]
            .to_str()
            .expect("cc")
            .contains("max-age="));
        let etag = h["etag"].to_str().expect("etag").to_string();
        gz_total += r.bytes().await.expect("body").len();
        // Revalidation: same content, 304 without a body.
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("get");
        assert_eq!(again.status(), 304, "{path}");
    }
    assert!(
        gz_total <= 30 * 1024,
        "widget is {gz_total} bytes gzipped, over 30 KB"
    );

    // Plain (uncompressed) for clients that do not ask for gzip; the profile's contact data is
    // filled in so the widget can show it while the service is unreachable.
    let r = app.get("/widget.js").await;
    assert!(r.headers().get("content-encoding").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/javascript"));
    let js = r.text().await.expect("js");
    assert!(
        js.contains(r#"const PROFILE = {"correo":"oirs@tome.cl","municipio":"Municipalidad de Tomé","telefono":"+56 41 240 6400","trato":"usted"}"#),
        "profile not injected"
    );
}

#[tokio::test]
async fn the_demo_home_page_embeds_the_widget_and_links_the_resident_pages() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains(r#"<script src="/widget.js" defer"#));
    assert!(html.contains(r#"href="/oirs?tipo=reclamo""#));
    assert!(html.contains(r#"href="/seguimiento""#));
    assert!(html.contains("+56 41 240 6400"), "contact from the profile");
}

/// The rights link of the register: the OIRS form on a personal-data request.
const RIGHTS_LINK: &str =
    r#"<a href="/oirs?tipo=datos_personales&amp;tema=datos_personales">Ejercer mis derechos</a>"#;

#[tokio::test]
async fn privacy_register_states_the_configured_controller_contact_and_retention() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.retention.case_personal_data_days = 400;
        c.analytics.text_retention_days = 90;
        c.privacy.controller = "Ilustre Municipalidad de Prueba".into();
        c.privacy.contact_email = "datos@prueba.cl".into();
    })
    .await
    else {
        return;
    };
    let r = app.get("/privacidad").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    let html = r.text().await.expect("html");
    assert!(
        html.contains("<h1>Privacidad y datos personales</h1>"),
        "{html}"
    );
    assert!(html.contains("<dd>Ilustre Municipalidad de Prueba</dd>"));
    assert!(html.contains(r#"<a href="mailto:datos@prueba.cl">datos@prueba.cl</a>"#));
    assert!(
        html.contains("Mientras el caso está abierto y 400 días después de cerrado."),
        "case retention"
    );
    assert!(
        html.contains("El texto de los mensajes, 90 días."),
        "chat retention"
    );
    assert!(html.contains(RIGHTS_LINK), "rights link");
    for right in [
        "Acceso.",
        "Rectificación.",
        "Supresión.",
        "Oposición.",
        "Portabilidad.",
        "Bloqueo.",
    ] {
        assert!(
            html.contains(&format!("<strong>{right}</strong>")),
            "{right}"
        );
    }
    assert!(html.contains("30 días corridos"));
    assert!(html.contains("Agencia de Protección de Datos Personales"));
    // Every resident page links the register from its footer.
    for path in ["/", "/oirs", "/seguimiento", "/privacidad"] {
        let html = app.get(path).await.text().await.expect("html");
        assert!(
            html.contains(r#"<a href="/privacidad">Privacidad y datos personales</a>"#),
            "{path}"
        );
    }
    // The rights link opens the form on a personal-data request.
    let html = app
        .get("/oirs?tipo=datos_personales&tema=datos_personales")
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains(r#"<option value="datos_personales" selected>"#));
    assert_eq!(html.matches(" selected>").count(), 2, "type and topic");
}

#[tokio::test]
async fn privacy_register_falls_back_to_the_municipality_profile_and_default_retention() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let html = app.get("/privacidad").await.text().await.expect("html");
    assert!(html.contains("<dd>Municipalidad de Tomé</dd>"), "{html}");
    assert!(html.contains(r#"<a href="mailto:oirs@tome.cl">oirs@tome.cl</a>"#));
    assert!(html.contains("1.825 días (5 años) después de cerrado"));
    assert!(html.contains("El texto de los mensajes, 180 días."));
    assert!(html.contains(RIGHTS_LINK));
}

#[tokio::test]
async fn privacy_register_in_the_console_is_for_admins_with_the_live_settings() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.retention.case_personal_data_days = 730;
    })
    .await
    else {
        return;
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |cookie: Option<String>| {
        let mut req = client.get(app.url("/staff/admin/privacidad"));
        if let Some(token) = cookie {
            req = req.header("cookie", format!("ventanilla_session={token}"));
        }
        req.send()
    };

    // Anonymous: to the login page, coming back here afterwards.
    let r = get(None).await.expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/staff/ingreso?next=/staff/admin/privacidad"
    );

    // Staff who are not administrators: 403.
    let coordinator = app.login_as("coord1", "coordinator", None).await;
    let r = get(Some(coordinator)).await.expect("get");
    assert_eq!(r.status(), 403);
    let html = r.text().await.expect("html");
    assert!(!html.contains("Ejercer mis derechos"));

    let admin = app.login_as("admin1", "admin", None).await;
    let r = get(Some(admin)).await.expect("get");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("<h1>Registro de actividades de tratamiento</h1>"));
    assert!(
        html.contains(r#"<a href="/staff/admin/privacidad">Privacidad</a>"#),
        "in the admin navigation"
    );
    // The live settings, with where each comes from.
    assert!(html.contains("<td>730 días (2 años)"), "{html}");
    assert!(html.contains("<code>VENTANILLA_RETENTION_CASE_PERSONAL_DATA_DAYS</code>"));
    assert!(html.contains("<code>privacy.controller</code>"));
    assert!(html.contains("(tomado del perfil del municipio)"));
    // The same register residents read.
    assert!(html.contains("Mientras el caso está abierto y 730 días (2 años) después de cerrado."));
    assert!(html.contains("<dd>Municipalidad de Tomé</dd>"));
    assert!(html.contains(RIGHTS_LINK));
}
