//! The staff console at /staff: server-rendered pages (no JavaScript) over the same handlers
//! as the staff, analytics and admin APIs, so a page can never show or do more than the API
//! allows its user. Cookie sessions only; every form carries the session's anti-CSRF token.

mod access;
mod admin;
mod analytics;
mod cases;
mod open311;
mod privacy;
mod review;
mod subjects;
mod templates;

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment, Value};
use serde::Deserialize;

use crate::app::AppState;
use crate::http::{ApiError, ApiQuery, PublicLimit};
use crate::staff::auth::{self, Role, StaffUser};
use crate::staff::routes::{
    authenticate, complete_login, session_cookie, CodeStep, LoggedIn, Pending,
};
use crate::store::StoreError;

const STAFF_CSS: &str = include_str!("../../static/staff.css");

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/staff/base.html")),
    (
        "login.html",
        include_str!("../../templates/staff/login.html"),
    ),
    (
        "error.html",
        include_str!("../../templates/staff/error.html"),
    ),
    (
        "inbox.html",
        include_str!("../../templates/staff/inbox.html"),
    ),
    ("case.html", include_str!("../../templates/staff/case.html")),
    (
        "templates.html",
        include_str!("../../templates/staff/templates.html"),
    ),
    ("new.html", include_str!("../../templates/staff/new.html")),
    (
        "registered.html",
        include_str!("../../templates/staff/registered.html"),
    ),
    (
        "analytics.html",
        include_str!("../../templates/staff/analytics.html"),
    ),
    (
        "users.html",
        include_str!("../../templates/staff/users.html"),
    ),
    (
        "params.html",
        include_str!("../../templates/staff/params.html"),
    ),
    (
        "catalog.html",
        include_str!("../../templates/staff/catalog.html"),
    ),
    (
        "outbox.html",
        include_str!("../../templates/staff/outbox.html"),
    ),
    (
        "audit.html",
        include_str!("../../templates/staff/audit.html"),
    ),
    (
        "privacidad.html",
        include_str!("../../templates/staff/privacidad.html"),
    ),
    ("_registro.html", crate::web::REGISTER),
    (
        "review.html",
        include_str!("../../templates/staff/review.html"),
    ),
    (
        "review_draft.html",
        include_str!("../../templates/staff/review_draft.html"),
    ),
    (
        "subject.html",
        include_str!("../../templates/staff/subject.html"),
    ),
    (
        "enrol.html",
        include_str!("../../templates/staff/enrol.html"),
    ),
    (
        "support.html",
        include_str!("../../templates/staff/support.html"),
    ),
    (
        "support_grant.html",
        include_str!("../../templates/staff/support_grant.html"),
    ),
    (
        "open311.html",
        include_str!("../../templates/staff/open311.html"),
    ),
    (
        "sso_ok.html",
        include_str!("../../templates/staff/sso_ok.html"),
    ),
];

fn templates() -> &'static Result<Environment<'static>, minijinja::Error> {
    static ENV: OnceLock<Result<Environment<'static>, minijinja::Error>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        Ok(env)
    })
}

/// Renders one of the console's templates (for pages outside this module, such as sign-in).
pub(crate) fn render_page(name: &str, ctx: Value) -> Result<String, ApiError> {
    render_template(name, ctx)
}

fn render_template(name: &str, ctx: Value) -> Result<String, ApiError> {
    let env = templates().as_ref().map_err(ApiError::internal)?;
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(ApiError::internal)
}

pub fn router(limit: PublicLimit) -> Router<AppState> {
    let login = limit(Router::new().route("/staff/ingreso", get(login_page).post(login_submit)));
    Router::new()
        .route("/staff", get(home))
        .route("/staff/salir", post(logout))
        .route("/static/staff.css", get(css))
        .merge(login)
        .merge(cases::router())
        .merge(analytics::router())
        .merge(admin::router())
        .merge(privacy::router())
        .merge(subjects::router())
        .merge(review::router())
        .merge(templates::router())
        .merge(access::router())
        .merge(open311::router())
}

async fn css(h: HeaderMap) -> Response {
    crate::web::asset(&h, "text/css", STAFF_CSS)
}

