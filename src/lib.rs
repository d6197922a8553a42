//! Ventanilla: the digital front desk of a Chilean municipality.
//!
//! - [`chat`]: the asistente virtual (intent catalog, matcher, botonera).
//! - [`oirs`]: residents' cases: filing, tracking, routing, días hábiles.
//! - [`outbox`]: durable delivery of webhooks and e-mails.
//! - [`analytics`]: interaction recording.
//! - [`staff`]: authentication, the staff case API and administration.
//! - [`web`]: resident pages (/, /oirs, /seguimiento) and the chat widget's files.
//! - [`review`]: the catalog review (teaching the assistant from what residents asked).
//! - [`open311`]: Open311 GeoReport v2 for civic-reporting apps (territorial reports).
//! - [`console`]: the staff console at /staff (server-rendered, over the staff APIs).
//! - [`signin`]: sign-in with identity providers (staff single sign-on, ClaveÚnica).
//! - [`http`]: router, errors, extractors, middleware; [`store`]: SQLite / PostgreSQL.

pub mod analytics;
pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod http;
pub mod oirs;
pub mod open311;
pub mod outbox;
pub mod review;
pub mod signin;
pub mod staff;
pub mod store;
pub mod web;
