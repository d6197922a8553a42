//! Resident pages served by the service, working without JavaScript: a demo municipal home
//! page (/) with the chat widget embedded, the OIRS form (/oirs) with errors beside their
//! fields, and case tracking (/seguimiento). Also serves the widget's script and style sheet.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use minijinja::{context, Environment};
use serde::Deserialize;

use crate::app::AppState;
use crate::http::{ApiError, PublicLimit};
use crate::oirs::domain::Channel;
use crate::oirs::routes::{file_and_answer, lookup, validate, CaseIn, TrackQuery};
use crate::oirs::service;

const PAGE: &str = include_str!("../../templates/page.html");
const SITE_CSS: &str = include_str!("../../widget/site.css");
const WIDGET_JS: &str = include_str!("../../widget/widget.js");
const WIDGET_CSS: &str = include_str!("../../widget/widget.css");
/// Where the served widget carries the municipality's contact data.
const PROFILE_SLOT: &str = "/*PROFILE*/ { municipio: \"\", telefono: \"\", correo: \"\" }";

pub fn router(limit: PublicLimit) -> Router<AppState> {
    let assets = Router::new()
        .route(
            "/static/site.css",
            get(|h: HeaderMap| async move { asset(&h, "text/css", SITE_CSS) }),
        )
        .route(
            "/widget.css",
            get(|h: HeaderMap| async move { asset(&h, "text/css", WIDGET_CSS) }),
        )
        .route("/widget.js", get(widget_js))
        .layer(tower_http::compression::CompressionLayer::new());
    limit(
        Router::new()
            .route("/", get(home))
            .route("/oirs", get(form_page).post(submit))
            .route("/seguimiento", get(track_page)),
    )
    .merge(assets)
}

/// A static asset with a content hash as ETag: browsers revalidate after five minutes (so a
/// new catalog or release shows up soon) and get 304 while nothing changed.
pub fn asset(req: &HeaderMap, mime: &str, body: impl Into<String>) -> Response {
    let body = body.into();
    let etag = format!("\"{}\"", &crate::store::sha256_hex(body.as_bytes())[..32]);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{mime}; charset=utf-8")) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, stale-while-revalidate=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    resp
}

/// The widget with the municipality profile's name, phone and e-mail filled in, so it can show
/// them when the service is unreachable later.
async fn widget_js(State(state): State<AppState>, req: HeaderMap) -> Response {
    let engine = state.chat.engine();
    let p = &engine.catalog.profile;
    let first = |keys: &[&str]| {
        keys.iter()
            .map(|k| p.get(k))
            .find(|v| !v.is_empty())
            .unwrap_or("")
            .to_string()
    };
    let profile = serde_json::json!({
        "municipio": first(&["municipio"]),
        "telefono": first(&["telefono_central", "telefono_oirs"]),
        "correo": first(&["correo_oirs", "correo_general"]),
    });
    asset(
        &req,
        "text/javascript",
        WIDGET_JS.replacen(PROFILE_SLOT, &profile.to_string(), 1),
    )
}

async fn home(State(state): State<AppState>) -> Response {
    let engine = state.chat.engine();
    let p = &engine.catalog.profile;
    let ctx = context! {
        page => "home",
        title => "Inicio",
        telefono => p.get("telefono_central"),
        correo => p.get("correo_general"),
        direccion => p.get("direccion_municipio"),
        horario => p.get("horario_atencion"),
    };
    render(&state, ctx)
}

