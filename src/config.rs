//! Layered configuration: built-in defaults, then an optional TOML file, then `VENTANILLA_*`
//! environment variables (and `DATABASE_URL`). Secrets are wrapped so they never print.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

/// A value that must never reach logs or `check-config` output.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() { "\"***\"" } else { "\"\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.is_set() { "***" } else { "" })
    }
}

/// The store's address. It may carry a password (`postgres://user:pw@host/db`), so it prints
/// (Debug, Display, `check-config`) with the password replaced by `***`; the store reads the
/// real URL through `Deref<Target = str>`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_string())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(&self.0))
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    pub enabled: bool,
    /// Sustained requests per second per client IP.
    pub per_second: u64,
    /// Requests a client may send in a burst before being limited.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 5,
            burst: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Confidence at or above which the bot answers directly.
    pub answer_threshold: f32,
    /// Confidence at or above which the bot offers alternatives instead of falling back.
    pub suggest_threshold: f32,
    /// Chat sessions idle longer than this are forgotten.
    pub session_ttl_minutes: i64,
    /// Labelled files the catalog review's safety gate measures a change on (missing ones
    /// are skipped).
    pub eval_sets: Vec<PathBuf>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            answer_threshold: 0.65,
            suggest_threshold: 0.20,
            session_ttl_minutes: 120,
            eval_sets: [
                "../shared/dev-questions.tsv",
                "tests/data/regression.tsv",
                "tests/data/holdout.tsv",
                "tests/data/holdout-2026-11.tsv",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Days chat text (masked) is kept; aggregates are kept forever.
    pub text_retention_days: i64,
    /// Events buffered before the writer drops and counts them.
    pub queue_capacity: usize,
    pub batch_size: usize,
    /// "Horario hábil" for the business-hours share: [start, end) hours on business days.
    pub business_hours_start: i16,
    pub business_hours_end: i16,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            text_retention_days: 180,
            queue_capacity: 50_000,
            batch_size: 500,
            business_hours_start: 9,
            business_hours_end: 18,
        }
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Gestión documental endpoint receiving each derivation; none = webhooks are skipped.
    /// It may carry credentials (`https://user:pw@…`), so it prints redacted.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub webhook_url: Option<String>,
    /// Deliveries tried before a message goes to the dead letters.
    pub max_attempts: i32,
    /// First retry delay; doubles each attempt up to `max_backoff_ms`.
    pub base_backoff_ms: i64,
    pub max_backoff_ms: i64,
    /// How often the worker looks for due messages (new ones wake it at once).
    pub poll_ms: u64,
    pub timeout_ms: u64,
}

impl fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxConfig")
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field("max_attempts", &self.max_attempts)
            .field("base_backoff_ms", &self.base_backoff_ms)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .field("poll_ms", &self.poll_ms)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

fn serialize_redacted_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    url.as_deref().map(redact_url).serialize(s)
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            max_attempts: 8,
            base_backoff_ms: 2_000,
            max_backoff_ms: 3_600_000,
            poll_ms: 1_000,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP relay; none = e-mails are skipped (and marked so in the outbox).
    pub host: Option<String>,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Secret,
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: Secret::default(),
            from: "OIRS Municipal <oirs@example.cl>".into(),
        }
    }
}

/// How long personal data is kept (Ley 21.719: no longer than its purpose needs).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after closing that a case keeps its resident's personal data; then a daily job
    /// anonymises it (folio, type, topic, department, dates and status stay).
    pub case_personal_data_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            case_personal_data_days: 1825,
        }
    }
}

/// Who answers for the personal data the service processes, for the public register.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The body responsible ("Municipalidad de …"); the municipality profile's name if empty.
    pub controller: String,
    /// Where residents write about their data (the data-protection officer or unit).
    pub contact_email: String,
}

/// An OpenID Connect provider this service signs people in with. Off while `issuer` is empty.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProvider {
    /// The issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
}

impl OidcProvider {
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(ConfigError::Invalid(format!(
                "{name}.issuer: must be an http(s) URL"
            )));
        }
        if self.client_id.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{name}.client_id: required when {name}.issuer is set"
            )));
        }
        Ok(())
    }
}

/// Staff single sign-on through the municipality's provider.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The claim that must equal an active staff username.
    pub username_claim: String,
    /// Roles whose members may not sign in with a password (single sign-on only).
    pub sso_required_roles: Vec<String>,
}

impl Default for StaffOidc {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            username_claim: "preferred_username".into(),
            sso_required_roles: Vec::new(),
        }
    }
}

