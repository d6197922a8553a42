//! Sign-in with identity providers on both stores, against a real OpenID Connect provider
//! (panva's `oidc-provider`, run from webtests/oidc/provider.mjs): staff single sign-on mapped
//! to a user, refusals, state replay, single sign-on required per role; residents with
//! ClaveÚnica seeing only their own cases and filing with a verified identity.

mod common;

use std::collections::HashMap;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use ventanilla::config::Config;

/// Where the app says it is reached (its redirect URIs); the agent below sends what goes
/// there to the test's real address.
const PUBLIC: &str = "http://127.0.0.1:1";

/// The test provider, stopped when dropped.
struct TestProvider {
    child: Child,
    issuer: String,
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider, or skips (loudly) when webtests' packages are not installed outside
/// CI, the way PostgreSQL tests skip.
async fn provider() -> Option<TestProvider> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("webtests");
    if !dir.join("node_modules/oidc-provider").exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("webtests/node_modules/oidc-provider is missing under CI=true (npm ci --prefix webtests)");
        }
        eprintln!(
            "SKIPPED: webtests/node_modules/oidc-provider missing (run npm ci --prefix webtests)"
        );
        return None;
    }
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(dir.join("oidc/provider.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the test provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the provider says where it listens");
        let ready: Value = serde_json::from_str(&line).expect("a JSON line");
        Some(TestProvider {
            issuer: ready["issuer"].as_str().expect("issuer").to_string(),
            child,
        })
    })
    .await
    .expect("provider start")
}

fn configure(p: &TestProvider) -> impl FnOnce(&mut Config) + '_ {
    move |c: &mut Config| {
        c.public_base_url = PUBLIC.into();
        c.staff_oidc.issuer = p.issuer.clone();
        c.staff_oidc.client_id = "ventanilla-staff".into();
        c.staff_oidc.client_secret = ventanilla::config::Secret::new("staff-secret");
        c.claveunica.issuer = p.issuer.clone();
        c.claveunica.client_id = "ventanilla-vecinos".into();
        c.claveunica.client_secret = ventanilla::config::Secret::new("vecinos-secret");
    }
}

/// A browser, enough of one: cookies by name, redirects followed by hand.
struct Agent {
    http: reqwest::Client,
    app: String,
    provider: String,
    cookies: HashMap<String, String>,
}

impl Agent {
    fn new(app: &TestApp, p: &TestProvider) -> Self {
        Self {
            provider: p.issuer.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            app: app.base.clone(),
            cookies: HashMap::new(),
        }
    }

    /// The real address of a URL the app gave with its public base.
    fn real(&self, url: &str) -> String {
        match url.strip_prefix(PUBLIC) {
            Some(rest) => format!("{}{rest}", self.app),
            None if url.starts_with('/') => format!("{}{url}", self.app),
            None => url.to_string(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let v = v.to_str().expect("ascii");
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                if v.contains("Max-Age=0") || v.contains("expires=Thu, 01 Jan 1970") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), val.to_string());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(self.real(url))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&resp);
        resp
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = self
            .http
            .post(self.real(url))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep(&resp);
        resp
    }

    /// Follows redirects from `resp` (which came from `from`) until a page, or until the
    /// next stop is the app's `callback` (returned unvisited).
    async fn follow(
        &mut self,
        mut resp: reqwest::Response,
        mut from: String,
        callback: &str,
    ) -> Result<String, (u16, String)> {
        for _ in 0..20 {
            if !resp.status().is_redirection() {
                let status = resp.status().as_u16();
                return Err((status, resp.text().await.unwrap_or_default()));
            }
            let location = resp.headers()[reqwest::header::LOCATION]
                .to_str()
                .expect("location")
                .to_string();
            let next = reqwest::Url::parse(&self.real(&from))
                .and_then(|base| base.join(&location))
                .expect("url")
                .to_string();
            if next.contains(callback) {
                return Ok(next);
            }
            resp = self.get(&next).await;
            from = next;
        }
        panic!("too many redirects");
    }

    /// From `start` on the app through the provider's sign-in page as `login`, up to the
    /// app's callback address (not visited yet).
    async fn authorize(&mut self, start: &str, login: &str, callback: &str) -> String {
        let resp = self.get(start).await;
        assert_eq!(
            resp.status(),
            303,
            "{start} sends the browser to the provider"
        );
        let mut step = self.follow(resp, start.to_string(), callback).await;
        // The provider's pages: sign in, then confirm (it asks native clients every time).
        for _ in 0..3 {
            let (status, page) = match step {
                Ok(callback) => return callback,
                Err(page) => page,
            };
            assert_eq!(status, 200, "{page}");
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a form")
                .replace("&amp;", "&");
            let form = reqwest::Url::parse(&self.provider)
                .and_then(|base| base.join(&action))
                .expect("form address")
                .to_string();
            let fields: &[(&str, &str)] = if page.contains("name=\"login\"") {
                &[("prompt", "login"), ("login", login), ("password", "x")]
            } else {
                &[("prompt", "consent")]
            };
            let resp = self.post(&form, fields).await;
            step = self.follow(resp, form, callback).await;
        }
        panic!("the provider never sent the browser back");
    }
}

