//! The register of processing ("registro de actividades de tratamiento", Ley 21.719): what
//! personal data the service processes, why, on which legal basis, for how long and who
//! receives it, and how residents exercise their rights. Public at /privacidad; the console
//! shows the same register to administrators with the live settings. Both render the partial
//! `templates/_registro.html` from the context built here.

use axum::extract::State;
use axum::response::Response;
use minijinja::{context, Value};

use crate::app::AppState;
use crate::chat::catalog::Profile;
use crate::config::Config;

/// The body responsible for the data: the configured controller, else the municipality
/// profile's name.
pub fn controller(config: &Config, profile: &Profile) -> String {
    let configured = config.privacy.controller.trim();
    if !configured.is_empty() {
        return configured.to_string();
    }
    match profile.get("municipio").trim() {
        "" => "La municipalidad".to_string(),
        name => name.to_string(),
    }
}

/// Where residents write about their data: the configured address, else the profile's OIRS
/// or general e-mail (as the widget shows it); empty when there is none.
pub fn contact_email(config: &Config, profile: &Profile) -> String {
    let configured = config.privacy.contact_email.trim();
    if !configured.is_empty() {
        return configured.to_string();
    }
    ["correo_oirs", "correo_general"]
        .iter()
        .map(|k| profile.get(k).trim())
        .find(|v| !v.is_empty())
        .unwrap_or("")
        .to_string()
}

/// An integer with Spanish thousands separators: 1825 → "1.825".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A number of days in Spanish, with the years when they are a whole number of them:
/// "1.825 días (5 años)", "365 días (1 año)", "180 días", "1 día".
pub fn days_es(days: i64) -> String {
    let unit = if days == 1 { "día" } else { "días" };
    let mut out = format!("{} {unit}", thousands(days));
    if days > 0 && days % 365 == 0 {
        let years = days / 365;
        let unit = if years == 1 { "año" } else { "años" };
        out.push_str(&format!(" ({} {unit})", thousands(years)));
    }
    out
}

/// The values the register partial (`_registro.html`) states, from the live configuration.
pub fn register_context(config: &Config, profile: &Profile) -> Value {
    context! {
        controller => controller(config, profile),
        contact_email => contact_email(config, profile),
        case_days => days_es(config.retention.case_personal_data_days),
        text_days => days_es(config.analytics.text_retention_days),
        rights => super::right_choices(),
    }
}

/// GET /privacidad: the public register.
pub async fn page(State(state): State<AppState>) -> Response {
    let engine = state.chat.engine();
    let register = register_context(&state.config, &engine.catalog.profile);
    super::render(
        &state,
        context! {
            page => "privacy",
            title => "Privacidad y datos personales",
            ..register
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_days_read_in_spanish() {
        assert_eq!(days_es(1825), "1.825 días (5 años)");
        assert_eq!(days_es(365), "365 días (1 año)");
        assert_eq!(days_es(180), "180 días");
        assert_eq!(days_es(400), "400 días");
        assert_eq!(days_es(1), "1 día");
        assert_eq!(days_es(3650), "3.650 días (10 años)");
        assert_eq!(thousands(1_234_567), "1.234.567");
        assert_eq!(thousands(999), "999");
    }
}
