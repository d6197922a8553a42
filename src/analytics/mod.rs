//! Analítica: every chat interaction recorded off the request path, aggregated by month,
//! day, weekday, hour and button, exported, and written up in the monthly report.

pub mod aggregate;
pub mod import;
pub mod mask;
pub mod recorder;
pub mod render;
pub mod report;
pub mod routes;

pub use mask::mask_personal_data;
pub use recorder::{Interaction, InteractionKind, Recorder};
