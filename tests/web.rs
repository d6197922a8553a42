//! Resident pages without JavaScript: the OIRS form with errors beside the fields, filing,
//! and tracking.

mod common;

use common::{spawn_app, Backend};

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
    assert!(!html.contains("<script"), "works without JavaScript");

    // A bad RUT comes back beside its field, with what was typed kept.
    let mut fields = form(&[
        ("tipo", "reclamo"),
        ("tema", "alumbrado_publico"),
        (
            "descripcion",
            "La luminaria del pasaje está apagada hace días.",
        ),
        ("nombre", "Rosa Muñoz"),
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
    assert!(html.contains(r#"aria-describedby="rut-error""#));
    assert!(html.contains("Rosa Muñoz"), "typed values are kept");

    // Missing consent is named too.
    fields[4].1 = "12.345.678-5".into();
    fields.pop();
    let html = app
        .client
        .post(app.url("/oirs"))
        .form(&fields)
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("t");
    assert!(html.contains(r#"id="consentimiento-error""#));

    fields.push(("consentimiento".into(), "si".into()));
    let r = app
        .client
        .post(app.url("/oirs"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    let folio = html
        .split("OIRS-")
        .nth(1)
        .map(|s| format!("OIRS-{}", &s[..11]))
        .expect("folio shown");
    let code_start = html
        .find("Código de seguimiento: <strong class=\"code\">")
        .expect("code")
        + 45;
    let code = &html[code_start..code_start + 12];

    let page = app
        .get(&format!("/seguimiento?folio={folio}&code={code}"))
        .await
        .text()
        .await
        .expect("t");
    assert!(
        page.contains(&folio) && page.contains("Derivado a la unidad responsable"),
        "{page}"
    );
    let page = app
        .get(&format!("/seguimiento?folio={folio}&rut=12345678-5"))
        .await
        .text()
        .await
        .expect("t");
    assert!(page.contains("Derivado a la unidad responsable"));
    let r = app
        .get(&format!("/seguimiento?folio={folio}&code=XXXXXXXXXXXX"))
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("t").contains("No encontramos"));

    let css = app.get("/static/site.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}
