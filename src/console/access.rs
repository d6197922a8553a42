//! Console pages for access beyond the password: enrolling the second factor (every staff
//! member) and support grants (administrators: grant, watch, revoke, read the summary).
//! Both go through the API's functions, so the rules and the audit are the same.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;

use super::{local_millis, notice, see_other, Console, PageError, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiPath, ApiQuery};
use crate::staff::access::{self as api, GrantIn};
use crate::staff::auth::Role;
use crate::staff::second_factor::{self, Enrolment};
use crate::staff::support::{self, Scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/2fa", get(enrolment_page).post(enrolment_confirm))
        .route("/staff/admin/soporte", get(grants_page).post(grant_create))
        .route(
            "/staff/admin/soporte/{id}",
            get(grant_page).post(grant_revoke),
        )
}

#[derive(Deserialize, Default)]
struct Notice {
    ok: Option<String>,
}

/// The enrolment page: the QR code of a pending secret (issued on the first visit), or a
/// note that the second factor is active.
async fn enrolment_view(state: &AppState, c: &Console, error: Option<&ApiError>) -> PageResult {
    let enrolment = second_factor::enrolment(&state.store, c.user.id).await?;
    let pending = match enrolment {
        Enrolment::Confirmed => None,
        Enrolment::Pending => second_factor::pending_secret(&state.store, c.user.id).await?,
        Enrolment::None => second_factor::start(&state.store, c.user.id).await?,
    };
    let qr = pending
        .as_ref()
        .map(|s| second_factor::qr_svg(&second_factor::otpauth_uri(s, &c.user.username)));
    let mut resp = c.page(
        state,
        "enrol.html",
        "Segundo factor",
        context! {
            active => enrolment == Enrolment::Confirmed,
            required => state.config.requires_2fa(c.user.role) || c.user.enrol_only,
            enrol_only => c.user.enrol_only,
            secret => pending,
            qr => qr.map(minijinja::Value::from_safe_string),
            error => error.map(|e| e.message.clone()),
        },
    );
    if let Some(e) = error {
        *resp.status_mut() = e.status;
    }
    Ok(resp)
}

async fn enrolment_page(State(state): State<AppState>, c: Console) -> PageResult {
    enrolment_view(&state, &c, None).await
}

/// Confirms with a first code and shows the recovery codes, once.
async fn enrolment_confirm(
    State(state): State<AppState>,
    c: Console,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let code = form.get("codigo").map(String::as_str).unwrap_or("");
    match api::confirm(&state, &headers, &c.user, code).await {
        Ok(codes) => {
            let c = Console {
                user: crate::staff::auth::StaffUser {
                    enrol_only: false,
                    ..c.user.clone()
                },
                ..c
            };
            Ok(c.page(
                &state,
                "enrol.html",
                "Segundo factor",
                context! { active => true, recovery_codes => codes },
            ))
        }
        Err(e) if e.status.is_client_error() => enrolment_view(&state, &c, Some(&e)).await,
        Err(e) => Err(e.into()),
    }
}

async fn grants_view(
    state: &AppState,
    c: &Console,
    ok: Option<&str>,
    error: Option<&ApiError>,
    values: &HashMap<String, String>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    if c.user.support.is_some() {
        return Err(PageError(ApiError::forbidden()));
    }
    support::end_expired(&state.store, &state.config.public_base_url).await?;
    let support_users: Vec<String> = crate::staff::users::list_users(&state.store)
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Support && u.active)
        .map(|u| u.username)
        .collect();
    let grants: Vec<_> = support::list(&state.store, 100)
        .await?
        .into_iter()
        .map(|g| grant_row(state, g))
        .collect();
    let mut resp = c.page(
        state,
        "support.html",
        "Acceso de soporte",
        context! {
            grants => grants, support_users => support_users, notice => notice(ok),
            error => error.map(|e| e.message.clone()), values => values,
        },
    );
    if let Some(e) = error {
        *resp.status_mut() = e.status;
    }
    Ok(resp)
}

/// A grant as the pages show it: local times and Spanish labels.
fn grant_row(state: &AppState, g: support::Grant) -> minijinja::Value {
    let local = |rfc: &str| {
        chrono::DateTime::parse_from_rfc3339(rfc)
            .map(|t| local_millis(state, t.timestamp_millis()))
            .unwrap_or_default()
    };
    let status = if g.active {
        "Vigente"
    } else if g.revoked_at.is_some() {
        "Revocada"
    } else {
        "Vencida"
    };
    context! {
        id => g.id, username => g.username, reason => g.reason,
        scope => g.scope.label(), granted_by => g.granted_by,
        created => local(&g.created_at), expires => local(&g.expires_at),
        revoked => g.revoked_at.as_deref().map(local), revoked_by => g.revoked_by,
        active => g.active, status => status,
        summary => g.summary.map(|s| context! {
            requests => s.requests, records_read => s.records_read,
            actions => s.actions.iter().map(|a| context! {
                at => local(&a.at), action => a.action,
            }).collect::<Vec<_>>(),
        }),
    }
}

async fn grants_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    grants_view(&state, &c, n.ok.as_deref(), None, &HashMap::new()).await
}

async fn grant_create(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let input = GrantIn {
        username: get("usuario"),
        reason: get("motivo"),
        minutes: get("minutos").trim().parse().unwrap_or(0),
        scope: Scope::parse(&get("alcance")).into_iter().collect(),
    };
    match api::grant(&state, &c.user, &input).await {
        Ok((id, _)) => Ok(see_other(&format!("/staff/admin/soporte/{id}"), "soporte")),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            grants_view(&state, &c, None, Some(&e), &form).await
        }
        Err(e) => Err(e.into()),
    }
}

/// One grant: while active, the live list of the support user's requests (the page reloads
/// itself) and the revoke button; once ended, the summary.
async fn grant_page(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    if c.user.support.is_some() {
        return Err(PageError(ApiError::forbidden()));
    }
    let grant = support::get(&state.store, id, &state.config.public_base_url)
        .await?
        .ok_or_else(|| ApiError::not_found("support grant"))?;
    let actions: Vec<_> = support::actions(&state.store, id)
        .await?
        .into_iter()
        .map(|a| {
            let at = chrono::DateTime::parse_from_rfc3339(&a.at)
                .map(|t| local_millis(&state, t.timestamp_millis()))
                .unwrap_or_default();
            context! { at => at, action => a.action, folio => a.folio }
        })
        .collect();
    Ok(c.page(
        &state,
        "support_grant.html",
        "Autorización de soporte",
        context! {
            grant => grant_row(&state, grant), actions => actions,
            notice => notice(n.ok.as_deref()),
        },
    ))
}

async fn grant_revoke(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    api::revoke(&state, &c.user, id).await?;
    Ok(see_other(
        &format!("/staff/admin/soporte/{id}"),
        "soporte_revocado",
    ))
}