/// A signed-in staff member on a console page, with the session's anti-CSRF token.
pub struct Console {
    pub user: StaffUser,
    pub csrf: String,
    /// The name of the user's department, as the header shows it.
    pub department_name: Option<String>,
    /// Whether the user answers personal-data requests (admins, and that unit's staff).
    pub handles_data_subjects: bool,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/staff".into());
        let to_login = |reason: &str| {
            let mut url = format!("/staff/ingreso?next={}", urlencode(&next));
            if !reason.is_empty() {
                url.push_str("&motivo=");
                url.push_str(reason);
            }
            (
                [(header::SET_COOKIE, session_cookie(&state.config, None))],
                Redirect::to(&url),
            )
                .into_response()
        };
        let Some(token) = auth::session_cookie(&parts.headers) else {
            return Err(to_login(""));
        };
        match auth::session_user(&state.store, &token, &parts.method, parts.uri.path()).await {
            Ok(Some(Err(auth::Refusal::EnrolmentRequired))) => {
                Err(Redirect::to("/staff/2fa").into_response())
            }
            Ok(Some(Err(refusal))) => Err(PageError(refusal.into()).into_response()),
            Ok(Some(Ok(user))) => {
                let department_name = match &user.department {
                    Some(d) => crate::oirs::service::departments(&state.store)
                        .await
                        .map_err(|e| PageError::from(e).into_response())?
                        .into_iter()
                        .find(|x| &x.id == d)
                        .map(|x| x.name),
                    None => None,
                };
                let handles_data_subjects = crate::staff::subjects::may_handle(state, &user)
                    .await
                    .map_err(|e| PageError(e).into_response())?;
                Ok(Console {
                    user,
                    csrf: auth::csrf_token(&token),
                    department_name,
                    handles_data_subjects,
                })
            }
            Ok(None) => Err(to_login("expirada")),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

impl Console {
    /// Checks the anti-CSRF token a form sent back.
    pub fn verify(&self, form: &HashMap<String, String>) -> Result<(), PageError> {
        let sent = form.get("_csrf").map(String::as_str).unwrap_or("");
        if auth::same_token(sent, &self.csrf) {
            Ok(())
        } else {
            Err(PageError(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "El formulario venció o no proviene de la consola. Vuelva a la página e inténtelo de nuevo.",
            )))
        }
    }

    pub fn require(&self, roles: &[Role]) -> Result<(), PageError> {
        self.user.require(roles).map_err(PageError)
    }

    /// Renders a console page with the navigation this user may see.
    pub fn page(&self, state: &AppState, name: &str, title: &str, ctx: Value) -> Response {
        let role = self.user.role;
        // A support user sees the entries its grant's scope reaches, and the time left.
        let support = self.user.support.as_ref().map(|g| {
            context! {
                minutes_left => g.minutes_left(crate::store::now_millis()),
                scope_label => g.scope.label(),
            }
        });
        let in_support = support.is_some();
        let support_cases = self
            .user
            .support
            .as_ref()
            .is_some_and(|g| g.scope == crate::staff::support::Scope::Cases);
        let base = context! {
            title => title,
            municipality => state.chat.engine().catalog.profile.get("municipio"),
            me => context! {
                username => self.user.username,
                role => role.as_str(),
                role_label => if in_support { "Soporte" } else { role_label(role) },
                department => self.department_name.clone().or_else(|| self.user.department.clone()),
            },
            can_subjects => self.handles_data_subjects && !in_support,
            csrf => self.csrf,
            can_cases => if in_support { support_cases } else { role != Role::Analyst },
            can_analytics => matches!(role, Role::Analyst | Role::Admin) && !in_support,
            can_outbox => matches!(role, Role::Admin | Role::Coordinator),
            is_admin => role == Role::Admin && !in_support,
            support => support,
        };
        match render_template(name, context! { ..ctx, ..base }) {
            Ok(html) => html_response(StatusCode::OK, html),
            Err(e) => PageError(e).into_response(),
        }
    }
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Administración",
        Role::Coordinator => "Coordinación OIRS",
        Role::Department => "Departamento",
        Role::Analyst => "Análisis",
        Role::Support => "Soporte",
    }
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = (status, axum::response::Html(html)).into_response();
    // Pages with personal data must not linger in shared caches or the back button.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error shown as a console page with its HTTP status (403, 404, 409, 422…).
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = e.status;
        let message = match status {
            StatusCode::FORBIDDEN if e.code == "no_support_grant" => {
                "Su acceso de soporte no está autorizado en este momento: un administrador debe concederlo."
                    .to_string()
            }
            StatusCode::FORBIDDEN if e.code == "outside_support_scope" => {
                "Esta sección está fuera del alcance de su autorización de soporte.".to_string()
            }
            StatusCode::FORBIDDEN if e.code != "csrf" => {
                "Su perfil no tiene acceso a esta página o a este caso.".to_string()
            }
            StatusCode::NOT_FOUND => "No encontramos lo que busca.".to_string(),
            s if s.is_server_error() => {
                // The detail stays in the server log (ApiError::internal logs it).
                "Ocurrió un error en el servidor. Inténtelo nuevamente en unos minutos.".to_string()
            }
            _ => e.message.clone(),
        };
        match render_template(
            "error.html",
            context! { status => status.as_u16(), message => message },
        ) {
            Ok(html) => html_response(status, html),
            Err(_) => (status, message).into_response(),
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// A 303 to a console page with a short notice code (see `notice`).
pub fn see_other(path: &str, notice: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}ok={notice}")).into_response()
}

/// The Spanish text of a notice code put in the URL after an action.
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "derivar" => "Caso derivado.",
        "iniciar" => "Atención iniciada.",
        "comentar" => "Comentario agregado.",
        "pedir_informacion" => "Se pidió información al vecino: el plazo queda en pausa.",
        "reanudar" => "Caso reanudado: el plazo vuelve a correr.",
        "prorrogar" => "Plazo prorrogado.",
        "responder" => "Respuesta registrada y enviada al vecino.",
        "cerrar" => "Caso cerrado.",
        "corregir_tema" => "Tema corregido.",
        "asignar" => "Caso asignado.",
        "adjuntar" => "Archivo adjuntado: el vecino lo verá en el seguimiento del caso.",
        "plantilla" => "Plantilla guardada.",
        "plantilla_borrada" => "Plantilla borrada.",
        "usuario" => "Usuario guardado.",
        "parametro" => "Cambio guardado.",
        "catalogo" => "Catálogo recargado.",
        "reintento" => "Mensaje puesto de nuevo en la cola.",
        "rectificado" => "Datos de contacto rectificados en los casos de esta persona.",
        "anonimizado" => {
            "Casos cerrados anonimizados: folio, tipo, tema, unidad, fechas y estado se conservan."
        }
        "bloqueado" => {
            "Datos bloqueados: no se enviarán correos a esta persona mientras dure el bloqueo."
        }
        "desbloqueado" => "Bloqueo terminado.",
        "soporte" => "Autorización concedida: el usuario de soporte ya puede ingresar.",
        "soporte_revocado" => {
            "Autorización revocada: el acceso terminó y el resumen quedó registrado."
        }
        _ => return None,
    })
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where to go after login: only console paths of this site.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/staff") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/staff",
    }
}

