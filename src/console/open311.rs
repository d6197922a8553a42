//! The console's Open311 page (administrators): the keys apps file GeoReport reports with,
//! issuing one (shown once) and revoking, through the administration API's handlers.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;

use super::{local_time, see_other, Console, PageResult};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::open311::keys::{self, IssuedKey, KeyIn};
use crate::staff::auth::Role;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/admin/open311", get(page).post(issue))
        .route("/staff/admin/open311/{id}/revocar", post(revoke))
}

#[derive(Deserialize, Default)]
struct Notice {
    ok: Option<String>,
}

async fn view(
    state: &AppState,
    c: &Console,
    issued: Option<&IssuedKey>,
    notice: Option<&str>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(&[Role::Admin])?;
    let list: Vec<_> = keys::list(&state.store)
        .await?
        .into_iter()
        .map(|k| {
            context! {
                id => k.id, name => k.name, created => local_time(state, k.created_at),
                created_by => k.created_by, revoked => k.revoked_at.map(|t| local_time(state, t)),
            }
        })
        .collect();
    let base = state.config.public_base_url.trim_end_matches('/');
    let mut resp = c.page(
        state,
        "open311.html",
        "Open311: claves de aplicaciones",
        context! {
            keys => list,
            issued => issued.map(|k| context! { name => k.info.name, key => k.api_key }),
            endpoint => format!("{base}{}", crate::open311::BASE),
            notice => notice,
            error => error.map(|e| e.message.clone()),
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
    let notice = (n.ok.as_deref() == Some("revocada")).then_some("Clave revocada.");
    view(&state, &c, None, notice, None).await
}

async fn issue(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    c.require(&[Role::Admin])?;
    let input = KeyIn {
        name: form.get("nombre").cloned().unwrap_or_default(),
    };
    match keys::issue_key(State(state.clone()), c.user.clone(), ApiJson(input)).await {
        Ok((_, issued)) => {
            let notice = "Clave emitida. Cópiela ahora: no se volverá a mostrar.";
            view(&state, &c, Some(&issued.0), Some(notice), None).await
        }
        Err(e) if e.status.is_client_error() => view(&state, &c, None, None, Some(&e)).await,
        Err(e) => Err(e.into()),
    }
}

async fn revoke(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let _revoked = keys::revoke_key(State(state.clone()), c.user.clone(), ApiPath(id)).await?;
    Ok(see_other("/staff/admin/open311", "revocada"))
}
