//! Residents signed in with ClaveÚnica: `/mi-cuenta` lists every case filed with their RUT
//! and shows each one (history and answer) without a tracking code; the OIRS form files with
//! the RUT from the session, marked as a verified identity. The RUN comes from the `RolUnico`
//! claim. Sessions are short, stored hashed, and end at the provider too.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde_json::{Map, Value};

use super::{claim_str, cookie, https, state_cookie, CallbackQuery, SignInError};
use crate::app::AppState;
use crate::http::{ApiError, ApiPath, ApiQuery};
use crate::oirs::rut::Rut;
use crate::store::{now_millis, sha256_hex, Store, StoreError};
use crate::{with_pool, write_pool};

pub const CALLBACK: &str = "/mi-cuenta/callback";
const STATE_COOKIE: &str = "ventanilla_oidc_vecino";
pub const SESSION_COOKIE: &str = "ventanilla_vecino";
/// A resident's session: short, as on other State services.
pub const SESSION_TTL_MS: i64 = 30 * 60 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mi-cuenta", get(account))
        .route("/mi-cuenta/ingresar", get(start))
        .route(CALLBACK, get(callback))
        .route("/mi-cuenta/salir", post(logout))
        .route("/mi-cuenta/casos/{folio}", get(case))
}

/// A resident signed in with ClaveÚnica.
pub struct Resident {
    pub rut: String,
    pub name: String,
    id_token: Option<String>,
}

/// The resident of the request's session cookie, if it is a live session.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Resident>, StoreError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(super::resident_session(&state.store, &token)
        .await?
        .map(|(rut, name, id_token)| Resident {
            rut,
            name,
            id_token,
        }))
}

/// The RUN of ClaveÚnica's `RolUnico` claim (`{"numero": 12345678, "DV": "5", "tipo": "RUN"}`),
/// checked like any RUT.
pub fn run_from_claims(claims: &Map<String, Value>) -> Option<Rut> {
    let rol = claims.get("RolUnico")?;
    let numero = match rol.get("numero")? {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let dv = rol.get("DV")?.as_str()?;
    Rut::parse(&format!("{numero}-{dv}")).ok()
}

/// The resident's name: ClaveÚnica sends `{"nombres": [...], "apellidos": [...]}`; other
/// providers a plain string.
pub fn name_from_claims(claims: &Map<String, Value>) -> String {
    match claims.get("name") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Object(o)) => {
            let words = |k: &str| {
                o.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            };
            format!("{} {}", words("nombres"), words("apellidos"))
                .trim()
                .to_string()
        }
        _ => claim_str(claims, "given_name")
            .unwrap_or_default()
            .to_string(),
    }
}

fn page(state: &AppState, status: StatusCode, ctx: minijinja::Value) -> Response {
    let mut resp = crate::web::render_page(
        state,
        context! { page => "cuenta", title => "Mi cuenta", ..ctx },
    );
    *resp.status_mut() = status;
    crate::web::no_store(resp)
}

fn message(state: &AppState, status: StatusCode, text: &str) -> Response {
    page(
        state,
        status,
        context! { problem => text, enabled => state.providers.claveunica.is_some() },
    )
}

const DISABLED: &str = "El ingreso con ClaveÚnica no está habilitado. Puede seguir su caso con el folio y el código de seguimiento.";

async fn start(State(state): State<AppState>) -> Response {
    let Some(provider) = state.providers.claveunica.as_ref() else {
        return message(&state, StatusCode::NOT_FOUND, DISABLED);
    };
    match provider.begin(&state.store, "resident", None).await {
        Ok((url, flow_state)) => (
            [(
                header::SET_COOKIE,
                state_cookie(
                    STATE_COOKIE,
                    "/mi-cuenta",
                    Some(&flow_state),
                    https(&state.config),
                ),
            )],
            Redirect::to(&url),
        )
            .into_response(),
        Err(e) => refusal(&state, e),
    }
}

