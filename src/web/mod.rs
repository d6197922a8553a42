//! Resident pages served by the service, working without JavaScript: a demo municipal home
//! page (/) with the chat widget embedded, the OIRS form (/oirs) with errors beside their
//! fields, case tracking (/seguimiento) and the register of processing (/privacidad, see
//! [`privacy`]). Also serves the widget's script and style sheet.

pub mod attachments;
pub mod privacy;

use std::collections::HashMap;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use minijinja::{context, Environment};
use serde::Deserialize;

use crate::app::AppState;
use crate::http::error::FieldError;
use crate::http::{ApiError, ApiQuery, PublicLimit};
use crate::oirs::domain::Channel;
use crate::oirs::routes::{file_and_answer, lookup, validate, CaseIn, TrackQuery};
use crate::oirs::service;
use crate::signin::resident::{signed_in, Resident};

const PAGE: &str = include_str!("../../templates/page.html");
const PRIVACY: &str = include_str!("../../templates/privacidad.html");
/// The register of processing's body, shared with the console's copy of the register.
pub const REGISTER: &str = include_str!("../../templates/_registro.html");
const SITE_CSS: &str = include_str!("../../widget/site.css");
const WIDGET_JS: &str = include_str!("../../widget/widget.js");
const WIDGET_CSS: &str = include_str!("../../widget/widget.css");
const OIRS_JS: &str = include_str!("../../widget/oirs.js");
/// Where the served widget carries the municipality's contact data.
const PROFILE_SLOT: &str =
    "/*PROFILE*/ { municipio: \"\", telefono: \"\", correo: \"\", trato: \"usted\" }";

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
        .route(
            "/oirs.js",
            get(|h: HeaderMap| async move { asset(&h, "text/javascript", OIRS_JS) }),
        )
        .layer(tower_http::compression::CompressionLayer::new());
    limit(
        Router::new()
            .route("/", get(home))
            .route(
                "/oirs",
                get(form_page).post(submit).layer(DefaultBodyLimit::max(
                    crate::oirs::attachments::FORM_BODY_LIMIT,
                )),
            )
            .route("/oirs/recibido", get(receipt))
            .route("/seguimiento", get(track_form).post(track_page))
            .route("/seguimiento/evaluacion", axum::routing::post(survey_page))
            .route("/seguimiento/adjunto", post(attachments::download))
            .route(
                "/seguimiento/adjuntar",
                post(attachments::upload).layer(DefaultBodyLimit::max(
                    crate::oirs::attachments::UPLOAD_BODY_LIMIT,
                )),
            )
            .route("/privacidad", get(privacy::page)),
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
        "trato": engine.catalog.register().as_str(),
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

/// Renders a resident page (for pages outside this module, such as /mi-cuenta).
pub(crate) fn render_page(state: &AppState, ctx: minijinja::Value) -> Response {
    render(state, ctx)
}

fn render(state: &AppState, ctx: minijinja::Value) -> Response {
    let mut env = Environment::new();
    let out = env
        .add_template("page.html", PAGE)
        .and_then(|_| env.add_template("privacidad.html", PRIVACY))
        .and_then(|_| env.add_template("_registro.html", REGISTER))
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
        "right" => "derecho",
        "public_description" => "publicar",
        other => other,
    }
}

/// The topics a case can be about, as `{id, label}` choices in Spanish alphabetical order
/// (accents ignored). Chat-only topics (greetings, opening hours, tracking, contact requests)
/// are left out. For the forms of /oirs and the console, and the topics API.
pub fn topic_choices(catalog: &crate::chat::catalog::Catalog) -> Vec<minijinja::Value> {
    case_topics(catalog)
        .into_iter()
        .map(|(id, label)| context! { id => id, label => label })
        .collect()
}

/// The case topics as (id, label), in Spanish alphabetical order.
pub fn case_topics(catalog: &crate::chat::catalog::Catalog) -> Vec<(String, String)> {
    let mut topics: Vec<(String, String)> = catalog
        .topics
        .iter()
        .filter(|t| t.case)
        .map(|t| (t.id.clone(), catalog.topic_label(&t.id)))
        .collect();
    topics.sort_by_key(|(_, label)| crate::chat::text::sort_key(label));
    topics
}