async fn home(c: Console) -> Response {
    let to = if c.user.support.is_some() {
        "/staff/admin/parametros"
    } else if c.user.role == Role::Analyst {
        "/staff/analitica"
    } else {
        "/staff/casos"
    };
    Redirect::to(to).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    motivo: Option<String>,
}

fn login_view(state: &AppState, next: &str, message: Option<&str>, username: &str) -> Response {
    let ctx = context! {
        municipality => state.chat.engine().catalog.profile.get("municipio"),
        next => next,
        message => message,
        username => username,
        sso => state.providers.staff.is_some(),
        sso_next => urlencode(next),
    };
    match render_template("login.html", ctx) {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(e) => PageError(e).into_response(),
    }
}

async fn login_page(State(state): State<AppState>, ApiQuery(q): ApiQuery<LoginQuery>) -> Response {
    let message = match q.motivo.as_deref() {
        Some("expirada") => Some("Su sesión expiró. Ingrese nuevamente."),
        Some("salida") => Some("Cerró su sesión."),
        _ => None,
    };
    login_view(&state, safe_next(q.next.as_deref()), message, "")
}

async fn login_submit(
    State(state): State<AppState>,
    client: crate::http::throttle::ClientAddr,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    // Login CSRF: another site must not sign a browser into an account of its choosing.
    // Browsers say where a form came from; a cross-site login is refused.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return PageError(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "El ingreso debe hacerse desde la página de la consola.",
        ))
        .into_response();
    }
    let next = safe_next(form.get("next").map(String::as_str)).to_string();
    if let Some(code) = form.get("codigo") {
        return code_step_submit(&state, client, &headers, &next, code).await;
    }
    let username = form.get("usuario").cloned().unwrap_or_default();
    let password = form.get("clave").cloned().unwrap_or_default();
    match authenticate(&state, client, &username, password, None, CodeStep::Hold).await {
        Ok(Ok(done)) => signed_in(&state, &done, &next),
        Ok(Err(Pending(pending))) => {
            let mut resp = second_factor_step::view(&state, &next, None);
            if let Ok(v) = HeaderValue::from_str(&second_factor_step::cookie(&pending)) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => login_failed(&state, e, &next, &username),
    }
}

