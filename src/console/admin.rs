//! Console administration: users and roles, departments, case types, routing rules,
//! holidays, the catalog (check and reload), the outbox and the audit log. Every change goes
//! through the admin API's handler, so validation, audit and permissions are the API's.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{local_millis, notice, see_other, Console, PageError, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::oirs::calendar::Clock;
use crate::oirs::service::{self, RoutingRule};
use crate::staff::admin::{
    self as api, AuditQuery, CaseTypeIn, DepartmentIn, HolidayIn, OutboxQuery,
};
use crate::staff::auth::Role;
use crate::staff::users::{self, UserIn, UserUpdate};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/admin/usuarios", get(users_page).post(user_create))
        .route("/staff/admin/usuarios/{username}", post(user_update))
        .route(
            "/staff/admin/parametros",
            get(params_page).post(params_change),
        )
        .route(
            "/staff/admin/catalogo",
            get(catalog_page).post(catalog_reload),
        )
        .route("/staff/admin/envios", get(outbox_page))
        .route("/staff/admin/envios/{id}", post(outbox_retry))
        .route("/staff/admin/auditoria", get(audit_page))
}

#[derive(Deserialize, Default)]
struct Notice {
    ok: Option<String>,
}

/// A page shown again after a rejected change: the error's status and message.
fn rejected(mut resp: axum::response::Response, e: &ApiError) -> axum::response::Response {
    *resp.status_mut() = e.status;
    resp
}

/// Runs a change; a client error (422, 409, 404) is shown on the page again, anything else
/// is an error page.
async fn apply<T>(
    change: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Result<T, ApiError>, PageError> {
    match change.await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => Ok(Err(e)),
        Err(e) => Err(PageError(e)),
    }
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|s| s.trim()).unwrap_or("")
}

fn int(form: &HashMap<String, String>, name: &str) -> Result<i32, ApiError> {
    field(form, name)
        .parse()
        .map_err(|_| ApiError::invalid(name, format!("{name}: escriba un número entero")))
}

// ---- users ----

async fn users_view(
    state: &AppState,
    c: &Console,
    ok: Option<&str>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    let list: Vec<Value> = users::list_users(&state.store)
        .await?
        .into_iter()
        .map(|u| {
            context! {
                username => u.username,
                role => u.role.as_str(),
                role_label => super::role_label(u.role),
                department => u.department,
                active => u.active,
                email => u.email,
                created => local_millis(state, u.created_at),
                me => u.username == c.user.username,
            }
        })
        .collect();
    let departments = service::departments(&state.store).await?;
    let roles: Vec<Value> = [
        Role::Admin,
        Role::Coordinator,
        Role::Department,
        Role::Analyst,
        Role::Support,
    ]
    .into_iter()
    .map(|r| context! { id => r.as_str(), label => super::role_label(r) })
    .collect();
    Ok(c.page(
        state,
        "users.html",
        "Usuarios y roles",
        context! {
            users => list, departments => departments, roles => roles,
            notice => notice(ok), error => error.map(|e| e.message.clone()),
        },
    ))
}

async fn users_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    users_view(&state, &c, n.ok.as_deref(), None).await
}

fn role(form: &HashMap<String, String>) -> Result<Role, ApiError> {
    Role::parse(field(form, "rol")).ok_or_else(|| ApiError::invalid("role", "elija un rol"))
}

async fn user_create(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let change = async {
        let input = UserIn {
            username: field(&form, "usuario").to_string(),
            password: form.get("clave").cloned().unwrap_or_default(),
            role: role(&form)?,
            department: Some(field(&form, "departamento").to_string()).filter(|d| !d.is_empty()),
        };
        users::create(State(state.clone()), c.user.clone(), ApiJson(input)).await
    };
    match apply(change).await? {
        Ok(_) => Ok(see_other("/staff/admin/usuarios", "usuario")),
        Err(e) => Ok(rejected(users_view(&state, &c, None, Some(&e)).await?, &e)),
    }
}

async fn user_update(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    c: Console,
    ApiPath(username): ApiPath<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let change = async {
        let input = UserUpdate {
            role: Some(role(&form)?),
            department: Some(field(&form, "departamento").to_string()),
            active: Some(form.contains_key("activo")),
            password: form.get("clave").cloned().filter(|p| !p.is_empty()),
            email: form.get("correo").cloned(),
        };
        users::update(
            State(state.clone()),
            headers,
            c.user.clone(),
            ApiPath(username),
            ApiJson(input),
        )
        .await
    };
    match apply(change).await? {
        Ok(_) => Ok(see_other("/staff/admin/usuarios", "usuario")),
        Err(e) => Ok(rejected(users_view(&state, &c, None, Some(&e)).await?, &e)),
    }
}

// ---- departments, case types, routing rules, holidays ----

async fn params_view(
    state: &AppState,
    c: &Console,
    ok: Option<&str>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    let topics = crate::web::topic_choices(&state.chat.engine().catalog);
    let this_year = state.today().format("%Y").to_string();
    let holidays: Vec<_> = service::holidays(&state.store)
        .await?
        .into_iter()
        .filter(|h| h.date.format("%Y").to_string() >= this_year)
        .collect();
    Ok(c.page(
        state,
        "params.html",
        "Parámetros",
        context! {
            departments => service::departments(&state.store).await?,
            types => service::case_types(&state.store).await?,
            rules => service::routing_rules(&state.store).await?,
            holidays => holidays,
            topics => topics,
            notice => notice(ok), error => error.map(|e| e.message.clone()),
        },
    ))
}

async fn params_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    params_view(&state, &c, n.ok.as_deref(), None).await
}

