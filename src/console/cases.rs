//! Console pages for cases: the inbox with counters, filters and sorting, its CSV export, the
//! case detail (audited) with the history and the actions the user may take.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Form, Router};
use chrono::TimeZone;
use minijinja::context;
use serde::Deserialize;

use super::{date_cl, local_time, notice, see_other, Console, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::oirs::domain::{transition, Channel, EventKind, Status};
use crate::oirs::service::{self, CaseFilter, EventIn};
use crate::staff::auth::Role;
use crate::staff::cases::{self as api, CaseSummary};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/casos", get(inbox))
        .route("/staff/casos.csv", get(export))
        .route("/staff/casos/nuevo", get(new_page).post(register))
        .route("/staff/casos/{folio}", get(detail).post(act))
        .route(
            "/staff/casos/{folio}/adjuntos",
            axum::routing::post(attach).layer(axum::extract::DefaultBodyLimit::max(
                crate::oirs::attachments::UPLOAD_BODY_LIMIT,
            )),
        )
}

const CASE_ROLES: &[Role] = &[Role::Admin, Role::Coordinator, Role::Department];

#[derive(Deserialize, Default)]
struct InboxQuery {
    /// A status, `abiertos` (default) or `todos`.
    estado: Option<String>,
    departamento: Option<String>,
    tipo: Option<String>,
    /// `alerta` or `vencido`.
    alerta: Option<String>,
    /// vence (default), recibido, folio, estado, departamento.
    orden: Option<String>,
    ok: Option<String>,
    /// `si`: the CSV a Chilean Excel opens in columns (`;`, UTF-8 with BOM).
    excel: Option<String>,
    /// A username, or `me` for "Mis casos".
    asignado: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The cases this user may see under the inbox's filters, sorted as asked. Goes through the
/// API handler, so department staff stay confined to their department.
async fn cases_for(
    state: &AppState,
    c: &Console,
    q: &InboxQuery,
) -> Result<Vec<CaseSummary>, ApiError> {
    let estado = blank(&q.estado).unwrap_or_else(|| "abiertos".into());
    let filter = CaseFilter {
        status: (!["abiertos", "todos"].contains(&estado.as_str())).then_some(estado.clone()),
        open: Some(estado == "abiertos"),
        department: blank(&q.departamento),
        case_type: blank(&q.tipo),
        alert: blank(&q.alerta),
        assignee: blank(&q.asignado),
        limit: Some(5000),
        ..CaseFilter::default()
    };
    let mut rows = api::list(State(state.clone()), c.user.clone(), ApiQuery(filter))
        .await?
        .0;
    match q.orden.as_deref().unwrap_or("vence") {
        "recibido" => rows.sort_by_key(|r| std::cmp::Reverse(r.received_at)),
        "folio" => rows.sort_by(|a, b| a.folio.cmp(&b.folio)),
        "estado" => rows.sort_by_key(|r| r.status.as_str()),
        "departamento" => rows.sort_by(|a, b| a.department.cmp(&b.department)),
        _ => {} // already by due date
    }
    Ok(rows)
}

async fn inbox(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> PageResult {
    c.require(CASE_ROLES)?;
    let rows = cases_for(&state, &c, &q).await?;
    let scope = match c.user.role {
        Role::Department => c.user.department.clone(),
        _ => blank(&q.departamento),
    };
    let counts = service::inbox_counts(&state.store, scope.as_deref()).await?;
    let departments = service::departments(&state.store).await?;
    let dept_name = |id: &str| {
        departments
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let types = service::case_types(&state.store).await?;
    let names = service::Names::load(&state.store).await?;
    let tz = state.tz;
    let list: Vec<_> = rows
        .iter()
        .map(|r| {
            context! {
                folio => r.folio,
                asunto => r.subject,
                tipo => names.case_type(&r.case_type),
                tema => state.chat.engine().catalog.topic_label(&r.topic),
                departamento => dept_name(&r.department),
                estado => r.status.label(),
                recibido => r.received_at.with_timezone(&tz).format("%d-%m-%Y").to_string(),
                vence => date_cl(r.due_date),
                dias => r.days_left,
                computo => r.clock.short(),
                alerta => r.alert_level,
                abierto => r.status.is_open(),
                asignado => r.assignee,
            }
        })
        .collect();
    let statuses: Vec<_> = Status::ALL
        .iter()
        .map(|s| context! { id => s.as_str(), label => s.label() })
        .collect();
    let query = context! {
        estado => blank(&q.estado).unwrap_or_else(|| "abiertos".into()),
        departamento => blank(&q.departamento),
        tipo => blank(&q.tipo),
        alerta => blank(&q.alerta),
        orden => q.orden.clone().unwrap_or_else(|| "vence".into()),
        asignado => blank(&q.asignado),
    };
    let members = service::department_members(&state.store, scope.as_deref()).await?;
    let title = match (&c.user.role, &c.user.department) {
        (Role::Department, Some(d)) => format!("Casos de {}", dept_name(d)),
        _ => "Casos de todos los departamentos".into(),
    };
    Ok(c.page(
        &state,
        "inbox.html",
        &title,
        context! {
            heading => title,
            cases => list,
            counts => counts,
            departments => departments,
            types => types,
            statuses => statuses,
            q => query,
            notice => notice(q.ok.as_deref()),
            see_all_departments => c.user.role != Role::Department,
            members => members,
        },
    ))
}

/// The list as CSV (no personal data, as the list itself).
async fn export(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> PageResult {
    c.require(CASE_ROLES)?;
    let rows = cases_for(&state, &c, &q).await?;
    let names = service::Names::load(&state.store).await?;
    let engine = state.chat.engine();
    let header = [
        "folio",
        "tipo",
        "tipo_nombre",
        "tema",
        "tema_nombre",
        "departamento",
        "departamento_nombre",
        "estado",
        "estado_nombre",
        "canal",
        "recibido",
        "vence",
        "dias_restantes",
        "computo",
        "alerta",
    ];
    let records = rows.iter().map(|r| {
        vec![
            r.folio.clone(),
            r.case_type.clone(),
            names.case_type(&r.case_type),
            r.topic.clone(),
            engine.catalog.topic_label(&r.topic),
            r.department.clone(),
            names.department(&r.department),
            r.status.as_str().to_string(),
            r.status.label().to_string(),
            channel_label(&r.channel).to_string(),
            local_time(&state, r.received_at),
            r.due_date.to_string(),
            r.days_left.to_string(),
            r.clock.as_str().to_string(),
            r.alert_level.clone(),
        ]
    });
    let excel = q.excel.as_deref() == Some("si");
    let bytes = crate::http::csv_bytes(&header, records, excel).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"casos-{}{}.csv\"",
                    state.today(),
                    if excel { "-excel" } else { "" }
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

fn event_label(kind: &str) -> String {
    match kind {
        "recibir" | "recibido" => "Recibido".into(),
        other => EventKind::ALL
            .iter()
            .find(|k| k.as_str() == other)
            .map(|k| k.label().to_string())
            .unwrap_or_else(|| other.replace('_', " ")),
    }
}

#[derive(Deserialize)]
struct DetailQuery {
    ok: Option<String>,
    /// A reply template to fill the answer with.
    plantilla: Option<i64>,
}

async fn detail(
    State(state): State<AppState>,
    c: Console,
    ApiPath(folio): ApiPath<String>,
    ApiQuery(q): ApiQuery<DetailQuery>,
) -> PageResult {
    let Some(id) = q.plantilla else {
        return show(&state, &c, &folio, notice(q.ok.as_deref()), None, false).await;
    };
    // The chosen template fills the answer, editable before it is sent.
    let mut values = HashMap::new();
    values.insert("accion".to_string(), "responder".to_string());
    values.insert("plantilla".to_string(), id.to_string());
    let mut e = ApiError::new(axum::http::StatusCode::OK, "template", "");
    e.field = Some("plantilla".into());
    show(&state, &c, &folio, None, Some((e, values)), false).await
}

/// Renders the case page (the read is audited by the API handler), optionally with an error
/// from an action beside the actions.
async fn show(
    state: &AppState,
    c: &Console,
    folio: &str,
    notice: Option<&str>,
    failed: Option<(ApiError, HashMap<String, String>)>,
    confirm_answer: bool,
) -> PageResult {
    c.require(CASE_ROLES)?;
    let d = api::detail(
        State(state.clone()),
        c.user.clone(),
        ApiPath(folio.to_string()),
    )
    .await?
    .0;
    let case = &d.case;
    let may_route = matches!(c.user.role, Role::Admin | Role::Coordinator);
    let transparency = service::case_types(&state.store)
        .await?
        .into_iter()
        .any(|t| t.id == case.case_type && t.extension_days > 0);
    let actions: Vec<_> = EventKind::ALL
        .into_iter()
        .filter(|k| transition(case.status, *k).is_some())
        .filter(|k| *k != EventKind::Derivar || may_route)
        .filter(|k| *k != EventKind::Prorrogar || (transparency && !case.extended))
        .map(|k| {
            context! {
                kind => k.as_str(),
                label => k.label(),
                needs_text => matches!(k, EventKind::Derivar | EventKind::Comentar | EventKind::PedirInformacion | EventKind::Responder),
            }
        })
        .collect();
    // Any open case can be closed as a repeat of another one, answered or not.
    let may_close_duplicate = crate::oirs::domain::close_as_duplicate(case.status).is_some();
    let names = service::Names::load(&state.store).await?;
    let engine = state.chat.engine();
    let topics: Vec<_> = crate::web::case_topics(&engine.catalog)
        .into_iter()
        .filter(|(id, _)| *id != case.topic)
        .map(|(id, label)| context! { id => id, label => label })
        .collect();
    let events: Vec<_> = d
        .events
        .iter()
        .map(|e| {
            context! {
                at => local_time(state, e.at),
                label => event_label(&e.kind),
                actor => e.actor,
                to => e.to_status.as_deref().and_then(|s| s.parse::<Status>().ok()).map(|s| s.label()),
                department => e.department.as_deref().map(|d| names.department(d)),
                note => e.note,
                public => e.public,
            }
        })
        .collect();
    let all_departments = service::departments(&state.store).await?;
    let department_name = all_departments
        .iter()
        .find(|x| x.id == case.department)
        .map(|x| x.name.clone())
        .unwrap_or_else(|| case.department.clone());
    let departments: Vec<_> = all_departments
        .into_iter()
        .filter(|x| x.active && x.id != case.department)
        .collect();
    // A refused action shows its error beside that action, with what was typed kept.
    let (status, error, mut values) = match failed {
        Some((e, v)) => (e.status, Some(e.message).filter(|m| !m.is_empty()), v),
        None => (axum::http::StatusCode::OK, None, HashMap::new()),
    };
    let templates = crate::staff::templates::list(&state.store, Some(&case.department)).await?;
    if let Some(t) = values
        .get("plantilla")
        .and_then(|id| id.parse::<i64>().ok())
        .and_then(|id| templates.iter().find(|t| t.id == id))
    {
        let received = case
            .received_at
            .with_timezone(&state.tz)
            .format("%d-%m-%Y")
            .to_string();
        let text = crate::staff::templates::render(
            &t.body,
            &crate::staff::templates::Values {
                folio: &case.folio,
                nombre: &case.name,
                fecha_ingreso: &received,
                unidad: &department_name,
            },
        );
        values.insert("texto".to_string(), text);
    }
    let members = service::department_members(&state.store, Some(&case.department)).await?;
    let files: Vec<_> = d
        .attachments
        .iter()
        .map(|a| {
            context! {
                id => a.file.id, name => a.file.name, size => crate::web::size_label(a.file.bytes),
                thumbnail => a.has_thumbnail, from_staff => a.source == "staff",
            }
        })
        .collect();
    let staff_files = d.attachments.iter().filter(|a| a.source == "staff").count() as i64;
    // An answer is shown to its author once more before it goes to the resident.
    let confirm = confirm_answer.then(|| {
        context! {
            text => values.get("texto").cloned().unwrap_or_default(),
            email => case.email.clone(),
        }
    });
    let mut resp = c.page(
        state,
        "case.html",
        &case.folio,
        context! {
            case => case,
            satisfaction => d.satisfaction.as_ref().map(|r| context! {
                score => r.score, comment => r.comment, at => local_time(state, r.at),
            }),
            type_label => names.case_type(&case.case_type),
            channel_label => channel_label(case.channel.as_str()),
            topics => topics,
            may_close_duplicate => may_close_duplicate,
            confirm => confirm,
            topic_label => engine.catalog.topic_label(&case.topic),
            location => crate::oirs::location::Location::stored(case.lat, case.long).map(|l| context! {
                lat => format!("{:.6}", l.lat()), long => format!("{:.6}", l.long()), osm => l.osm_url(),
            }),
            department_name => department_name,
            status_label => case.status.label(),
            received => local_time(state, case.received_at),
            due => date_cl(case.due_date),
            days_left => d.days_left,
            unit => d.case.clock.unit(),
            unit_one => d.case.clock.unit_one(),
            right => d.case.data_right.as_deref().and_then(crate::oirs::domain::DataRight::parse)
                .map(|r| context! { label => r.label(), meaning => r.meaning() }),
            paused => case.paused_since.map(date_cl),
            events => events,
            actions => actions,
            departments => departments,
            notice => notice,
            action_error => error,
            values => values,
            templates => templates,
            members => members,
            files => files,
            may_attach => case.status != Status::Cerrado && staff_files < crate::oirs::attachments::MAX_PER_CASE,
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// Applies one action from the case page through the API handler.
async fn act(
    State(state): State<AppState>,
    c: Console,
    ApiPath(folio): ApiPath<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    c.require(CASE_ROLES)?;
    let kind = form.get("accion").map(String::as_str).unwrap_or("");
    let Some(kind) = EventKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
        return Err(ApiError::invalid("accion", "acción desconocida").into());
    };
    let filled = |k: &str| form.get(k).cloned().filter(|v| !v.trim().is_empty());
    // An answer goes to the resident only after its author saw it once more and confirmed.
    if kind == EventKind::Responder && filled("texto").is_some() && filled("confirmar").is_none() {
        return show(
            &state,
            &c,
            &folio,
            None,
            Some((confirm_pending(), form)),
            true,
        )
        .await;
    }
    let ev = EventIn {
        kind,
        department: filled("departamento"),
        text: filled("texto"),
        duplicate_of: filled("duplicado"),
        topic: filled("tema"),
        assignee: filled("asignado"),
    };
    match api::add_event(
        State(state.clone()),
        c.user.clone(),
        ApiPath(folio.clone()),
        ApiJson(ev),
    )
    .await
    {
        Ok(updated) => {
            // Department staff lose sight of a case derived away from them.
            if c.user.role == Role::Department
                && Some(&updated.0.department) != c.user.department.as_ref()
            {
                return Ok(see_other("/staff/casos", kind.as_str()));
            }
            Ok(see_other(&format!("/staff/casos/{folio}"), kind.as_str()))
        }
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            let message = match e.field.as_deref() {
                Some("text") => "Escriba el texto de la acción.".to_string(),
                Some("department") => "Elija el departamento de destino.".to_string(),
                Some("duplicate_of") => {
                    "Indique el folio del caso que este repite (por ejemplo OIRS-2026-000123)."
                        .to_string()
                }
                Some("topic") => "Elija el tema correcto.".to_string(),
                _ if e.status == axum::http::StatusCode::CONFLICT => {
                    "Esa acción no corresponde al estado actual del caso.".to_string()
                }
                _ => e.message.clone(),
            };
            let mut e = e;
            e.message = message;
            show(&state, &c, &folio, None, Some((e, form)), false).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Not an error: the answer waits for its author's confirmation (shown beside the action).
fn confirm_pending() -> ApiError {
    let mut e = ApiError::new(axum::http::StatusCode::OK, "confirm", "");
    e.field = Some("confirmar".into());
    e
}

fn channel_label(id: &str) -> &str {
    Channel::parse(id).map(|c| c.label()).unwrap_or(id)
}

async fn new_view(
    state: &AppState,
    c: &Console,
    values: HashMap<String, String>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(CASE_ROLES)?;
    let topics = crate::web::topic_choices(&state.chat.engine().catalog);
    let types: Vec<_> = service::case_types(&state.store)
        .await?
        .into_iter()
        .filter(|t| t.active)
        .collect();
    // Staff register what came by other channels than the web form and the chat.
    let channels: Vec<_> = Channel::ALL
        .into_iter()
        .filter(|c| !c.is_self_service())
        .map(|c| context! { id => c.as_str(), label => c.label() })
        .collect();
    let mut values = values;
    values.entry("recibido".into()).or_insert_with(|| {
        chrono::Utc::now()
            .with_timezone(&state.tz)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    });
    values
        .entry("clave_idempotencia".into())
        .or_insert_with(|| uuid::Uuid::new_v4().to_string());
    let errors: HashMap<&str, String> = error
        .map(|e| {
            let field = e
                .field
                .as_deref()
                .map(crate::web::form_field)
                .unwrap_or("descripcion");
            HashMap::from([(field, e.message.clone())])
        })
        .unwrap_or_default();
    let mut resp = c.page(
        state,
        "new.html",
        "Registrar un caso",
        context! { types => types, topics => topics, channels => channels, values => values, errors => errors, rights => crate::web::right_choices() },
    );
    if let Some(e) = error {
        *resp.status_mut() = e.status;
    }
    Ok(resp)
}

async fn new_page(State(state): State<AppState>, c: Console) -> PageResult {
    new_view(&state, &c, HashMap::new(), None).await
}

/// Registers a case received by another channel through the API handler; shows the folio and
/// tracking code to hand to the resident (the code is never shown again).
async fn register(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    c.require(CASE_ROLES)?;
    let v = |k: &str| {
        form.get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let built = (|| -> Result<api::StaffCaseIn, ApiError> {
        let channel = serde_json::from_value(serde_json::Value::String(v("canal")))
            .map_err(|_| ApiError::invalid("channel", "elija el canal de recepción"))?;
        let local = chrono::NaiveDateTime::parse_from_str(&v("recibido"), "%Y-%m-%dT%H:%M")
            .map_err(|_| ApiError::invalid("received_at", "indique fecha y hora de recepción"))?;
        let received_at = state
            .tz
            .from_local_datetime(&local)
            .earliest()
            .ok_or_else(|| {
                ApiError::invalid("received_at", "esa hora no existe (cambio de horario)")
            })?
            .with_timezone(&chrono::Utc);
        Ok(api::StaffCaseIn {
            case: crate::web::case_from_form(&form),
            channel,
            received_at: Some(received_at),
        })
    })();
    let result = match built {
        Ok(input) => {
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(key) = axum::http::HeaderValue::from_str(&v("clave_idempotencia")) {
                headers.insert("idempotency-key", key);
            }
            api::register(
                State(state.clone()),
                c.user.clone(),
                headers,
                ApiJson(input),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((_, filed)) => {
            let filed = filed.0;
            Ok(c.page(
                &state,
                "registered.html",
                "Caso registrado",
                context! { filed => filed, due => date_cl(filed.due_date) },
            ))
        }
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            new_view(&state, &c, form, Some(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Attaches a file from the case page (multipart with the CSRF token), through the API's rules.
async fn attach(
    State(state): State<AppState>,
    c: Console,
    ApiPath(folio): ApiPath<String>,
    req: axum::extract::Request,
) -> PageResult {
    let (values, files) = crate::web::attachments::read_form(&state, req).await?;
    c.verify(&values)?;
    c.require(CASE_ROLES)?;
    let fail = |e: ApiError, values: HashMap<String, String>| {
        let mut values = values;
        values.insert("accion".into(), "adjuntar".into());
        (e, values)
    };
    let Some((name, data)) = files.into_iter().next() else {
        let e = ApiError::invalid("archivo", "Elija un archivo para adjuntar.");
        return show(&state, &c, &folio, None, Some(fail(e, values)), false).await;
    };
    let outcome = async {
        let case = crate::staff::attachments::case_for(&state, &c.user, &folio).await?;
        if case.status == Status::Cerrado {
            return Err(ApiError::conflict(
                "closed",
                "El caso está cerrado: ya no se pueden adjuntar archivos.",
            ));
        }
        let prepared = tokio::task::spawn_blocking(move || {
            crate::oirs::attachments::prepare(name.as_deref(), &data)
        })
        .await
        .map_err(ApiError::internal)??;
        crate::staff::attachments::store_staff_file(&state, &c.user, &case, &prepared).await
    }
    .await;
    match outcome {
        Ok(_) => Ok(see_other(&format!("/staff/casos/{folio}"), "adjuntar")),
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            show(&state, &c, &folio, None, Some(fail(e, values)), false).await
        }
        Err(e) => Err(e.into()),
    }
}
