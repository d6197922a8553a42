//! Analítica: every chat interaction recorded (off the request path) for the reports.

pub mod mask;
pub mod recorder;

pub use mask::mask_personal_data;
pub use recorder::{Interaction, InteractionKind, Recorder};
