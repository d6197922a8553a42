//! Ventanilla: the digital front desk of a Chilean municipality.
//!
//! - [`chat`]: the asistente virtual (intent catalog, matcher, botonera).
//! - [`oirs`]: residents' cases (domain types so far).
//! - [`analytics`]: interaction recording.
//! - [`staff`]: staff authentication.
//! - [`http`]: router, errors, extractors, middleware; [`store`]: SQLite / PostgreSQL.

pub mod analytics;
pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod http;
pub mod oirs;
pub mod staff;
pub mod store;