impl StaffOidc {
    /// The provider part of these settings.
    pub fn provider(&self) -> OidcProvider {
        OidcProvider {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub database_url: DatabaseUrl,
    pub timezone: String,
    pub log_format: LogFormat,
    pub body_limit_bytes: usize,
    pub rate_limit: RateLimit,
    /// Peers whose X-Forwarded-For is believed (the municipal reverse proxy).
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed to call the public API from a browser (the municipal web site).
    pub cors_origins: Vec<String>,
    /// Who may frame the service's pages (CSP frame-ancestors).
    pub frame_ancestors: Vec<String>,
    pub intents_dir: PathBuf,
    pub chat: ChatConfig,
    pub analytics: AnalyticsConfig,
    /// Shared secret for signing webhooks to the document-management system.
    pub webhook_secret: Secret,
    /// Where residents reach the service (links in e-mails).
    pub public_base_url: String,
    pub outbox: OutboxConfig,
    pub smtp: SmtpConfig,
    /// How often each instance looks for signals from the others sharing its database (a
    /// catalog reloaded on one instance is reloaded on all within this time).
    pub signal_poll_ms: u64,
    /// How often the deadline alert job runs.
    pub alerts_interval_secs: u64,
    pub retention: RetentionConfig,
    pub privacy: PrivacyConfig,
    /// Staff roles that must log in with a second factor (TOTP); empty turns it off.
    pub require_2fa: Vec<String>,
    /// Where case locations may lie (`lat`/`long` outside are refused): Chile by default.
    pub geo_bounds: crate::oirs::location::GeoBounds,
    pub staff_oidc: StaffOidc,
    /// Residents' sign-in with ClaveÚnica.
    pub claveunica: OidcProvider,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/ventanilla.db".into(),
            timezone: "America/Santiago".into(),
            log_format: LogFormat::Human,
            body_limit_bytes: 64 * 1024,
            rate_limit: RateLimit::default(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            frame_ancestors: Vec::new(),
            intents_dir: PathBuf::from("intents"),
            chat: ChatConfig::default(),
            analytics: AnalyticsConfig::default(),
            webhook_secret: Secret::default(),
            public_base_url: "http://127.0.0.1:8080".into(),
            outbox: OutboxConfig::default(),
            smtp: SmtpConfig::default(),
            signal_poll_ms: 5_000,
            alerts_interval_secs: 300,
            retention: RetentionConfig::default(),
            privacy: PrivacyConfig::default(),
            require_2fa: vec!["admin".into(), "support".into()],
            geo_bounds: crate::oirs::location::GeoBounds::CHILE,
            staff_oidc: StaffOidc::default(),
            claveunica: OidcProvider::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Whether `role` must log in with a second factor.
    pub fn requires_2fa(&self, role: crate::staff::auth::Role) -> bool {
        self.require_2fa.iter().any(|r| r == role.as_str())
    }

    /// Loads configuration from the process environment and the file named by
    /// `VENTANILLA_CONFIG` (or `ventanilla.toml` in the working directory when present).
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var("VENTANILLA_CONFIG").ok();
        let path = explicit.clone().unwrap_or_else(|| "ventanilla.toml".into());
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => Some((path, text)),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::from_sources(file.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), |k| {
            std::env::var(k).ok()
        })
    }

    /// Pure layering, testable without touching the process environment.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some((path, text)) => {
                toml::from_str::<Config>(text).map_err(|e| ConfigError::Parse {
                    path: path.to_string(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: fmt::Display,
        {
            v.trim().parse::<T>().map_err(|e| ConfigError::Env {
                name: name.into(),
                message: e.to_string(),
            })
        }
        fn list(v: &str) -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        }
        if let Some(v) = env("VENTANILLA_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("DATABASE_URL").or_else(|| env("VENTANILLA_DATABASE_URL")) {
            self.database_url = v.into();
        }
        if let Some(v) = env("VENTANILLA_TIMEZONE") {
            self.timezone = v;
        }
        if let Some(v) = env("VENTANILLA_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "json" => LogFormat::Json,
                "human" => LogFormat::Human,
                other => {
                    return Err(ConfigError::Env {
                        name: "VENTANILLA_LOG_FORMAT".into(),
                        message: format!("expected human or json, got {other:?}"),
                    })
                }
            }
        }
        if let Some(v) = env("VENTANILLA_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = parse("VENTANILLA_BODY_LIMIT_BYTES", &v)?;
        }
        if let Some(v) = env("VENTANILLA_RATE_LIMIT") {
            self.rate_limit.enabled = match v.trim() {
                "off" | "false" | "0" => false,
                "on" | "true" | "1" => true,
                other => {
                    return Err(ConfigError::Env {
                        name: "VENTANILLA_RATE_LIMIT".into(),
                        message: format!("expected on or off, got {other:?}"),
                    })
                }
            }
        }
        if let Some(v) = env("VENTANILLA_RATE_LIMIT_PER_SECOND") {
            self.rate_limit.per_second = parse("VENTANILLA_RATE_LIMIT_PER_SECOND", &v)?;
        }
        if let Some(v) = env("VENTANILLA_RATE_LIMIT_BURST") {
            self.rate_limit.burst = parse("VENTANILLA_RATE_LIMIT_BURST", &v)?;
        }
        if let Some(v) = env("VENTANILLA_TRUSTED_PROXIES") {
            self.trusted_proxies = list(&v)
                .iter()
                .map(|s| parse("VENTANILLA_TRUSTED_PROXIES", s))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env("VENTANILLA_CORS_ORIGINS") {
            self.cors_origins = list(&v);
        }
        if let Some(v) = env("VENTANILLA_FRAME_ANCESTORS") {
            self.frame_ancestors = list(&v);
        }
        if let Some(v) = env("VENTANILLA_INTENTS_DIR") {
            self.intents_dir = PathBuf::from(v);
        }
        if let Some(v) = env("VENTANILLA_CHAT_ANSWER_THRESHOLD") {
            self.chat.answer_threshold = parse("VENTANILLA_CHAT_ANSWER_THRESHOLD", &v)?;
        }
        if let Some(v) = env("VENTANILLA_CHAT_SUGGEST_THRESHOLD") {
            self.chat.suggest_threshold = parse("VENTANILLA_CHAT_SUGGEST_THRESHOLD", &v)?;
        }
        if let Some(v) = env("VENTANILLA_CHAT_SESSION_TTL_MINUTES") {
            self.chat.session_ttl_minutes = parse("VENTANILLA_CHAT_SESSION_TTL_MINUTES", &v)?;
        }
        if let Some(v) = env("VENTANILLA_CHAT_EVAL_SETS") {
            self.chat.eval_sets = list(&v).into_iter().map(PathBuf::from).collect();
        }
        if let Some(v) = env("VENTANILLA_ANALYTICS_TEXT_RETENTION_DAYS") {
            self.analytics.text_retention_days =
                parse("VENTANILLA_ANALYTICS_TEXT_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_ANALYTICS_BUSINESS_HOURS") {
            let (a, b) = v.split_once('-').ok_or_else(|| ConfigError::Env {
                name: "VENTANILLA_ANALYTICS_BUSINESS_HOURS".into(),
                message: "expected START-END hours, e.g. 9-18".into(),
            })?;
            self.analytics.business_hours_start = parse("VENTANILLA_ANALYTICS_BUSINESS_HOURS", a)?;
            self.analytics.business_hours_end = parse("VENTANILLA_ANALYTICS_BUSINESS_HOURS", b)?;
        }
        if let Some(v) = env("VENTANILLA_ANALYTICS_QUEUE_CAPACITY") {
            self.analytics.queue_capacity = parse("VENTANILLA_ANALYTICS_QUEUE_CAPACITY", &v)?;
        }
        if let Some(v) = env("VENTANILLA_ANALYTICS_BATCH_SIZE") {
            self.analytics.batch_size = parse("VENTANILLA_ANALYTICS_BATCH_SIZE", &v)?;
        }
        if let Some(v) = env("VENTANILLA_WEBHOOK_SECRET") {
            self.webhook_secret = Secret::new(v);
        }
        if let Some(v) = env("VENTANILLA_WEBHOOK_URL") {
            self.outbox.webhook_url = (!v.trim().is_empty()).then(|| v.trim().to_string());
        }
        if let Some(v) = env("VENTANILLA_PUBLIC_BASE_URL") {
            self.public_base_url = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = env("VENTANILLA_OUTBOX_MAX_ATTEMPTS") {
            self.outbox.max_attempts = parse("VENTANILLA_OUTBOX_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_OUTBOX_BASE_BACKOFF_MS") {
            self.outbox.base_backoff_ms = parse("VENTANILLA_OUTBOX_BASE_BACKOFF_MS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_OUTBOX_MAX_BACKOFF_MS") {
            self.outbox.max_backoff_ms = parse("VENTANILLA_OUTBOX_MAX_BACKOFF_MS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_OUTBOX_POLL_MS") {
            self.outbox.poll_ms = parse("VENTANILLA_OUTBOX_POLL_MS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_OUTBOX_TIMEOUT_MS") {
            self.outbox.timeout_ms = parse("VENTANILLA_OUTBOX_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_SMTP_HOST") {
            self.smtp.host = (!v.trim().is_empty()).then(|| v.trim().to_string());
        }
        if let Some(v) = env("VENTANILLA_SMTP_PORT") {
            self.smtp.port = parse("VENTANILLA_SMTP_PORT", &v)?;
        }
        if let Some(v) = env("VENTANILLA_SMTP_TLS") {
            self.smtp.tls = match v.trim() {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::Starttls,
                "tls" => SmtpTls::Tls,
                other => {
                    return Err(ConfigError::Env {
                        name: "VENTANILLA_SMTP_TLS".into(),
                        message: format!("expected none, starttls or tls, got {other:?}"),
                    })
                }
            };
        }
        if let Some(v) = env("VENTANILLA_SMTP_USERNAME") {
            self.smtp.username = Some(v);
        }
        if let Some(v) = env("VENTANILLA_SMTP_PASSWORD") {
            self.smtp.password = Secret::new(v);
        }
        if let Some(v) = env("VENTANILLA_SMTP_FROM") {
            self.smtp.from = v;
        }
        if let Some(v) = env("VENTANILLA_RETENTION_CASE_PERSONAL_DATA_DAYS") {
            self.retention.case_personal_data_days =
                parse("VENTANILLA_RETENTION_CASE_PERSONAL_DATA_DAYS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_PRIVACY_CONTROLLER") {
            self.privacy.controller = v;
        }
        if let Some(v) = env("VENTANILLA_PRIVACY_CONTACT_EMAIL") {
            self.privacy.contact_email = v;
        }
        if let Some(v) = env("VENTANILLA_GEO_BOUNDS") {
            self.geo_bounds = crate::oirs::location::GeoBounds::parse(&v).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "VENTANILLA_GEO_BOUNDS: {v:?} is not south,west,north,east in degrees"
                ))
            })?;
        }
        if let Some(v) = env("VENTANILLA_STAFF_OIDC_ISSUER") {
            self.staff_oidc.issuer = v.trim().trim_end_matches('/').to_string();
        }
        if let Some(v) = env("VENTANILLA_STAFF_OIDC_CLIENT_ID") {
            self.staff_oidc.client_id = v.trim().to_string();
        }
        if let Some(v) = env("VENTANILLA_STAFF_OIDC_CLIENT_SECRET") {
            self.staff_oidc.client_secret = Secret::new(v);
        }
        if let Some(v) = env("VENTANILLA_STAFF_OIDC_USERNAME_CLAIM") {
            self.staff_oidc.username_claim = v.trim().to_string();
        }
        if let Some(v) = env("VENTANILLA_STAFF_SSO_REQUIRED_ROLES") {
            self.staff_oidc.sso_required_roles = list(&v);
        }
        if let Some(v) = env("VENTANILLA_CLAVEUNICA_ISSUER") {
            self.claveunica.issuer = v.trim().trim_end_matches('/').to_string();
        }
        if let Some(v) = env("VENTANILLA_CLAVEUNICA_CLIENT_ID") {
            self.claveunica.client_id = v.trim().to_string();
        }
        if let Some(v) = env("VENTANILLA_CLAVEUNICA_CLIENT_SECRET") {
            self.claveunica.client_secret = Secret::new(v);
        }
        if let Some(v) = env("VENTANILLA_SIGNAL_POLL_MS") {
            self.signal_poll_ms = parse("VENTANILLA_SIGNAL_POLL_MS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_ALERTS_INTERVAL_SECS") {
            self.alerts_interval_secs = parse("VENTANILLA_ALERTS_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = env("VENTANILLA_REQUIRE_2FA") {
            self.require_2fa = if v.trim() == "none" {
                Vec::new()
            } else {
                list(&v)
            };
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.tz()?;
        if let Some(bad) = self
            .require_2fa
            .iter()
            .find(|r| crate::staff::auth::Role::parse(r).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "require_2fa: {bad:?} is not a staff role (admin, coordinator, department, analyst, support) or none"
            )));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_url: must start with sqlite: or postgres://".into(),
            ));
        }
        if self.rate_limit.enabled
            && (self.rate_limit.per_second == 0 || self.rate_limit.burst == 0)
        {
            return Err(ConfigError::Invalid(
                "rate_limit: per_second and burst must be positive (or disable it)".into(),
            ));
        }
        if !self.geo_bounds.is_valid() {
            return Err(ConfigError::Invalid(
                "geo_bounds: south < north and west < east, in degrees".into(),
            ));
        }
        if self.retention.case_personal_data_days < 1 {
            return Err(ConfigError::Invalid(
                "retention.case_personal_data_days: must be at least 1".into(),
            ));
        }
        let c = &self.chat;
        if !(0.0..=1.0).contains(&c.suggest_threshold)
            || !(0.0..=1.0).contains(&c.answer_threshold)
            || c.suggest_threshold > c.answer_threshold
        {
            return Err(ConfigError::Invalid(
                "chat: thresholds must satisfy 0 <= suggest_threshold <= answer_threshold <= 1"
                    .into(),
            ));
        }
        if let Some(url) = &self.outbox.webhook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(
                    "outbox.webhook_url: must be an http(s) URL".into(),
                ));
            }
            if !self.webhook_secret.is_set() {
                return Err(ConfigError::Invalid(
                    "webhook_secret: required when outbox.webhook_url is set".into(),
                ));
            }
        }
        if self.outbox.max_attempts < 1 || self.outbox.base_backoff_ms < 1 {
            return Err(ConfigError::Invalid(
                "outbox: max_attempts and base_backoff_ms must be positive".into(),
            ));
        }
        let o = &self.outbox;
        if o.max_backoff_ms < o.base_backoff_ms || o.poll_ms < 1 || o.timeout_ms < 1 {
            return Err(ConfigError::Invalid(
                "outbox: max_backoff_ms must be at least base_backoff_ms; poll_ms and timeout_ms \
                 must be positive"
                    .into(),
            ));
        }
        if self.analytics.batch_size < 1 {
            return Err(ConfigError::Invalid(
                "analytics.batch_size: must be at least 1".into(),
            ));
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "smtp.from: {:?} is not a mailbox",
                self.smtp.from
            )));
        }
        let a = &self.analytics;
        if !(0..24).contains(&a.business_hours_start)
            || !(1..=24).contains(&a.business_hours_end)
            || a.business_hours_start >= a.business_hours_end
        {
            return Err(ConfigError::Invalid(
                "analytics: business hours must satisfy 0 <= start < end <= 24".into(),
            ));
        }
        self.staff_oidc.provider().validate("staff_oidc")?;
        self.claveunica.validate("claveunica")?;
        if self.staff_oidc.username_claim.is_empty() {
            return Err(ConfigError::Invalid(
                "staff_oidc.username_claim: must name a claim".into(),
            ));
        }
        for role in &self.staff_oidc.sso_required_roles {
            if crate::staff::auth::Role::parse(role).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "staff_oidc.sso_required_roles: {role:?} is not a role (admin, coordinator, department, analyst)"
                )));
            }
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "body_limit_bytes: at least 1024".into(),
            ));
        }
        Ok(())
    }

    pub fn tz(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            ConfigError::Invalid(format!("timezone: unknown zone {:?}", self.timezone))
        })
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        self.database_url.to_string()
    }
}

