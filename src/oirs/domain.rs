//! OIRS domain types, each with a `parse` constructor so invalid data cannot get past the
//! edge, and the case status machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Public case number: `OIRS-2026-000123`, sequential per year.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Folio {
    pub year: i32,
    pub seq: i64,
}

impl Folio {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase();
        let rest = s.strip_prefix("OIRS-")?;
        let (year, seq) = rest.split_once('-')?;
        if year.len() != 4 || seq.is_empty() || seq.len() > 9 {
            return None;
        }
        if !year.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            year: year.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for Folio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OIRS-{}-{:06}", self.year, self.seq)
    }
}

/// An e-mail address, trimmed and lower-cased; deliberately simple checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_lowercase();
        if s.chars().count() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (user, domain) = s.split_once('@')?;
        let ok = !user.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        ok.then_some(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Chilean phone number, stored as `+56` followed by 9 digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts `+56 9 8765 4321`, `56987654321`, `987654321`, `(41) 240 6400`, `412406400`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.chars()
            .any(|c| !(c.is_ascii_digit() || " +-().".contains(c)))
        {
            return None;
        }
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let national = match digits.len() {
            11 if digits.starts_with("56") => digits[2..].to_string(),
            9 => digits,
            _ => return None,
        };
        // Mobiles start with 9; landlines with the area code (2 for Santiago, 3x-7x regions).
        if !national.starts_with(|c: char| ('2'..='9').contains(&c)) {
            return None;
        }
        Some(Self(format!("+56{national}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Recibido,
    Derivado,
    EnProceso,
    PendienteInformacion,
    Respondido,
    Cerrado,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Recibido,
        Status::Derivado,
        Status::EnProceso,
        Status::PendienteInformacion,
        Status::Respondido,
        Status::Cerrado,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recibido => "recibido",
            Status::Derivado => "derivado",
            Status::EnProceso => "en_proceso",
            Status::PendienteInformacion => "pendiente_informacion",
            Status::Respondido => "respondido",
            Status::Cerrado => "cerrado",
        }
    }

    /// Still waiting for the municipality (counts as pending in reports and alerts).
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Respondido | Status::Cerrado)
    }

    /// Spanish label for residents.
    pub fn label(self) -> &'static str {
        match self {
            Status::Recibido => "Recibido",
            Status::Derivado => "Derivado a la unidad responsable",
            Status::EnProceso => "En proceso",
            Status::PendienteInformacion => "Esperando información del vecino",
            Status::Respondido => "Respondido",
            Status::Cerrado => "Cerrado",
        }
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

/// What staff can do to a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Route (or re-route) the case to a department.
    Derivar,
    /// The department starts working on it.
    Iniciar,
    /// Internal note; no status change.
    Comentar,
    /// Ask the resident for information; pauses the deadline clock.
    PedirInformacion,
    /// Information arrived; the clock runs again.
    Reanudar,
    /// Extend the deadline where the case type allows it (transparencia: +10 días hábiles).
    Prorrogar,
    Responder,
    /// Closes an answered case, or any open case that repeats another (with `duplicate_of`).
    Cerrar,
    /// Corrects the case's topic (the resident chose the wrong one); no status change.
    CorregirTema,
    /// Hands the case to one staff member of its department; no status change, internal.
    Asignar,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Derivar,
        EventKind::Iniciar,
        EventKind::Comentar,
        EventKind::PedirInformacion,
        EventKind::Reanudar,
        EventKind::Prorrogar,
        EventKind::Responder,
        EventKind::Cerrar,
        EventKind::CorregirTema,
        EventKind::Asignar,
    ];

    /// What staff see on the action's button (Spanish).
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Derivar => "Derivar a otro departamento",
            EventKind::Iniciar => "Iniciar la atención",
            EventKind::Comentar => "Agregar un comentario interno",
            EventKind::PedirInformacion => "Pedir información al vecino",
            EventKind::Reanudar => "Reanudar (llegó la información)",
            EventKind::Prorrogar => "Prorrogar el plazo",
            EventKind::Responder => "Responder al vecino",
            EventKind::Cerrar => "Cerrar el caso",
            EventKind::CorregirTema => "Corregir el tema",
            EventKind::Asignar => "Asignar a un funcionario",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Derivar => "derivar",
            EventKind::Iniciar => "iniciar",
            EventKind::Comentar => "comentar",
            EventKind::PedirInformacion => "pedir_informacion",
            EventKind::Reanudar => "reanudar",
            EventKind::Prorrogar => "prorrogar",
            EventKind::Responder => "responder",
            EventKind::Cerrar => "cerrar",
            EventKind::CorregirTema => "corregir_tema",
            EventKind::Asignar => "asignar",
        }
    }
}