/// The session cookie and the way on: to `next`, or to enrolment when the role needs a
/// second factor the user has not set up.
fn signed_in(state: &AppState, done: &LoggedIn, next: &str) -> Response {
    let to = if done.enrolment_required {
        "/staff/2fa"
    } else {
        next
    };
    (
        [(
            header::SET_COOKIE,
            session_cookie(&state.config, Some(&done.token)),
        )],
        Redirect::to(to),
    )
        .into_response()
}

fn login_failed(state: &AppState, e: ApiError, next: &str, username: &str) -> Response {
    let message = if e.status == StatusCode::TOO_MANY_REQUESTS {
        "Demasiados intentos fallidos desde este equipo. Espere unos minutos e intente nuevamente."
    } else if e.status == StatusCode::UNAUTHORIZED {
        "Usuario o contraseña incorrectos."
    } else if e.code == crate::staff::routes::SSO_REQUIRED {
        "Su perfil ingresa solo con la cuenta municipal: use el botón «Ingresar con la cuenta municipal»."
    } else {
        return PageError(e).into_response();
    };
    let mut resp = login_view(state, next, Some(message), username);
    *resp.status_mut() = e.status;
    resp
}

/// The login's second step: the code for the pending login named by its cookie.
async fn code_step_submit(
    state: &AppState,
    client: crate::http::throttle::ClientAddr,
    headers: &HeaderMap,
    next: &str,
    code: &str,
) -> Response {
    let pending = auth::cookie(headers, second_factor_step::COOKIE).unwrap_or_default();
    match complete_login(state, client, &pending, code).await {
        Ok(Some(done)) => {
            let mut resp = signed_in(state, &done, next);
            if let Ok(v) = HeaderValue::from_str(&second_factor_step::cookie("")) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(None) => login_view(
            state,
            next,
            Some("El ingreso venció. Escriba de nuevo su usuario y contraseña."),
            " ",
        ),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let mut resp = second_factor_step::view(
                state,
                next,
                Some("El código no es válido o ya fue usado. Use el código vigente o uno de recuperación."),
            );
            *resp.status_mut() = e.status;
            resp
        }
        Err(e) => login_failed(state, e, next, " "),
    }
}

/// The code step of the login page.
mod second_factor_step {
    use super::*;

    /// Names the pending login between the two steps; only the login form reads it.
    pub const COOKIE: &str = "ventanilla_login";

    pub fn cookie(pending: &str) -> String {
        let max_age = if pending.is_empty() {
            0
        } else {
            crate::staff::routes::PENDING_TTL_MS / 1000
        };
        format!(
            "{COOKIE}={pending}; HttpOnly; SameSite=Strict; Path=/staff/ingreso; Max-Age={max_age}"
        )
    }

    pub fn view(state: &AppState, next: &str, error: Option<&str>) -> Response {
        let ctx = context! {
            municipality => state.chat.engine().catalog.profile.get("municipio"),
            next => next,
            code_step => true,
            message => error,
            username => if error.is_some() { " " } else { "" },
        };
        match render_template("login.html", ctx) {
            Ok(html) => html_response(StatusCode::OK, html),
            Err(e) => PageError(e).into_response(),
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    c: Console,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    if let Some(token) = auth::session_cookie(&headers) {
        auth::end_session(&state.store, &token).await?;
    }
    Ok((
        [(header::SET_COOKIE, session_cookie(&state.config, None))],
        Redirect::to("/staff/ingreso?motivo=salida"),
    )
        .into_response())
}

/// Formats a UTC instant in the municipality's time zone, as staff read it.
pub fn local_time(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&state.tz)
        .format("%d-%m-%Y %H:%M")
        .to_string()
}

pub fn local_millis(state: &AppState, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| local_time(state, t))
        .unwrap_or_default()
}

pub fn date_cl(d: chrono::NaiveDate) -> String {
    d.format("%d-%m-%Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        assert!(templates().is_ok(), "{:?}", templates().as_ref().err());
    }

    #[test]
    fn next_only_goes_to_console_pages() {
        assert_eq!(
            safe_next(Some("/staff/casos?estado=derivado")),
            "/staff/casos?estado=derivado"
        );
        assert_eq!(safe_next(Some("https://evil.example")), "/staff");
        assert_eq!(safe_next(Some("//evil.example/staff")), "/staff");
        assert_eq!(safe_next(None), "/staff");
    }
}
