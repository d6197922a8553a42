//! OIRS: residents' consultas, solicitudes, reclamos, sugerencias and felicitaciones.

pub mod rut;

pub use rut::Rut;