/// The status after `kind` is applied to a case in `from`, or `None` when the transition is
/// not allowed (→ 409).
pub fn transition(from: Status, kind: EventKind) -> Option<Status> {
    use EventKind as K;
    use Status as S;
    match (kind, from) {
        (K::Derivar, S::Recibido | S::Derivado | S::EnProceso) => Some(S::Derivado),
        (K::Iniciar, S::Recibido | S::Derivado) => Some(S::EnProceso),
        (K::Comentar, s) if s != S::Cerrado => Some(s),
        (K::PedirInformacion, S::Derivado | S::EnProceso) => Some(S::PendienteInformacion),
        (K::Reanudar, S::PendienteInformacion) => Some(S::EnProceso),
        (K::Prorrogar, s @ (S::Derivado | S::EnProceso | S::PendienteInformacion)) => Some(s),
        (K::Responder, S::Derivado | S::EnProceso) => Some(S::Respondido),
        (K::Cerrar, S::Respondido) => Some(S::Cerrado),
        (K::CorregirTema, s) if s != S::Cerrado => Some(s),
        (K::Asignar, s) if s != S::Cerrado => Some(s),
        _ => None,
    }
}

/// The status after closing a case as a duplicate of another: allowed from any open status,
/// as the other case carries the answer.
pub fn close_as_duplicate(from: Status) -> Option<Status> {
    (from != Status::Cerrado).then_some(Status::Cerrado)
}

/// How a case reached the municipality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Chat,
    Presencial,
    OficinaPartes,
    Email,
    Telefono,
    /// Filed by an app through Open311 GeoReport v2, with a key an administrator issued.
    Open311,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Web,
        Channel::Chat,
        Channel::Presencial,
        Channel::OficinaPartes,
        Channel::Email,
        Channel::Telefono,
        Channel::Open311,
    ];

    /// Whether residents (or their apps) file through it themselves, as opposed to staff
    /// registering what arrived another way.
    pub fn is_self_service(self) -> bool {
        matches!(self, Channel::Web | Channel::Chat | Channel::Open311)
    }

    /// How the case arrived, as people read it.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Web => "Formulario web",
            Channel::Chat => "Asistente virtual",
            Channel::Presencial => "Presencial (mesón)",
            Channel::OficinaPartes => "Oficina de Partes (carta o documento)",
            Channel::Email => "Correo electrónico",
            Channel::Telefono => "Teléfono",
            Channel::Open311 => "Aplicación externa (Open311)",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Chat => "chat",
            Channel::Presencial => "presencial",
            Channel::OficinaPartes => "oficina_partes",
            Channel::Email => "email",
            Channel::Telefono => "telefono",
            Channel::Open311 => "open311",
        }
    }
}

