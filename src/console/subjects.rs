//! Data subjects in the console (/staff/titulares): everything held about a person by RUT,
//! its JSON export, rectification, anonymisation and the block flag. Same rules as the API:
//! administrators and the unit that handles personal-data requests; every call audited.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use minijinja::context;
use serde::Deserialize;

use super::{date_cl, local_time, Console, PageError, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::oirs::domain::DataRight;
use crate::oirs::service::{Names, Rectification};
use crate::oirs::Rut;
use crate::staff::subjects as api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/titulares", get(search))
        .route("/staff/titulares/{rut}", get(show).post(act))
        .route("/staff/titulares/{rut}/exportar", get(export))
}

#[derive(Deserialize)]
struct SearchQuery {
    rut: Option<String>,
    ok: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> PageResult {
    if !api::may_handle(&state, &c.user).await.map_err(PageError)? {
        return Err(PageError(ApiError::forbidden()));
    }
    let typed = q.rut.unwrap_or_default();
    let error = if typed.trim().is_empty() {
        None
    } else {
        match Rut::parse(&typed) {
            Ok(r) => return Ok(Redirect::to(&format!("/staff/titulares/{r}")).into_response()),
            Err(e) => Some(format!("{e}.")),
        }
    };
    Ok(c.page(
        &state,
        "subject.html",
        "Titulares de datos personales",
        context! { searching => true, typed => typed, search_error => error },
    ))
}

/// The JSON of everything held about the person, as a download (portability).
async fn export(
    State(state): State<AppState>,
    c: Console,
    ApiPath(rut): ApiPath<String>,
) -> Result<Response, PageError> {
    let Json(subject) = api::gather(State(state), c.user.clone(), ApiPath(rut))
        .await
        .map_err(PageError)?;
    let body = serde_json::to_string_pretty(&subject).unwrap_or_default();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"datos-{}.json\"", subject.rut),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    c: Console,
    ApiPath(rut): ApiPath<String>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> PageResult {
    view(&state, &c, &rut, q.ok.as_deref(), None, HashMap::new()).await
}

async fn view(
    state: &AppState,
    c: &Console,
    rut: &str,
    ok: Option<&str>,
    error: Option<(String, String)>,
    values: HashMap<String, String>,
) -> PageResult {
    let Json(s) = api::gather(
        State(state.clone()),
        c.user.clone(),
        ApiPath(rut.to_string()),
    )
    .await
    .map_err(PageError)?;
    let names = Names::load(&state.store)
        .await
        .map_err(|e| PageError(e.into()))?;
    let engine = state.chat.engine();
    let cases: Vec<_> = s
        .cases
        .iter()
        .map(|sc| {
            let k = &sc.case;
            context! {
                folio => k.folio,
                tipo => names.case_type(&k.case_type),
                derecho => k.data_right.as_deref().and_then(DataRight::parse).map(|r| r.label()),
                tema => engine.catalog.topic_label(&k.topic),
                departamento => names.department(&k.department),
                estado => k.status.label(),
                recibido => local_time(state, k.received_at),
                vence => date_cl(k.due_date),
                nombre => k.name, correo => k.email, telefono => k.phone, direccion => k.address,
                descripcion => k.description,
                respuesta => k.answer,
                eventos => sc.events.len(),
                cerrado => k.status == crate::oirs::domain::Status::Cerrado,
            }
        })
        .collect();
    let messages: Vec<_> = s
        .messages
        .iter()
        .map(|m| {
            context! {
                creado => local_time(state, m.created_at),
                estado => match m.status.as_str() {
                    "sent" => "enviado",
                    "pending" => "por enviar",
                    "skipped" => "omitido",
                    "dead" => "fallido",
                    other => other,
                },
                asunto => m.payload["subject"].as_str().unwrap_or("—"),
                folio => m.folio,
            }
        })
        .collect();
    let closed = cases
        .iter()
        .filter(|c| c.get_attr("cerrado").is_ok_and(|v| v.is_true()))
        .count();
    let (error_kind, error_message) = error.unzip();
    Ok(c.page(
        state,
        "subject.html",
        &format!("Titular {}", s.rut),
        context! {
            rut => s.rut,
            blocked => s.blocked.as_ref().map(|b| context! {
                since => local_time(state, b.since), actor => b.actor, reason => b.reason,
            }),
            contact => s.contact,
            cases => cases,
            closed => closed,
            messages => messages,
            chats => s.chat_sessions.len(),
            notice => super::notice(ok),
            error_kind => error_kind, error_message => error_message,
            values => values,
        },
    ))
}

/// One form handler: `accion` is rectificar, anonimizar, bloquear or desbloquear.
async fn act(
    State(state): State<AppState>,
    c: Console,
    ApiPath(rut): ApiPath<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let f = |k: &str| {
        form.get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let opt = |k: &str| Some(f(k)).filter(|s| !s.is_empty());
    let action = f("accion");
    let s = || State(state.clone());
    let u = || c.user.clone();
    let p = || ApiPath(rut.clone());
    let result: Result<&str, ApiError> = match action.as_str() {
        "rectificar" => {
            let r = Rectification {
                name: opt("nombre"),
                email: opt("correo"),
                phone: opt("telefono"),
                address: opt("direccion"),
            };
            api::rectify(s(), u(), p(), ApiJson(r))
                .await
                .map(|_| "rectificado")
        }
        "anonimizar" if form.contains_key("confirmo") => {
            api::anonymize(s(), u(), p()).await.map(|_| "anonimizado")
        }
        "anonimizar" => Err(ApiError::invalid(
            "confirmo",
            "Confirme que quiere anonimizar: no se puede deshacer.",
        )),
        "bloquear" => {
            let b = api::BlockIn {
                reason: f("motivo"),
            };
            api::block(s(), u(), p(), ApiJson(b))
                .await
                .map(|_| "bloqueado")
        }
        "desbloquear" => api::unblock(s(), u(), p()).await.map(|_| "desbloqueado"),
        _ => Err(ApiError::invalid("accion", "Acción desconocida.")),
    };
    match result {
        Ok(done) => {
            let rut = Rut::parse(&rut).map(|r| r.to_string()).unwrap_or(rut);
            Ok(super::see_other(&format!("/staff/titulares/{rut}"), done))
        }
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            let message = match e.field.as_deref() {
                Some("email") => "El correo no es válido: revíselo.".to_string(),
                Some("phone") => "El teléfono no es un número chileno válido.".to_string(),
                Some("name") => {
                    "Escriba el nombre (2 a 200 caracteres) o algún dato que corregir.".to_string()
                }
                Some("address") => {
                    "La dirección es demasiado larga (300 caracteres como máximo).".to_string()
                }
                _ => e.message.clone(),
            };
            view(&state, &c, &rut, None, Some((action, message)), form).await
        }
        Err(e) => Err(PageError(e)),
    }
}