fn render(state: &AppState, ctx: minijinja::Value) -> Response {
    let mut env = Environment::new();
    let out = env
        .add_template("page.html", PAGE)
        .and_then(|_| env.get_template("page.html"))
        .and_then(|t| {
            t.render(context! {
                municipality => state.chat.engine().catalog.profile.get("municipio"),
                ..ctx
            })
        });
    match out {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The forms' field names (Spanish, as residents and staff see them) for the API's field
/// names. Shared by /oirs and the console's registration form.
pub fn form_field(api_field: &str) -> &str {
    match api_field {
        "received_at" => "recibido",
        "channel" => "canal",
        "type" => "tipo",
        "topic" => "tema",
        "description" => "descripcion",
        "name" => "nombre",
        "email" => "correo",
        "phone" => "telefono",
        "address" => "direccion",
        "consent" => "consentimiento",
        other => other,
    }
}

/// The topics a case can be about, as `{id, label}` choices sorted by label (small talk and
/// other topics without a department left out). For the forms of /oirs and the console.
pub fn topic_choices(catalog: &crate::chat::catalog::Catalog) -> Vec<minijinja::Value> {
    let mut topics: Vec<(String, &str)> = catalog
        .topics
        .iter()
        .filter(|t| t.department.is_some())
        .map(|t| (catalog.topic_label(&t.id), t.id.as_str()))
        .collect();
    topics.sort();
    topics
        .into_iter()
        .map(|(label, id)| context! { id => id, label => label })
        .collect()
}

/// A case as typed into a form with the Spanish field names (/oirs, console registration).
pub fn case_from_form(values: &HashMap<String, String>) -> CaseIn {
    let v = |k: &str| {
        values
            .get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let opt = |k: &str| Some(v(k)).filter(|s| !s.is_empty());
    CaseIn {
        case_type: v("tipo"),
        topic: v("tema"),
        description: v("descripcion"),
        name: v("nombre"),
        rut: opt("rut"),
        email: opt("correo"),
        phone: opt("telefono"),
        address: opt("direccion"),
        chat_session_id: None,
        consent: values.contains_key("consentimiento"),
    }
}

async fn form_context(
    state: &AppState,
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> Result<minijinja::Value, ApiError> {
    let types: Vec<_> = service::case_types(&state.store)
        .await?
        .into_iter()
        .filter(|t| t.active)
        .collect();
    let topics = topic_choices(&state.chat.engine().catalog);
    Ok(
        context! { page => "form", title => "Ingresar un caso", types => types, topics => topics, values => values, errors => errors },
    )
}

#[derive(Deserialize)]
struct FormQuery {
    tipo: Option<String>,
    tema: Option<String>,
}

async fn form_page(
    State(state): State<AppState>,
    Query(q): Query<FormQuery>,
) -> Result<Response, ApiError> {
    let mut values = HashMap::new();
    values.insert(
        "tipo".to_string(),
        q.tipo.unwrap_or_else(|| "consulta".into()),
    );
    values.insert("tema".to_string(), q.tema.unwrap_or_default());
    let ctx = form_context(&state, &values, &HashMap::new()).await?;
    Ok(render(&state, ctx))
}

async fn submit(
    State(state): State<AppState>,
    Form(values): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let input = case_from_form(&values);
    let filed = match validate(&input, &state, Channel::Web, Utc::now()) {
        Ok(case) => file_and_answer(&state, case, None).await.map(|(_, j)| j.0),
        Err(e) => Err(e),
    };
    match filed {
        Ok(filed) => {
            let due = filed.due_date.format("%d-%m-%Y").to_string();
            Ok(render(
                &state,
                context! { page => "filed", title => "Caso recibido", filed => filed, due => due },
            ))
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let mut errors = HashMap::new();
            let field = e.field.as_deref().map(form_field).unwrap_or("descripcion");
            errors.insert(field.to_string(), e.message.clone());
            let ctx = form_context(&state, &values, &errors).await?;
            let mut resp = render(&state, ctx);
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct TrackPageQuery {
    folio: Option<String>,
    code: Option<String>,
    rut: Option<String>,
}

async fn track_page(
    State(state): State<AppState>,
    Query(q): Query<TrackPageQuery>,
) -> Result<Response, ApiError> {
    let folio = q.folio.clone().unwrap_or_default();
    let asked = !folio.trim().is_empty()
        && (q.code.as_deref().is_some_and(|c| !c.trim().is_empty())
            || q.rut.as_deref().is_some_and(|r| !r.trim().is_empty()));
    if !asked {
        return Ok(render(
            &state,
            context! { page => "track", title => "Seguimiento", folio => folio },
        ));
    }
    let tq = TrackQuery {
        code: q.code.clone(),
        rut: q.rut.clone(),
    };
    match lookup(&state, &folio, &tq).await {
        Ok(case) => {
            let received = case
                .received_at
                .with_timezone(&state.tz)
                .format("%d-%m-%Y")
                .to_string();
            let due = case.due_date.format("%d-%m-%Y").to_string();
            Ok(render(
                &state,
                context! { page => "track", title => "Seguimiento", folio => folio, case => case, received => received, due => due },
            ))
        }
        Err(e)
            if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            let limited = e.status == StatusCode::TOO_MANY_REQUESTS;
            let mut resp = render(
                &state,
                context! { page => "track", title => "Seguimiento", folio => folio, not_found => !limited, limited => limited },
            );
            *resp.status_mut() = e.status;
            Ok(resp)
        }
        Err(e) => Err(e),
    }
}
