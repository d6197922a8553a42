//! OIRS: residents' consultas, solicitudes, reclamos, sugerencias and felicitaciones —
//! filing, folios and tracking, routing to departments and deadlines in días hábiles.

pub mod attachments;
pub mod calendar;
pub mod domain;
pub mod location;
pub mod routes;
pub mod rut;
pub mod satisfaction;
pub mod service;
pub mod uploads;

pub use rut::Rut;