/// A page's text with the HTML escapes of URLs undone (`&#x2f;`, `&amp;`).
fn unescape(page: &str) -> String {
    page.replace("&#x2f;", "/").replace("&amp;", "&")
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn staff_user(app: &TestApp, username: &str, role: &str, department: Option<&str>) {
    let hash = ventanilla::staff::auth::hash_password("correct horse battery").expect("hash");
    let role = ventanilla::staff::auth::Role::parse(role).expect("role");
    ventanilla::staff::auth::add_user(&app.state.store, username, &hash, role, department)
        .await
        .expect("user");
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as::<_, (String, String)>("SELECT action, username FROM audit_log ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("audit")
    })
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as::<_, (i64,)>(sql).fetch_one(pool).await.expect("count").0
    })
}

/// The provider, and the app signing people in with it.
async fn start(backend: Backend) -> Option<(TestProvider, TestApp)> {
    let p = provider().await?;
    let app = spawn_app_with(backend, configure(&p)).await?;
    Some((p, app))
}

const STAFF_CALLBACK: &str = "/staff/login/oidc/callback";
const RESIDENT_CALLBACK: &str = "/mi-cuenta/callback";

async fn staff_single_sign_on(backend: Backend) {
    let Some((p, app)) = start(backend).await else {
        return;
    };
    staff_user(&app, "dom1", "department", Some("dom")).await;

    // The login page offers it; the provider's user dom1 is the console's dom1.
    let login = app.get("/staff/ingreso").await.text().await.expect("page");
    assert!(
        login.contains("Ingresar con la cuenta municipal"),
        "{login}"
    );
    let mut browser = Agent::new(&app, &p);
    let callback = browser
        .authorize(
            "/staff/login/oidc?next=/staff/casos",
            "dom1",
            STAFF_CALLBACK,
        )
        .await;
    let resp = browser.get(&callback).await;
    assert_eq!(resp.status(), 200);
    assert!(
        browser.cookies.contains_key("ventanilla_session"),
        "a console session"
    );
    let page = unescape(&resp.text().await.expect("page"));
    assert!(
        page.contains("url=/staff/casos"),
        "moves on to the page asked for: {page}"
    );
    let inbox = browser.get("/staff/casos").await;
    assert_eq!(inbox.status(), 200, "signed in to the console");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM staff_sessions WHERE sso").await,
        1,
        "the session is marked as single sign-on"
    );

    // The same callback again (a replayed state): refused, no second session.
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status(), 400);
    assert!(replay
        .text()
        .await
        .expect("page")
        .contains("ya fue usado o expiró"));
    // A callback reaching another browser (no state cookie): refused as well.
    let mut victim = Agent::new(&app, &p);
    let stolen = victim
        .authorize("/staff/login/oidc", "dom1", STAFF_CALLBACK)
        .await;
    let mut other = Agent::new(&app, &p);
    assert_eq!(other.get(&stolen).await.status(), 400);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM staff_sessions WHERE sso").await,
        1
    );

    // An account the console does not know: refused, and nobody is created.
    let users = count(&app, "SELECT COUNT(*) FROM users").await;
    let mut stranger = Agent::new(&app, &p);
    let callback = stranger
        .authorize("/staff/login/oidc", "juan.perez", STAFF_CALLBACK)
        .await;
    let resp = stranger.get(&callback).await;
    assert_eq!(resp.status(), 403);
    let text = resp.text().await.expect("page");
    assert!(
        text.contains("no corresponde a un usuario activo"),
        "{text}"
    );
    assert!(!stranger.cookies.contains_key("ventanilla_session"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, users);

    let audit = audit_actions(&app).await;
    assert!(
        audit.contains(&("ingreso_sso".into(), "dom1".into())),
        "{audit:?}"
    );
    assert!(
        audit.iter().filter(|(a, _)| a == "sso_rechazado").count() >= 2,
        "replay and unknown user are audited: {audit:?}"
    );
}
on_both_backends!(staff_single_sign_on);

