//! Staff: authentication (password, second factor, support grants), the department inbox and case actions, administration.

pub mod access;
pub mod admin;
pub mod attachments;
pub mod auth;
pub mod cases;
pub mod routes;
pub mod second_factor;
pub mod subjects;
pub mod support;
pub mod templates;
pub mod users;
