//! Staff: authentication, the department inbox and case actions, administration.

pub mod admin;
pub mod attachments;
pub mod auth;
pub mod cases;
pub mod routes;
pub mod subjects;
pub mod templates;
pub mod users;