async fn single_sign_on_required_per_role(backend: Backend) {
    let Some(p) = provider().await else { return };
    let configured = configure(&p);
    let Some(app) = spawn_app_with(backend, |c| {
        configured(c);
        c.staff_oidc.sso_required_roles = vec!["department".into()];
    })
    .await
    else {
        return;
    };
    staff_user(&app, "dom1", "department", Some("dom")).await;
    staff_user(&app, "admin", "admin", None).await;
    let password = |u: &str| json!({"username": u, "password": "correct horse battery"});
    let r = app.post_json("/api/v1/auth/login", password("dom1")).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "sso_required");
    // A role not listed keeps its password (break-glass accounts).
    let r = app.post_json("/api/v1/auth/login", password("admin")).await;
    assert_eq!(r.status(), 200);
    // The console says so in words.
    let r = app
        .client
        .post(app.url("/staff/ingreso"))
        .form(&[("usuario", "dom1"), ("clave", "correct horse battery")])
        .send()
        .await
        .expect("form");
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .expect("page")
        .contains("solo con la cuenta municipal"));
}
on_both_backends!(single_sign_on_required_per_role);

async fn off_unless_configured_and_unreachable_provider(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        // Port 1 on loopback: connections are refused at once.
        c.claveunica.issuer = "http://127.0.0.1:1".into();
        c.claveunica.client_id = "ventanilla-vecinos".into();
    })
    .await
    else {
        return;
    };
    let r = app.get("/staff/login/oidc").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("page").contains("no está habilitado"));
    let login = app.get("/staff/ingreso").await.text().await.expect("page");
    assert!(!login.contains("Ingresar con la cuenta municipal"));

    let started = Instant::now();
    let r = app.get("/mi-cuenta/ingresar").await;
    assert_eq!(r.status(), 503);
    assert!(r
        .text()
        .await
        .expect("page")
        .contains("No fue posible contactar a ClaveÚnica"));
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
}
on_both_backends!(off_unless_configured_and_unreachable_provider);

const RUN_A: &str = "12345678-5";
const RUT_B: &str = "11.111.111-1";

