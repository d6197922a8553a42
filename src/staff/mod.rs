//! Staff: authentication and, as the OIRS grows, the department inbox.

pub mod auth;
pub mod routes;