/// The rights of a personal-data request as `{id, label, meaning}` choices.
pub fn right_choices() -> Vec<minijinja::Value> {
    crate::oirs::domain::DataRight::ALL
        .into_iter()
        .map(|r| minijinja::context! { id => r.as_str(), label => r.label(), meaning => r.meaning() })
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
        // Unreadable numbers become NaN, which validation refuses naming the field.
        lat: opt("lat").map(|s| s.replace(',', ".").parse().unwrap_or(f64::NAN)),
        long: opt("long").map(|s| s.replace(',', ".").parse().unwrap_or(f64::NAN)),
        public_description: values.contains_key("publicar"),
        chat_session_id: None,
        right: opt("derecho"),
        consent: values.contains_key("consentimiento"),
    }
}

async fn form_context(
    state: &AppState,
    values: &HashMap<String, String>,
    errors: &[FieldError],
    notice: Option<String>,
    resident: Option<&Resident>,
) -> Result<minijinja::Value, ApiError> {
    let types: Vec<_> = service::case_types(&state.store)
        .await?
        .into_iter()
        .filter(|t| t.active)
        .collect();
    let topics = topic_choices(&state.chat.engine().catalog);
    // Beside each field, and in the summary at the top with a link to the field.
    let by_field: HashMap<&str, &str> = errors
        .iter()
        .map(|e| (form_field(&e.field), e.message.as_str()))
        .collect();
    let summary: Vec<minijinja::Value> = errors
        .iter()
        .map(|e| context! { id => form_field(&e.field), message => e.message })
        .collect();
    Ok(context! {
        page => "form", title => "Ingresar un caso", types => types, topics => topics,
        rights => right_choices(),
        values => values, errors => by_field, summary => summary, notice => notice,
        verified => resident.map(|r| context! { rut => crate::signin::resident::display_rut(&r.rut) }),
    })
}

#[derive(Deserialize)]
struct FormQuery {
    tipo: Option<String>,
    tema: Option<String>,
    derecho: Option<String>,
}

/// The form, with a one-time token: the Idempotency-Key its submission files with, so a
/// double click, a reload or the back button never files twice.
async fn form_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FormQuery>,
) -> Result<Response, ApiError> {
    let resident = signed_in(&state, &headers).await?;
    let catalog = &state.chat.engine().catalog;
    let mut values = HashMap::new();
    values.insert("token".to_string(), uuid::Uuid::new_v4().to_string());
    values.insert("tipo".to_string(), q.tipo.unwrap_or_default());
    // A topic is taken from the link only when it is one a case can be about.
    let tema = q
        .tema
        .filter(|t| catalog.is_case_topic(t))
        .unwrap_or_default();
    values.insert("tema".to_string(), tema);
    if let Some(r) = q
        .derecho
        .as_deref()
        .and_then(crate::oirs::domain::DataRight::parse)
    {
        values.insert("derecho".to_string(), r.as_str().to_string());
    }
    let ctx = form_context(&state, &values, &[], None, resident.as_ref()).await?;
    Ok(no_store(render(&state, ctx)))
}

/// How long the receipt of a filing can be shown again at its address.
const RECEIPT_MAX_AGE_MS: i64 = 60 * 60 * 1000;

