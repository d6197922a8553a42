//! The console page where administrators keep the reply templates (through the API's
//! handlers, so the rules and the audit are the same).

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;

use super::{notice, see_other, Console, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::oirs::service;
use crate::staff::auth::Role;
use crate::staff::templates::{self as api, TemplateIn};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/admin/plantillas", get(page).post(create))
        .route("/staff/admin/plantillas/{id}", post(change))
}

#[derive(Deserialize, Default)]
struct Notice {
    ok: Option<String>,
}

async fn view(
    state: &AppState,
    c: &Console,
    ok: Option<&str>,
    error: Option<&ApiError>,
    values: &HashMap<String, String>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    let templates = api::list(&state.store, None).await?;
    let departments = service::departments(&state.store).await?;
    let mut resp = c.page(
        state,
        "templates.html",
        "Plantillas de respuesta",
        context! {
            templates => templates, departments => departments, notice => notice(ok),
            error => error.map(|e| e.message.clone()), values => values,
        },
    );
    if let Some(e) = error {
        *resp.status_mut() = e.status;
    }
    Ok(resp)
}

async fn page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(n): ApiQuery<Notice>,
) -> PageResult {
    view(&state, &c, n.ok.as_deref(), None, &HashMap::new()).await
}

fn input(form: &HashMap<String, String>) -> TemplateIn {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    TemplateIn {
        department: Some(get("departamento")).filter(|d| !d.trim().is_empty()),
        title: get("titulo"),
        body: get("texto"),
    }
}

async fn create(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    match api::create(State(state.clone()), c.user.clone(), ApiJson(input(&form))).await {
        Ok(_) => Ok(see_other("/staff/admin/plantillas", "plantilla")),
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            view(&state, &c, None, Some(&e), &form).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Saves or (with `borrar`) deletes one template.
async fn change(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let outcome = if form.contains_key("borrar") {
        api::delete(State(state.clone()), c.user.clone(), ApiPath(id))
            .await
            .map(|_| "plantilla_borrada")
    } else {
        api::replace(
            State(state.clone()),
            c.user.clone(),
            ApiPath(id),
            ApiJson(input(&form)),
        )
        .await
        .map(|_| "plantilla")
    };
    match outcome {
        Ok(code) => Ok(see_other("/staff/admin/plantillas", code)),
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            view(&state, &c, None, Some(&e), &HashMap::new()).await
        }
        Err(e) => Err(e.into()),
    }
}