fn refusal(state: &AppState, e: SignInError) -> Response {
    let (status, text) = match e {
        SignInError::Unreachable(detail) => {
            tracing::warn!(%detail, "ClaveÚnica unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "No fue posible contactar a ClaveÚnica. Inténtelo nuevamente en unos minutos.",
            )
        }
        SignInError::BadState => (
            StatusCode::BAD_REQUEST,
            "Este ingreso ya fue usado o expiró. Vuelva a ingresar con ClaveÚnica.",
        ),
        SignInError::Denied(_) => (
            StatusCode::FORBIDDEN,
            "ClaveÚnica no autorizó el ingreso. Puede intentarlo nuevamente.",
        ),
        SignInError::BadToken(detail) => {
            tracing::warn!(%detail, "ClaveÚnica ID token refused");
            (
                StatusCode::FORBIDDEN,
                "La respuesta de ClaveÚnica no es válida. Vuelva a ingresar.",
            )
        }
        SignInError::MissingClaim(_) => (
            StatusCode::FORBIDDEN,
            "ClaveÚnica no informó su RUN. Vuelva a ingresar y autorice compartirlo.",
        ),
        SignInError::Store(e) => return ApiError::from(e).into_response(),
    };
    message(state, status, text)
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let Some(provider) = state.providers.claveunica.as_ref() else {
        return message(&state, StatusCode::NOT_FOUND, DISABLED);
    };
    let secure = https(&state.config);
    let clear = state_cookie(STATE_COOKIE, "/mi-cuenta", None, secure);
    let signed = match q.checked(cookie(&headers, STATE_COOKIE).as_deref()) {
        Ok((code, flow_state)) => {
            provider
                .finish(&state.store, "resident", code, flow_state)
                .await
        }
        Err(e) => Err(e),
    };
    let outcome = match signed {
        Ok(s) => match run_from_claims(&s.claims) {
            Some(rut) => Ok((rut, name_from_claims(&s.claims), s.id_token)),
            None => Err(SignInError::MissingClaim("RolUnico".into())),
        },
        Err(e) => Err(e),
    };
    let (rut, name, id_token) = match outcome {
        Ok(o) => o,
        Err(e) => return with_cookies(refusal(&state, e), [clear]),
    };
    match open_session(&state.store, &rut.to_string(), &name, &id_token).await {
        Ok(token) => with_cookies(
            Redirect::to("/mi-cuenta").into_response(),
            [clear, session_cookie(Some(&token), secure)],
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn with_cookies<const N: usize>(mut resp: Response, cookies: [String; N]) -> Response {
    for c in cookies {
        if let Ok(v) = c.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The session cookie: HttpOnly, SameSite=Lax (the provider sends the browser back from its
/// site), `Secure` over https, gone after the session's 30 minutes.
fn session_cookie(token: Option<&str>, secure: bool) -> String {
    super::lax_cookie(SESSION_COOKIE, "/", token, SESSION_TTL_MS, secure)
}

async fn open_session(
    store: &Store,
    rut: &str,
    name: &str,
    id_token: &str,
) -> Result<String, StoreError> {
    let (token, digest) = crate::staff::auth::new_token();
    let now = now_millis();
    write_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO resident_sessions (token_hash, rut, name, id_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&digest)
        .bind(rut)
        .bind(name)
        .bind(id_token)
        .bind(now)
        .bind(now + SESSION_TTL_MS)
        .execute(pool)
        .await?;
    });
    Ok(token)
}

/// One line of the resident's list of cases.
#[derive(serde::Serialize)]
struct CaseLine {
    folio: String,
    type_label: String,
    topic_label: String,
    status_label: String,
    department_name: String,
    due: String,
    received: String,
}

async fn cases_of(state: &AppState, rut: &str) -> Result<Vec<CaseLine>, ApiError> {
    let rows: Vec<(String, String, String, String, String, String, i64)> = with_pool!(&state.store, pool => {
        sqlx::query_as(
            "SELECT folio, case_type, topic, status, department_id, due_date, received_at FROM cases \
             WHERE rut = $1 ORDER BY received_at DESC",
        )
        .bind(rut)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from)?
    });
    let names = crate::oirs::service::Names::load(&state.store).await?;
    let engine = state.chat.engine();
    Ok(rows
        .into_iter()
        .map(
            |(folio, case_type, topic, status, department, due, received)| CaseLine {
                folio,
                type_label: names.case_type(&case_type),
                topic_label: engine.catalog.topic_label(&topic),
                status_label: status
                    .parse::<crate::oirs::domain::Status>()
                    .map(|s| s.label().to_string())
                    .unwrap_or(status),
                department_name: names.department(&department),
                due: crate::oirs::service::date(&due)
                    .format("%d-%m-%Y")
                    .to_string(),
                received: crate::oirs::service::millis(received)
                    .with_timezone(&state.tz)
                    .format("%d-%m-%Y")
                    .to_string(),
            },
        )
        .collect())
}

async fn account(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(resident) = signed_in(&state, &headers).await? else {
        let enabled = state.providers.claveunica.is_some();
        return Ok(page(
            &state,
            StatusCode::OK,
            context! { enabled => enabled },
        ));
    };
    let cases = cases_of(&state, &resident.rut).await?;
    Ok(page(
        &state,
        StatusCode::OK,
        context! {
            resident => context! { name => resident.name, rut => display_rut(&resident.rut) },
            cases => cases,
            enabled => true,
        },
    ))
}

/// A RUT as residents write it: 12.345.678-5.
pub fn display_rut(rut: &str) -> String {
    let Some((number, dv)) = rut.split_once('-') else {
        return rut.to_string();
    };
    let digits: Vec<char> = number.chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(*c);
    }
    format!("{out}-{dv}")
}

/// One of the resident's cases, with its history and answer: the session's RUT stands for the
/// tracking code, so another person's folio answers as unknown.
async fn case(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: crate::http::throttle::ClientAddr,
    ApiPath(folio): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(resident) = signed_in(&state, &headers).await? else {
        return Ok(Redirect::to("/mi-cuenta").into_response());
    };
    let form = crate::web::TrackForm {
        folio: Some(folio.clone()),
        code: None,
        rut: Some(resident.rut.clone()),
    };
    crate::web::track_view(&state, client, form, None, None).await
}

/// Ends the session here and, when the provider offers it, at ClaveÚnica too. The way there
/// is a page that moves on by itself: the pages' CSP (`form-action 'self'`) would stop a form's
/// redirect to another site.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let secure = https(&state.config);
    let mut to = None;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let resident = signed_in(&state, &headers).await?;
        write_pool!(&state.store, pool => {
            sqlx::query("DELETE FROM resident_sessions WHERE token_hash = $1")
                .bind(sha256_hex(token.as_bytes()))
                .execute(pool)
                .await
                .map_err(StoreError::from)?;
        });
        if let (Some(resident), Some(provider)) = (resident, state.providers.claveunica.as_ref()) {
            // The provider's logout is best effort: an unreachable provider still logs out here.
            if let Ok(d) = provider.discovered().await {
                if let Some(end) = &d.end_session_endpoint {
                    to = Some(end_session_url(
                        end,
                        resident.id_token.as_deref(),
                        &provider.settings.client_id,
                        &format!(
                            "{}/mi-cuenta",
                            state.config.public_base_url.trim_end_matches('/')
                        ),
                    ));
                }
            }
        }
    }
    let resp = match to {
        Some(end) => page(
            &state,
            StatusCode::OK,
            context! { signed_out => true, refresh => end, enabled => true },
        ),
        None => Redirect::to("/mi-cuenta").into_response(),
    };
    Ok(with_cookies(resp, [session_cookie(None, secure)]))
}

