//! Staff single sign-on: `/staff/login/oidc` sends the browser to the municipality's provider;
//! the callback maps the configured claim to an active staff user (no account is ever created
//! here) and opens the same session as the password login, marked as single sign-on.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::{claim_str, cookie, https, state_cookie, CallbackQuery, SignInError};
use crate::app::AppState;
use crate::http::{ApiError, ApiQuery};
use crate::staff::auth::{self, Role, StaffUser};
use crate::store::{now_millis, Store, StoreError};
use crate::write_pool;

pub const LOGIN: &str = "/staff/login/oidc";
pub const CALLBACK: &str = "/staff/login/oidc/callback";
const STATE_COOKIE: &str = "ventanilla_oidc_staff";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(LOGIN, get(start))
        .route(CALLBACK, get(callback))
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

/// Whether a password login for this role is refused (the administrator requires single
/// sign-on for it).
pub fn password_refused(config: &crate::config::Config, role: Role) -> bool {
    config.staff_oidc.provider().enabled()
        && config
            .staff_oidc
            .sso_required_roles
            .iter()
            .any(|r| r == role.as_str())
}

async fn start(State(state): State<AppState>, ApiQuery(q): ApiQuery<StartQuery>) -> Response {
    let Some(provider) = state.providers.staff.as_ref() else {
        return page(
            StatusCode::NOT_FOUND,
            "El ingreso con la cuenta municipal no está habilitado. Ingrese con su usuario y contraseña.",
        );
    };
    let next = crate::console::safe_next(q.next.as_deref());
    match provider.begin(&state.store, "staff", Some(next)).await {
        Ok((url, flow_state)) => (
            [(
                header::SET_COOKIE,
                state_cookie(STATE_COOKIE, LOGIN, Some(&flow_state), https(&state.config)),
            )],
            Redirect::to(&url),
        )
            .into_response(),
        Err(e) => refusal(e),
    }
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let Some(provider) = state.providers.staff.as_ref() else {
        return page(
            StatusCode::NOT_FOUND,
            "El ingreso con la cuenta municipal no está habilitado.",
        );
    };
    let clear = state_cookie(STATE_COOKIE, LOGIN, None, https(&state.config));
    let signed = match q.checked(cookie(&headers, STATE_COOKIE).as_deref()) {
        Ok((code, flow_state)) => {
            provider
                .finish(&state.store, "staff", code, flow_state)
                .await
        }
        Err(e) => Err(e),
    };
    let signed = match signed {
        Ok(s) => s,
        Err(e) => {
            if matches!(e, SignInError::BadToken(_) | SignInError::BadState) {
                let _ = audit(&state.store, None, "sso_rechazado", &e.to_string()).await;
            }
            return with_cookie(refusal(e), clear);
        }
    };
    let claim = &state.config.staff_oidc.username_claim;
    let Some(username) = claim_str(&signed.claims, claim).map(str::to_string) else {
        let _ = audit(
            &state.store,
            None,
            "sso_rechazado",
            &format!("sin claim {claim}"),
        )
        .await;
        return with_cookie(refusal(SignInError::MissingClaim(claim.clone())), clear);
    };
    let user = match auth::find_user(&state.store, &username).await {
        Ok(found) => found.map(|(u, _)| u),
        Err(e) => return with_cookie(ApiError::from(e).into_response(), clear),
    };
    let Some(user) = user else {
        let _ = audit(
            &state.store,
            None,
            "sso_rechazado",
            &format!("usuario {username} no existe o está inactivo"),
        )
        .await;
        return with_cookie(
            page(
                StatusCode::FORBIDDEN,
                &format!(
                    "Su cuenta municipal ({username}) no corresponde a un usuario activo de la consola. \
                     Pida a un administrador que lo habilite."
                ),
            ),
            clear,
        );
    };
    let token = match create_sso_session(&state.store, user.id).await {
        Ok(t) => t,
        Err(e) => return with_cookie(ApiError::from(e).into_response(), clear),
    };
    let _ = audit(&state.store, Some(&user), "ingreso_sso", "").await;
    let next = crate::console::safe_next(signed.next.as_deref()).to_string();
    // The provider sent the browser here from its own site: a redirect would carry that
    // cross-site origin on, and the console's SameSite=Strict cookie would stay behind. A
    // page of this site that moves on by itself makes the next request same-site.
    let html = crate::console::render_page(
        "sso_ok.html",
        minijinja::context! { next => next, username => user.username },
    );
    let mut resp = match html {
        Ok(html) => crate::console::html_response(StatusCode::OK, html),
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    for c in [
        crate::staff::routes::session_cookie(&state.config, Some(&token)),
        clear,
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn with_cookie(mut resp: Response, cookie: String) -> Response {
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A sign-in that did not complete, in words staff can act on.
fn refusal(e: SignInError) -> Response {
    match e {
        SignInError::Unreachable(detail) => {
            tracing::warn!(%detail, "staff identity provider unreachable");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "No fue posible contactar al proveedor de identidad de la municipalidad. \
                 Inténtelo nuevamente en unos minutos o ingrese con su usuario y contraseña.",
            )
        }
        SignInError::BadState => page(
            StatusCode::BAD_REQUEST,
            "Este ingreso ya fue usado o expiró. Vuelva a ingresar desde la página de la consola.",
        ),
        SignInError::Denied(_) => page(
            StatusCode::FORBIDDEN,
            "El proveedor de identidad no autorizó el ingreso.",
        ),
        SignInError::BadToken(detail) => {
            tracing::warn!(%detail, "staff ID token refused");
            page(
                StatusCode::FORBIDDEN,
                "La respuesta del proveedor de identidad no es válida. Vuelva a ingresar.",
            )
        }
        SignInError::MissingClaim(_) => page(
            StatusCode::FORBIDDEN,
            "El proveedor de identidad no indicó su nombre de usuario. Avise a informática.",
        ),
        SignInError::Store(e) => ApiError::from(e).into_response(),
    }
}

fn page(status: StatusCode, message: &str) -> Response {
    match crate::console::render_page(
        "error.html",
        minijinja::context! { status => status.as_u16(), message => message },
    ) {
        Ok(html) => crate::console::html_response(status, html),
        Err(e) => e.into_response(),
    }
}

/// Opens a console session for a user the provider authenticated, marked as single sign-on.
pub async fn create_sso_session(store: &Store, user_id: i64) -> Result<String, StoreError> {
    let (token, digest) = auth::new_token();
    let now = now_millis();
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at, sso) VALUES ($1, $2, $3, $4, TRUE)")
            .bind(&digest)
            .bind(user_id)
            .bind(now)
            .bind(now + crate::staff::routes::SESSION_TTL_MS)
            .execute(pool)
            .await?;
    });
    Ok(token)
}

/// Writes a sign-in or a refusal to the audit log; a refusal has no user, and is logged
/// under the name the provider gave, or `sso` when it gave none.
async fn audit(
    store: &Store,
    user: Option<&StaffUser>,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO audit_log (at, user_id, username, action, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now_millis())
            .bind(user.map(|u| u.id))
            .bind(user.map_or("sso", |u| u.username.as_str()))
            .bind(action)
            .bind(detail)
            .execute(pool)
            .await?;
    });
    Ok(())
}