async fn submit(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    // A resident signed in with ClaveÚnica files with the State's RUT, not a typed one.
    let resident = signed_in(&state, req.headers()).await?;
    let (mut values, files) = attachments::read_form(&state, req).await?;
    if let Some(r) = &resident {
        values.insert("rut".to_string(), r.rut.clone());
    }
    let token = values
        .get("token")
        .and_then(|t| uuid::Uuid::parse_str(t.trim()).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string();
    values.insert("token".to_string(), token.clone());
    // A description without a topic: suggest one from what it says, for the resident to
    // confirm or change (the case is not filed under a topic nobody chose).
    let mut suggestion = None;
    if values.get("tema").is_none_or(|t| t.trim().is_empty()) {
        let description = values.get("descripcion").cloned().unwrap_or_default();
        if let Some(topic) = state
            .chat
            .engine()
            .suggest_topic(&description, state.today())
        {
            suggestion = Some(state.chat.engine().catalog.topic_label(&topic));
            values.insert("tema".to_string(), topic);
        }
    }
    let input = case_from_form(&values);
    let checked = validate(&input, &state, Channel::Web, Utc::now()).await;
    let mut errors = match &checked {
        Ok(_) => Vec::new(),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => e.field_errors(),
        Err(_) => return checked.map(|_| Response::default()),
    };
    // Files are checked before anything is filed; a browser cannot keep them across a
    // rejected form, so the resident is asked to choose them again.
    let had_files = !files.is_empty();
    let prepared = match attachments::prepare_all(files).await {
        Ok(p) => p,
        Err(message) => {
            errors.push(FieldError {
                field: "archivos".into(),
                message,
            });
            Vec::new()
        }
    };
    if had_files && !errors.is_empty() && !errors.iter().any(|e| e.field == "archivos") {
        errors.push(FieldError {
            field: "archivos".into(),
            message: "Vuelva a elegir sus archivos: por seguridad el navegador no los guarda al revisar el formulario.".into(),
        });
    }
    if suggestion.is_some() || !errors.is_empty() {
        let notice = suggestion.map(|label| {
            format!(
                "Según lo que describe, sugerimos el tema «{label}». Confírmelo o elija otro, y envíe el caso."
            )
        });
        let ctx = form_context(&state, &values, &errors, notice, resident.as_ref()).await?;
        let mut resp = no_store(render(&state, ctx));
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(resp);
    }
    let mut case = checked?;
    case.identity_verified = resident.is_some();
    // The token is the request: any submission of the same form files the same case.
    let idem = Some((token.clone(), crate::store::sha256_hex(token.as_bytes())));
    let (status, receipt) = file_and_answer(&state, case, idem).await?;
    // A replay of the same form already stored its files.
    if status == StatusCode::CREATED {
        attachments::store_all(&state, &receipt.folio, &prepared).await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/oirs/recibido?t={token}"))],
    )
        .into_response())
}

#[derive(Deserialize)]
struct ReceiptQuery {
    t: Option<String>,
}

/// The receipt after filing (the Get of Post/Redirect/Get): reloading it files nothing.
async fn receipt(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> Result<Response, ApiError> {
    let filed = match q.t.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => service::filed_by_key(&state.store, t, RECEIPT_MAX_AGE_MS).await?,
        None => None,
    };
    let Some(filed) = filed else {
        let mut resp = render(
            &state,
            context! { page => "filed", title => "Caso recibido", expired => true },
        );
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(no_store(resp));
    };
    let due = filed.due_date.format("%d-%m-%Y").to_string();
    Ok(no_store(render(
        &state,
        context! { page => "filed", title => "Caso recibido", filed => filed, due => due },
    )))
}