/// One form handler for the parameter page; `que` names the change.
async fn params_change(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let s = || State(state.clone());
    let u = || c.user.clone();
    let f = |n: &str| field(&form, n).to_string();
    let change = async {
        match field(&form, "que") {
            "departamento" => {
                let d = DepartmentIn {
                    name: f("nombre"),
                    email: f("correo"),
                    active: form.contains_key("activo"),
                };
                api::put_department(s(), u(), ApiPath(f("id")), ApiJson(d))
                    .await
                    .map(drop)
            }
            "tipo" => {
                let t = CaseTypeIn {
                    name: f("nombre"),
                    clock: Clock::parse(field(&form, "computo")),
                    deadline_days: int(&form, "plazo")?,
                    alert_days: int(&form, "alerta")?,
                    extension_days: int(&form, "prorroga")?,
                    active: form.contains_key("activo"),
                };
                api::put_case_type(s(), u(), ApiPath(f("id")), ApiJson(t))
                    .await
                    .map(drop)
            }
            "regla" => {
                let r = RoutingRule {
                    case_type: f("tipo"),
                    topic: f("tema"),
                    department: f("departamento"),
                };
                api::put_rule(s(), u(), ApiJson(r)).await.map(drop)
            }
            "borrar_regla" => api::delete_rule(s(), u(), ApiPath((f("tipo"), f("tema"))))
                .await
                .map(drop),
            "feriado" => {
                let h = HolidayIn { name: f("nombre") };
                api::put_holiday(s(), u(), ApiPath(f("fecha")), ApiJson(h))
                    .await
                    .map(drop)
            }
            "borrar_feriado" => api::delete_holiday(s(), u(), ApiPath(f("fecha")))
                .await
                .map(drop),
            _ => Err(ApiError::invalid("que", "cambio desconocido")),
        }
    };
    match apply(change).await? {
        Ok(()) => Ok(see_other("/staff/admin/parametros", "parametro")),
        Err(e) => Ok(rejected(params_view(&state, &c, None, Some(&e)).await?, &e)),
    }
}

// ---- catalog ----

async fn catalog_view(
    state: &AppState,
    c: &Console,
    ok: Option<&str>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    let dir = state.config.intents_dir.clone();
    let findings =
        tokio::task::spawn_blocking(move || crate::chat::catalog::load_with_findings(&dir).1)
            .await
            .map_err(ApiError::internal)?;
    let engine = state.chat.engine();
    Ok(c.page(
        state,
        "catalog.html",
        "Catálogo del asistente",
        context! {
            dir => state.config.intents_dir.display().to_string(),
            intents => engine.catalog.intents.len(),
            topics => engine.catalog.topics.len(),
            buttons => engine.catalog.botonera.buttons.len(),
            findings => findings.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            notice => notice(ok), error => error.map(|e| e.message.clone()),
        },
    ))
}

async fn catalog_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    catalog_view(&state, &c, n.ok.as_deref(), None).await
}

async fn catalog_reload(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    match apply(crate::chat::routes::reload_catalog(
        State(state.clone()),
        c.user.clone(),
    ))
    .await?
    {
        Ok(_) => Ok(see_other("/staff/admin/catalogo", "catalogo")),
        Err(e) => Ok(rejected(
            catalog_view(&state, &c, None, Some(&e)).await?,
            &e,
        )),
    }
}

// ---- outbox ----

#[derive(Deserialize, Default)]
struct OutboxPageQuery {
    estado: Option<String>,
    ok: Option<String>,
}

async fn outbox_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<OutboxPageQuery>,
) -> PageResult {
    let status = q.estado.clone().filter(|s| !s.is_empty());
    let out = api::list_outbox(
        State(state.clone()),
        c.user.clone(),
        ApiQuery(OutboxQuery {
            status: status.clone(),
            limit: Some(200),
        }),
    )
    .await?
    .0;
    let messages: Vec<Value> = out
        .messages
        .iter()
        .map(|m| {
            context! {
                id => m.id, kind => m.kind, status => m.status, attempts => m.attempts,
                summary => m.summary, error => m.last_error,
                created => local_millis(&state, m.created_at),
                next => local_millis(&state, m.next_attempt_at),
                retryable => m.status == "dead" || m.status == "skipped",
            }
        })
        .collect();
    Ok(c.page(
        &state,
        "outbox.html",
        "Envíos (outbox)",
        context! {
            counts => out.counts, messages => messages, estado => status,
            may_retry => c.user.role == Role::Admin,
            notice => notice(q.ok.as_deref()),
        },
    ))
}

async fn outbox_retry(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    api::retry_outbox(State(state.clone()), c.user.clone(), ApiPath(id)).await?;
    Ok(see_other("/staff/admin/envios?estado=pending", "reintento"))
}

// ---- audit log ----

#[derive(Deserialize, Default)]
struct AuditPageQuery {
    folio: Option<String>,
    usuario: Option<String>,
    accion: Option<String>,
}

async fn audit_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<AuditPageQuery>,
) -> PageResult {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let query = AuditQuery {
        folio: clean(&q.folio).map(|f| f.to_uppercase()),
        username: clean(&q.usuario),
        action: clean(&q.accion),
        limit: Some(500),
    };
    let rows = api::list_audit(State(state.clone()), c.user.clone(), ApiQuery(query))
        .await?
        .0;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            context! {
                at => local_millis(&state, r.at), username => r.username, action => r.action,
                folio => r.folio, detail => r.detail,
            }
        })
        .collect();
    Ok(c.page(
        &state,
        "audit.html",
        "Registro de auditoría",
        context! { rows => rows, folio => clean(&q.folio), usuario => clean(&q.usuario), accion => clean(&q.accion) },
    ))
}