/// A random tracking code residents keep: 12 characters without look-alikes.
pub fn new_tracking_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(12)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folio_round_trips() {
        let f = Folio::parse("oirs-2026-000123").expect("folio");
        assert_eq!(
            f,
            Folio {
                year: 2026,
                seq: 123
            }
        );
        assert_eq!(f.to_string(), "OIRS-2026-000123");
        assert_eq!(
            Folio {
                year: 2026,
                seq: 1_234_567
            }
            .to_string(),
            "OIRS-2026-1234567"
        );
        for bad in [
            "",
            "OIRS-26-1",
            "OIRS-2026-",
            "X-2026-1",
            "OIRS-2026-12a",
            "OIRS-2026-1234567890",
        ] {
            assert!(Folio::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn emails_and_phones() {
        assert_eq!(
            Email::parse(" Ana@Tome.CL ").expect("e").as_str(),
            "ana@tome.cl"
        );
        for bad in [
            "ana",
            "ana@",
            "@tome.cl",
            "ana@tome",
            "a b@tome.cl",
            "ana@@tome.cl",
            "ana@tome..cl",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad}");
        }
        for (input, out) in [
            ("+56 9 8765 4321", "+56987654321"),
            ("987654321", "+56987654321"),
            ("(41) 240 6400", "+56412406400"),
            ("56-41-2406400", "+56412406400"),
        ] {
            assert_eq!(Phone::parse(input).expect(input).as_str(), out);
        }
        for bad in ["12345", "+1 555 123 4567", "087654321", "9876 abc 21"] {
            assert!(Phone::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn status_machine() {
        use EventKind as K;
        use Status as S;
        assert_eq!(transition(S::Derivado, K::Iniciar), Some(S::EnProceso));
        assert_eq!(
            transition(S::EnProceso, K::PedirInformacion),
            Some(S::PendienteInformacion)
        );
        assert_eq!(
            transition(S::PendienteInformacion, K::Reanudar),
            Some(S::EnProceso)
        );
        assert_eq!(transition(S::EnProceso, K::Responder), Some(S::Respondido));
        assert_eq!(transition(S::Respondido, K::Cerrar), Some(S::Cerrado));
        assert_eq!(transition(S::Cerrado, K::Comentar), None);
        assert_eq!(transition(S::Recibido, K::Cerrar), None);
        assert_eq!(transition(S::PendienteInformacion, K::Responder), None);
        assert_eq!(transition(S::Respondido, K::Derivar), None);
        // Every status reachable from recibido through allowed events.
        let mut seen = vec![S::Recibido];
        let mut i = 0;
        while i < seen.len() {
            for k in [
                K::Derivar,
                K::Iniciar,
                K::PedirInformacion,
                K::Reanudar,
                K::Responder,
                K::Cerrar,
            ] {
                if let Some(n) = transition(seen[i], k) {
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), Status::ALL.len());
    }

    #[test]
    fn tracking_codes_are_random_and_unambiguous() {
        let a = new_tracking_code();
        let b = new_tracking_code();
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert!(!a.contains(['0', 'O', '1', 'I']));
    }
}

/// The rights a person may exercise over their personal data (Ley 19.628 as amended by Ley
/// 21.719): a `datos_personales` case says which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataRight {
    Acceso,
    Rectificacion,
    Supresion,
    Oposicion,
    Portabilidad,
    Bloqueo,
}

impl DataRight {
    pub const ALL: [DataRight; 6] = [
        DataRight::Acceso,
        DataRight::Rectificacion,
        DataRight::Supresion,
        DataRight::Oposicion,
        DataRight::Portabilidad,
        DataRight::Bloqueo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataRight::Acceso => "acceso",
            DataRight::Rectificacion => "rectificacion",
            DataRight::Supresion => "supresion",
            DataRight::Oposicion => "oposicion",
            DataRight::Portabilidad => "portabilidad",
            DataRight::Bloqueo => "bloqueo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// The right's name, as residents read it.
    pub fn label(self) -> &'static str {
        match self {
            DataRight::Acceso => "Acceso",
            DataRight::Rectificacion => "Rectificación",
            DataRight::Supresion => "Supresión",
            DataRight::Oposicion => "Oposición",
            DataRight::Portabilidad => "Portabilidad",
            DataRight::Bloqueo => "Bloqueo",
        }
    }

    /// What exercising it asks for, in one plain sentence.
    pub fn meaning(self) -> &'static str {
        match self {
            DataRight::Acceso => "Saber qué datos suyos tiene la municipalidad, para qué los usa y a quién los ha entregado.",
            DataRight::Rectificacion => "Corregir o completar datos suyos que estén equivocados, desactualizados o incompletos.",
            DataRight::Supresion => "Que se eliminen sus datos cuando ya no son necesarios o no hay base legal para tenerlos.",
            DataRight::Oposicion => "Que la municipalidad deje de usar sus datos para un fin determinado.",
            DataRight::Portabilidad => "Recibir una copia de sus datos en un formato electrónico que pueda llevar a otra institución.",
            DataRight::Bloqueo => "Que sus datos se suspendan temporalmente mientras se resuelve otra solicitud suya.",
        }
    }
}