/// Pages that show a tracking code or a case are not kept by browsers or proxies, and the
/// address they were reached from is not sent on.
pub(crate) fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[derive(Deserialize)]
struct TrackPageQuery {
    folio: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct TrackForm {
    pub folio: Option<String>,
    pub code: Option<String>,
    pub rut: Option<String>,
}

/// The tracking page showing a case, with the satisfaction survey when it is open. The
/// survey's form carries the code or RUT the resident just gave (the page is not stored).
fn case_page(
    state: &AppState,
    folio: &str,
    q: &TrackForm,
    case: crate::oirs::routes::TrackOut,
    extra: minijinja::Value,
) -> Response {
    let local = |t: &chrono::DateTime<Utc>| {
        t.with_timezone(&state.tz)
            .format("%d-%m-%Y %H:%M")
            .to_string()
    };
    let received = local(&case.received_at);
    let due = case.due_date.format("%d-%m-%Y").to_string();
    let history: Vec<minijinja::Value> = case
        .history
        .iter()
        .map(|e| context! { at => local(&e.at), label => e.label, note => e.note })
        .collect();
    let files: Vec<minijinja::Value> = case
        .attachments
        .iter()
        .map(|a| {
            context! {
                id => a.file.id, name => a.file.name, size => size_label(a.file.bytes),
                from_staff => a.source == "staff",
            }
        })
        .collect();
    let from_resident = case
        .attachments
        .iter()
        .filter(|a| a.source == "vecino")
        .count();
    let may_attach = case.status != crate::oirs::domain::Status::Cerrado
        && (from_resident as i64) < crate::oirs::attachments::MAX_PER_CASE;
    no_store(render(
        state,
        context! {
            page => "track", title => "Seguimiento", folio => folio, case => case,
            received => received, due => due, history => history,
            given_code => q.code, given_rut => q.rut, code => q.code, rut => q.rut,
            files => files, may_attach => may_attach,
            ..extra
        },
    ))
}

#[derive(Deserialize)]
struct SurveyForm {
    folio: Option<String>,
    code: Option<String>,
    rut: Option<String>,
    puntaje: Option<String>,
    comentario: Option<String>,
}

/// The survey on /seguimiento: records the rating and shows the case again, thanked, or
/// with the problem beside its field.
async fn survey_page(
    State(state): State<AppState>,
    client: crate::http::throttle::ClientAddr,
    Form(f): Form<SurveyForm>,
) -> Result<Response, ApiError> {
    let folio = f.folio.clone().unwrap_or_default();
    let q = TrackForm {
        folio: f.folio.clone(),
        code: f.code.clone(),
        rut: f.rut.clone(),
    };
    let input = crate::oirs::satisfaction::SatisfactionIn {
        code: f.code.clone(),
        rut: f.rut.clone(),
        score: f
            .puntaje
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0),
        comment: f.comentario.clone(),
    };
    let outcome = crate::oirs::satisfaction::submit(&state, client, &folio, &input).await;
    let status = outcome.as_ref().err().map(|e| e.status);
    let extra = match outcome {
        Ok(_) => context! { rated => true },
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let field = match e.field.as_deref() {
                Some("comment") => "comentario",
                _ => "puntaje",
            };
            context! { survey_error => e.message, survey_field => field, comentario => f.comentario }
        }
        Err(e) if e.status == StatusCode::CONFLICT => context! { survey_conflict => e.message },
        Err(e)
            if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            let limited = e.status == StatusCode::TOO_MANY_REQUESTS;
            let mut resp = render(
                &state,
                context! { page => "track", title => "Seguimiento", folio => folio, not_found => !limited, limited => limited },
            );
            *resp.status_mut() = e.status;
            return Ok(resp);
        }
        Err(e) => return Err(e),
    };
    let tq = TrackQuery {
        code: f.code.clone(),
        rut: f.rut.clone(),
    };
    let case = lookup(&state, client, &folio, &tq).await?;
    let mut resp = case_page(&state, &folio, &q, case, extra);
    if let Some(status) = status {
        *resp.status_mut() = status;
    }
    Ok(resp)
}

/// The tracking form (a folio in the address only fills it in: codes and RUTs travel in the
/// body of a POST, never in an address, a browser history or a log).
async fn track_form(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TrackPageQuery>,
) -> Response {
    let folio = q.folio.unwrap_or_default();
    render(
        &state,
        context! { page => "track", title => "Seguimiento", folio => folio },
    )
}

async fn track_page(
    State(state): State<AppState>,
    client: crate::http::throttle::ClientAddr,
    Form(q): Form<TrackForm>,
) -> Result<Response, ApiError> {
    track_view(&state, client, q, None, None).await
}

/// The tracking page for a folio and code (or RUT), with the outcome of an upload.
pub(crate) async fn track_view(
    state: &AppState,
    client: crate::http::throttle::ClientAddr,
    q: TrackForm,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let state = state.clone();
    let folio = q.folio.clone().unwrap_or_default();
    let asked = !folio.trim().is_empty()
        && (q.code.as_deref().is_some_and(|c| !c.trim().is_empty())
            || q.rut.as_deref().is_some_and(|r| !r.trim().is_empty()));
    if !asked {
        let mut resp = render(
            &state,
            context! { page => "track", title => "Seguimiento", folio => folio, incomplete => true },
        );
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(resp);
    }
    let tq = TrackQuery {
        code: q.code.clone(),
        rut: q.rut.clone(),
    };
    match lookup(&state, client, &folio, &tq).await {
        Ok(case) => Ok(case_page(
            &state,
            &folio,
            &q,
            case,
            context! { notice => notice, error => error },
        )),
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

/// A file size as residents read it: "350 KB", "2,4 MB".
pub fn size_label(bytes: i64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} KB", (bytes + 1023) / 1024)
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0)).replace('.', ",")
    }
}