/// The provider's end-session address (OpenID Connect RP-Initiated Logout).
pub fn end_session_url(end: &str, id_token: Option<&str>, client_id: &str, back: &str) -> String {
    let Ok(mut url) = url::Url::parse(end) else {
        return "/mi-cuenta".to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        if let Some(t) = id_token {
            q.append_pair("id_token_hint", t);
        }
        q.append_pair("client_id", client_id);
        q.append_pair("post_logout_redirect_uri", back);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_comes_from_rol_unico() {
        let claims = |v: Value| v.as_object().cloned().expect("object");
        let ok =
            claims(serde_json::json!({"RolUnico": {"numero": 12345678, "DV": "5", "tipo": "RUN"}}));
        assert_eq!(
            run_from_claims(&ok).map(|r| r.to_string()).as_deref(),
            Some("12345678-5")
        );
        let text = claims(serde_json::json!({"RolUnico": {"numero": "12345678", "DV": "5"}}));
        assert!(run_from_claims(&text).is_some());
        let wrong_dv = claims(serde_json::json!({"RolUnico": {"numero": 12345678, "DV": "4"}}));
        assert!(run_from_claims(&wrong_dv).is_none());
        assert!(run_from_claims(&claims(serde_json::json!({"sub": "x"}))).is_none());
    }

    #[test]
    fn names_read_in_both_shapes() {
        let claims = |v: Value| v.as_object().cloned().expect("object");
        let cu = claims(
            serde_json::json!({"name": {"nombres": ["María", "José"], "apellidos": ["Pérez", "Soto"]}}),
        );
        assert_eq!(name_from_claims(&cu), "María José Pérez Soto");
        assert_eq!(
            name_from_claims(&claims(serde_json::json!({"name": "Ana Díaz"}))),
            "Ana Díaz"
        );
    }

    #[test]
    fn ruts_show_with_dots() {
        assert_eq!(display_rut("12345678-5"), "12.345.678-5");
        assert_eq!(display_rut("1234567-4"), "1.234.567-4");
    }

    #[test]
    fn end_session_carries_the_hint_and_the_way_back() {
        let url = end_session_url(
            "https://idp.example/logout",
            Some("t.o.k"),
            "c1",
            "https://oirs.example/mi-cuenta",
        );
        assert!(url.starts_with("https://idp.example/logout?id_token_hint=t.o.k&client_id=c1&post_logout_redirect_uri=https%3A%2F%2Foirs.example%2Fmi-cuenta"), "{url}");
    }
}