/// `url` with its password replaced by `***`: the one after `user:` and any `password` (or
/// `sslpassword`) query parameter, as PostgreSQL URLs may carry either. A URL without a
/// password prints as written.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparsable: hide everything that could be credentials rather than guess.
        return match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
            _ => url.to_string(),
        };
    };
    let secret_query = parsed
        .query_pairs()
        .any(|(k, _)| k.to_ascii_lowercase().contains("password"));
    if parsed.password().is_none() && !secret_query {
        return url.to_string();
    }
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have credentials, and those have no password.
        let _ = parsed.set_password(Some("***"));
    }
    if secret_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.to_ascii_lowercase().contains("password") {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_then_file_then_env() {
        let cfg = Config::from_sources(None, env_of(&[])).expect("defaults");
        assert_eq!(cfg.listen, "127.0.0.1:8080");
        assert_eq!(cfg.database_url.expose(), "sqlite://data/ventanilla.db");
        assert!(cfg.rate_limit.enabled);

        let file = "listen = \"0.0.0.0:9000\"\n[rate_limit]\nburst = 7\n";
        let cfg = Config::from_sources(Some(("v.toml", file)), env_of(&[])).expect("file");
        assert_eq!(cfg.listen, "0.0.0.0:9000");
        assert_eq!(cfg.rate_limit.burst, 7);
        assert_eq!(cfg.rate_limit.per_second, 5, "unset keys keep defaults");

        let cfg = Config::from_sources(
            Some(("v.toml", file)),
            env_of(&[
                ("VENTANILLA_LISTEN", "127.0.0.1:1"),
                ("VENTANILLA_RATE_LIMIT", "off"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
            ]),
        )
        .expect("env");
        assert_eq!(cfg.listen, "127.0.0.1:1");
        assert!(!cfg.rate_limit.enabled);
        assert_eq!(cfg.database_url_redacted(), "postgres://u:***@h/db");
    }

    #[test]
    fn the_second_factor_is_required_per_role() {
        use crate::staff::auth::Role;
        let cfg = Config::from_sources(None, env_of(&[])).expect("defaults");
        assert!(cfg.requires_2fa(Role::Admin) && cfg.requires_2fa(Role::Support));
        assert!(!cfg.requires_2fa(Role::Department));
        let cfg = Config::from_sources(
            None,
            env_of(&[("VENTANILLA_REQUIRE_2FA", " coordinator, department ")]),
        )
        .expect("list");
        assert!(cfg.requires_2fa(Role::Department) && !cfg.requires_2fa(Role::Admin));
        let cfg = Config::from_sources(None, env_of(&[("VENTANILLA_REQUIRE_2FA", "none")]))
            .expect("none");
        assert!(cfg.require_2fa.is_empty());
        let err = Config::from_sources(None, env_of(&[("VENTANILLA_REQUIRE_2FA", "admin,jefe")]))
            .expect_err("unknown role");
        assert!(err.to_string().contains("jefe"), "{err}");
        let cfg =
            Config::from_sources(Some(("v.toml", "require_2fa = []")), env_of(&[])).expect("file");
        assert!(!cfg.requires_2fa(Role::Admin));
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_sources(None, env_of(&[("VENTANILLA_RATE_LIMIT", "maybe")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("VENTANILLA_RATE_LIMIT"));
        let err = Config::from_sources(Some(("x.toml", "lisen = 1")), env_of(&[]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("x.toml"));
        let err = Config::from_sources(None, env_of(&[("VENTANILLA_TIMEZONE", "Mars/Base")]))
            .expect_err("bad tz");
        assert!(err.to_string().contains("timezone"));
    }

    /// A variable, a valid value unlike the default, and the variables it needs alongside.
    type EnvCase = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );

    /// Every variable the loader reads (a webhook URL needs its secret alongside).
    const ENV_VARS: &[EnvCase] = &[
        ("VENTANILLA_LISTEN", "0.0.0.0:9999", &[]),
        ("DATABASE_URL", "postgres://u:pw@db/one", &[]),
        ("VENTANILLA_DATABASE_URL", "postgres://u:pw@db/two", &[]),
        ("VENTANILLA_TIMEZONE", "America/Punta_Arenas", &[]),
        ("VENTANILLA_LOG_FORMAT", "json", &[]),
        ("VENTANILLA_BODY_LIMIT_BYTES", "12345", &[]),
        ("VENTANILLA_RATE_LIMIT", "off", &[]),
        ("VENTANILLA_RATE_LIMIT_PER_SECOND", "17", &[]),
        ("VENTANILLA_RATE_LIMIT_BURST", "71", &[]),
        ("VENTANILLA_TRUSTED_PROXIES", "10.1.2.3", &[]),
        ("VENTANILLA_CORS_ORIGINS", "https://muni.example", &[]),
        ("VENTANILLA_FRAME_ANCESTORS", "https://muni.example", &[]),
        ("VENTANILLA_INTENTS_DIR", "/srv/intents", &[]),
        ("VENTANILLA_CHAT_ANSWER_THRESHOLD", "0.77", &[]),
        ("VENTANILLA_CHAT_SUGGEST_THRESHOLD", "0.11", &[]),
        ("VENTANILLA_CHAT_SESSION_TTL_MINUTES", "33", &[]),
        ("VENTANILLA_CHAT_EVAL_SETS", "a.tsv,b.tsv", &[]),
        ("VENTANILLA_ANALYTICS_TEXT_RETENTION_DAYS", "44", &[]),
        ("VENTANILLA_ANALYTICS_BUSINESS_HOURS", "8-17", &[]),
        ("VENTANILLA_ANALYTICS_QUEUE_CAPACITY", "555", &[]),
        ("VENTANILLA_ANALYTICS_BATCH_SIZE", "66", &[]),
        ("VENTANILLA_WEBHOOK_SECRET", "s3cr3t", &[]),
        (
            "VENTANILLA_WEBHOOK_URL",
            "https://gd.example/hook",
            &[("VENTANILLA_WEBHOOK_SECRET", "s3cr3t")],
        ),
        ("VENTANILLA_PUBLIC_BASE_URL", "https://oirs.example", &[]),
        ("VENTANILLA_OUTBOX_MAX_ATTEMPTS", "3", &[]),
        ("VENTANILLA_OUTBOX_BASE_BACKOFF_MS", "1234", &[]),
        ("VENTANILLA_OUTBOX_MAX_BACKOFF_MS", "98765", &[]),
        ("VENTANILLA_OUTBOX_POLL_MS", "250", &[]),
        ("VENTANILLA_OUTBOX_TIMEOUT_MS", "4321", &[]),
        ("VENTANILLA_SMTP_HOST", "smtp.example", &[]),
        ("VENTANILLA_SMTP_PORT", "587", &[]),
        ("VENTANILLA_SMTP_TLS", "starttls", &[]),
        ("VENTANILLA_SMTP_USERNAME", "oirs", &[]),
        ("VENTANILLA_SMTP_PASSWORD", "smtp-pw", &[]),
        ("VENTANILLA_SMTP_FROM", "OIRS <oirs@muni.example>", &[]),
        ("VENTANILLA_ALERTS_INTERVAL_SECS", "61", &[]),
        ("VENTANILLA_REQUIRE_2FA", "admin", &[]),
        ("VENTANILLA_SIGNAL_POLL_MS", "2345", &[]),
        ("VENTANILLA_RETENTION_CASE_PERSONAL_DATA_DAYS", "400", &[]),
        (
            "VENTANILLA_PRIVACY_CONTROLLER",
            "Municipalidad de Ejemplo",
            &[],
        ),
        (
            "VENTANILLA_PRIVACY_CONTACT_EMAIL",
            "datos@muni.example",
            &[],
        ),
        ("VENTANILLA_GEO_BOUNDS", "-37.0,-73.2,-36.4,-72.6", &[]),
        (
            "VENTANILLA_STAFF_OIDC_ISSUER",
            "https://login.muni.example/realms/muni",
            &[("VENTANILLA_STAFF_OIDC_CLIENT_ID", "ventanilla")],
        ),
        ("VENTANILLA_STAFF_OIDC_CLIENT_ID", "ventanilla", &[]),
        ("VENTANILLA_STAFF_OIDC_CLIENT_SECRET", "oidc-pw", &[]),
        ("VENTANILLA_STAFF_OIDC_USERNAME_CLAIM", "email", &[]),
        (
            "VENTANILLA_STAFF_SSO_REQUIRED_ROLES",
            "admin,department",
            &[],
        ),
        (
            "VENTANILLA_CLAVEUNICA_ISSUER",
            "https://accounts.claveunica.gob.cl/openid",
            &[("VENTANILLA_CLAVEUNICA_CLIENT_ID", "cu-client")],
        ),
        ("VENTANILLA_CLAVEUNICA_CLIENT_ID", "cu-client", &[]),
        ("VENTANILLA_CLAVEUNICA_CLIENT_SECRET", "cu-pw", &[]),
    ];

    /// The settings as dotted paths to their (printed) values: `outbox.poll_ms` → 1000.
    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(v, &path, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }

    fn settings(cfg: &Config) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        leaves(&serde_json::to_value(cfg).expect("json"), "", &mut out);
        out
    }

    /// SPEC: every setting has a `VENTANILLA_*` variable. Each variable is read (it changes
    /// the configuration), every setting is changed by some variable, and the README's
    /// configuration table names each one.
    #[test]
    fn every_setting_has_an_environment_variable() {
        let readme = include_str!("../README.md");
        let mut changed = std::collections::BTreeSet::new();
        for (name, value, needs) in ENV_VARS {
            let base = Config::from_sources(None, env_of(needs)).expect("prerequisites");
            let mut pairs = needs.to_vec();
            pairs.push((name, value));
            let cfg = Config::from_sources(None, env_of(&pairs))
                .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
            let before = settings(&base);
            let after = settings(&cfg);
            let diff: Vec<&String> = after
                .iter()
                .zip(&before)
                .filter(|(a, b)| a != b)
                .map(|(a, _)| &a.0)
                .collect();
            assert!(!diff.is_empty(), "{name} is not read");
            changed.extend(diff.into_iter().cloned());
            assert!(readme.contains(name), "the README does not document {name}");
        }
        let missing: Vec<String> = settings(&Config::default())
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !changed.contains(k))
            .collect();
        assert!(
            missing.is_empty(),
            "settings without a variable: {missing:?}"
        );
    }

    #[test]
    fn database_url_prints_without_its_password() {
        let url = "postgres://ventanilla:hunter2@db.example:5432/ventanilla";
        let cfg = Config::from_sources(None, env_of(&[("DATABASE_URL", url)])).expect("cfg");
        assert_eq!(
            cfg.database_url.expose(),
            url,
            "the store still gets the password"
        );
        let shown = "postgres://ventanilla:***@db.example:5432/ventanilla";
        assert_eq!(cfg.database_url.to_string(), shown);
        assert_eq!(format!("{:?}", cfg.database_url), format!("{shown:?}"));
        let debug = format!("{cfg:?}");
        assert!(debug.contains(shown), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let json = serde_json::to_string(&cfg).expect("json");
        assert!(json.contains(shown) && !json.contains("hunter2"), "{json}");

        for (raw, shown) in [
            // The password as a query parameter, as libpq also accepts.
            (
                "postgres://u@h/db?sslmode=require&password=hunter2",
                "postgres://u@h/db?sslmode=require&password=***",
            ),
            ("postgresql://:hunter2@h/db", "postgresql://:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://data/ventanilla.db", "sqlite://data/ventanilla.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(raw), shown);
        }
        // Not a URL the parser accepts: everything before the host goes.
        assert_eq!(
            redact_url("postgres://u:hunter2@h:99999/db"),
            "postgres://***@h:99999/db"
        );
    }

    #[test]
    fn secrets_never_print() {
        let cfg = Config::from_sources(None, env_of(&[("VENTANILLA_WEBHOOK_SECRET", "s3cr3t")]))
            .expect("cfg");
        assert_eq!(cfg.webhook_secret.expose(), "s3cr3t");
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&cfg)
            .expect("json")
            .contains("s3cr3t"));

        let cfg = Config::from_sources(
            None,
            env_of(&[
                ("VENTANILLA_SMTP_PASSWORD", "smtp-pw-123"),
                ("VENTANILLA_WEBHOOK_SECRET", "s3cr3t"),
                ("VENTANILLA_WEBHOOK_URL", "https://gd:hook-pw@gd.example/in"),
            ]),
        )
        .expect("cfg");
        assert_eq!(cfg.smtp.password.expose(), "smtp-pw-123");
        assert_eq!(
            cfg.outbox.webhook_url.as_deref(),
            Some("https://gd:hook-pw@gd.example/in")
        );
        for shown in [
            format!("{cfg:?}"),
            serde_json::to_string(&cfg).expect("json"),
        ] {
            for secret in ["smtp-pw-123", "s3cr3t", "hook-pw"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("https://gd:***@gd.example/in"), "{shown}");
        }

        let cfg = Config::from_sources(
            None,
            env_of(&[
                ("VENTANILLA_STAFF_OIDC_CLIENT_SECRET", "oidc-pw-123"),
                ("VENTANILLA_CLAVEUNICA_CLIENT_SECRET", "cu-pw-456"),
            ]),
        )
        .expect("cfg");
        assert_eq!(cfg.staff_oidc.client_secret.expose(), "oidc-pw-123");
        assert_eq!(cfg.claveunica.client_secret.expose(), "cu-pw-456");
        for shown in [
            format!("{cfg:?}"),
            serde_json::to_string(&cfg).expect("json"),
        ] {
            assert!(
                !shown.contains("oidc-pw-123") && !shown.contains("cu-pw-456"),
                "{shown}"
            );
        }
    }

    #[test]
    fn identity_providers_are_checked() {
        let bad = |pairs: &[(&str, &str)]| Config::from_sources(None, env_of(pairs)).is_err();
        assert!(
            bad(&[("VENTANILLA_STAFF_OIDC_ISSUER", "https://idp.example")]),
            "no client id"
        );
        assert!(bad(&[
            ("VENTANILLA_CLAVEUNICA_ISSUER", "accounts.claveunica.gob.cl"),
            ("VENTANILLA_CLAVEUNICA_CLIENT_ID", "c"),
        ]));
        assert!(bad(&[(
            "VENTANILLA_STAFF_SSO_REQUIRED_ROLES",
            "admin,jefe"
        )]));
        let cfg = Config::from_sources(
            None,
            env_of(&[
                (
                    "VENTANILLA_CLAVEUNICA_ISSUER",
                    "https://accounts.claveunica.gob.cl/openid/",
                ),
                ("VENTANILLA_CLAVEUNICA_CLIENT_ID", "c"),
            ]),
        )
        .expect("cfg");
        assert!(cfg.claveunica.enabled() && !cfg.staff_oidc.provider().enabled());
        assert_eq!(
            cfg.claveunica.issuer,
            "https://accounts.claveunica.gob.cl/openid"
        );
    }
}