async fn residents_with_claveunica(backend: Backend) {
    let Some((p, app)) = start(backend).await else {
        return;
    };
    let mut report = common::pothole_report(1);
    report["rut"] = json!("12.345.678-5");
    let mine = app.file_case(report).await["folio"]
        .as_str()
        .expect("folio")
        .to_string();
    let mut report = common::pothole_report(2);
    report["rut"] = json!(RUT_B);
    let theirs = app.file_case(report).await["folio"]
        .as_str()
        .expect("folio")
        .to_string();

    let mut resident = Agent::new(&app, &p);
    let signed_out = resident.get("/mi-cuenta").await.text().await.expect("page");
    assert!(
        signed_out.contains("Ingresar con ClaveÚnica"),
        "{signed_out}"
    );
    let callback = resident
        .authorize("/mi-cuenta/ingresar", RUN_A, RESIDENT_CALLBACK)
        .await;
    let resp = resident.get(&callback).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[reqwest::header::LOCATION], "/mi-cuenta");
    let set_cookie: Vec<String> = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("ventanilla_vecino="))
        .expect("a resident session");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Max-Age=1800"),
        "{session}"
    );

    // Every case with the RUN, and nobody else's.
    let page = resident.get("/mi-cuenta").await.text().await.expect("page");
    assert!(page.contains("12.345.678-5"), "{page}");
    assert!(page.contains(&mine), "{page}");
    assert!(!page.contains(&theirs), "{page}");
    let case = resident.get(&format!("/mi-cuenta/casos/{mine}")).await;
    assert_eq!(case.status(), 200);
    assert!(case.text().await.expect("page").contains("Derivado a"));
    let other = resident.get(&format!("/mi-cuenta/casos/{theirs}")).await;
    assert_eq!(other.status(), 404);

    // Filing while signed in: the RUT is the session's (whatever was typed), verified.
    let form = resident.get("/oirs").await.text().await.expect("form");
    assert!(
        form.contains("identidad verificada con ClaveÚnica"),
        "{form}"
    );
    let filed = resident
        .post(
            "/oirs",
            &[
                ("token", &uuid::Uuid::new_v4().to_string()),
                ("tipo", "datos_personales"),
                ("tema", "datos_personales"),
                ("derecho", "acceso"),
                (
                    "descripcion",
                    "Quiero saber qué datos míos tiene la municipalidad.",
                ),
                ("nombre", "María José Pérez Soto"),
                ("rut", RUT_B),
                ("consentimiento", "si"),
            ],
        )
        .await;
    let status = filed.status();
    let summary = filed.text().await.expect("page");
    assert_eq!(status, 303, "{summary}");
    let page = resident.get("/mi-cuenta").await.text().await.expect("page");
    let folios: Vec<String> = ventanilla::with_pool!(&app.state.store, pool => {
        sqlx::query_as::<_, (String,)>("SELECT folio FROM cases WHERE identity_verified")
            .fetch_all(pool).await.expect("cases")
    })
    .into_iter()
    .map(|(f,)| f)
    .collect();
    assert_eq!(folios.len(), 1, "one verified case");
    assert!(
        page.contains(&folios[0]),
        "the new request is listed: {page}"
    );
    let token = app.login_as("coord", "coordinator", None).await;
    let staff: Value = app
        .client
        .get(app.url(&format!("/api/v1/staff/cases/{}", folios[0])))
        .bearer_auth(&token)
        .send()
        .await
        .expect("case")
        .json()
        .await
        .expect("json");
    let found = staff.get("case").unwrap_or(&staff);
    assert_eq!(found["identity_verified"], true, "{staff}");
    assert_eq!(found["rut"], RUN_A, "{staff}");
    let unverified: Value = app
        .client
        .get(app.url(&format!("/api/v1/staff/cases/{mine}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("case")
        .json()
        .await
        .expect("json");
    assert_eq!(
        unverified.get("case").unwrap_or(&unverified)["identity_verified"],
        false
    );

    // Logging out ends the session here and at the provider.
    let out = resident.post("/mi-cuenta/salir", &[]).await;
    assert_eq!(out.status(), 200);
    let page = unescape(&out.text().await.expect("page"));
    let end = format!("{}/session/end?id_token_hint=", p.issuer);
    assert!(
        page.contains(&format!("http-equiv=\"refresh\" content=\"0;url={end}")),
        "{page}"
    );
    assert!(page.contains("post_logout_redirect_uri="), "{page}");
    assert!(!resident.cookies.contains_key("ventanilla_vecino"));
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM resident_sessions").await,
        0
    );
    let page = resident.get(&format!("/mi-cuenta/casos/{mine}")).await;
    assert_eq!(page.status(), 303, "signed out: back to the sign-in page");
}
on_both_backends!(residents_with_claveunica);
