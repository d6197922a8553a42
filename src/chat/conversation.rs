//! What the bot remembers between messages, and the word lists that read a message in the
//! light of the conversation: a follow-up ("¿y cuánto sale?") that only makes sense after the
//! previous answer, a choice typed instead of clicked ("la segunda"), and whether the resident
//! is complaining, asking or praising, which decides the type of the case the bot offers.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::features::TextPipeline;

/// The session's memory. Kept small on purpose: the row is rewritten only when this changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Consecutive messages the bot did not understand; after two it insists on a person.
    #[serde(default)]
    pub misses: u32,
    /// The intent answered last: what a follow-up refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The last topic a case can be about ("aseo_retiro"): what a case filed now is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_topic: Option<String>,
    /// The intents the last clarifying question offered, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// Words that ask about a facet of whatever was being discussed (price, place, time,
/// requirements, who) without naming a subject: a message made only of these, after an
/// answer, is a follow-up on that answer.
#[rustfmt::skip]
const FACET_WORDS: &[&str] = &[
    "cuanto", "cuantos", "cuanta", "sale", "salen", "cuesta", "cuestan", "vale", "valen", "valor",
    "precio", "precios", "costo", "cobran", "cobra", "gratis", "gratuito", "gratuita", "pagar",
    "pago", "plata", "pesos", "donde", "queda", "quedan", "ubicado", "ubicada", "ubican", "lugar",
    "direccion", "hora", "horas", "horario", "horarios", "atienden", "atiende", "abren", "abre",
    "cierran", "cierra", "abierto", "abierta", "dia", "dias", "cuando", "fecha", "fechas", "plazo",
    "plazos", "demora", "demoran", "tarda", "tardan", "dura", "requisitos", "requisito", "papeles",
    "documentos", "documento", "llevar", "necesita", "necesitan", "piden", "online", "linea",
    "internet", "web", "pagina", "presencial", "telefono", "numero", "correo", "contacto", "quien",
    "quienes", "pueden", "mama", "papa", "hijo", "hija", "hijos", "abuela", "abuelo", "esposa",
    "esposo", "marido", "senora", "vecino", "vecina", "tambien", "eso", "esa", "ese", "ahi",
    "alla", "aca", "mismo", "misma", "igual", "tramite", "tramitar", "solicitar", "pedir", "sacar",
    "saco", "inscribir", "inscribo", "inscribirse", "postular", "postulo", "renovar", "renuevo",
    "reservar", "agendar", "mas", "info", "informacion", "detalles", "sirve", "todavia", "aun",
    "hoy", "manana", "sabado", "sabados", "domingo", "domingos", "semana", "mes", "cuotas",
    "efectivo", "tarjeta", "transferencia", "formulario", "link", "ir", "voy", "llego", "llegar",
    "edad", "anos", "menor", "menores", "extranjero", "extranjeros", "rut", "carnet", "cedula",
    "requiere", "hace", "hacen", "vez", "veces", "seguro", "obligatorio", "necesario", "puedo",
    "se", "hay", "como", "no", "si", "y", "e", "pero", "entonces", "ok", "oka", "ya", "gracias",
    "perdon", "disculpa", "otra", "otro", "pregunta", "consulta", "persona", "personalmente",
    "son", "es", "esta", "estan", "abiertas", "abiertos", "publico", "todos", "cualquiera",
    "anonimo", "anonima", "esperar", "espera", "responder", "responden", "respuesta", "reciben",
    "recibe", "juntan", "reunen", "funciona", "funcionan", "aprox", "aproximadamente", "menos",
    "tiempo", "lleva", "demorar", "tardar", "debo", "tengo", "tiene", "tienen", "cuales", "cual",
    "que", "q", "dnd", "sirven", "valido", "valida", "vence", "vigencia", "duracion", "atencion",
    "atender", "cobrar", "cobro", "descuento", "rebaja", "beneficio", "ayuda", "apoyo", "retirar",
    "buscar", "entregan", "entrega", "envian", "llega", "llegan", "comuna", "fuera", "ciudad",
    "desde", "conce", "concepcion", "sector", "calle", "casa", "mismos", "ellos", "ella", "el",
    "hasta",
];

/// Words of a complaint: the case to offer is a "reclamo".
#[rustfmt::skip]
const COMPLAINT_WORDS: &[&str] = &[
    "reclamo", "reclamos", "reclamar", "reclamando", "reclamacion", "reclamare", "queja", "quejas",
    "quejarme", "quejar", "pesimo", "pesima", "mal", "mala", "malo", "molesto", "molesta", "harto",
    "harta", "aburrido", "aburrida", "nadie", "nunca", "todavia", "sigue", "siguen", "abandonado",
    "abandono", "verguenza", "indignado", "indignada", "denuncia", "denunciar", "denuncio",
    "inaceptable", "irresponsables", "cansado", "cansada", "semanas", "meses", "tampoco", "exijo",
    "exigimos", "exigir", "grosero", "grosera", "maltrato",
];

/// Words of a request: the case to offer is a "solicitud".
#[rustfmt::skip]
const REQUEST_WORDS: &[&str] = &[
    "solicito", "solicitamos", "solicitar", "solicitud", "pido", "pedimos", "pedir", "peticion",
    "necesitamos", "podrian", "instalen", "instalar", "vengan", "arreglen", "reparen", "limpien",
    "retiren", "cambien", "pongan",
];

/// Words that say outright that the resident is filing something.
#[rustfmt::skip]
const FILING_WORDS: &[&str] = &[
    "reclamo", "reclamar", "reclamando", "queja", "quejarme", "denuncia", "denunciar", "denuncio",
    "solicito", "solicitamos", "pido", "pedimos", "exijo", "exigimos", "sugiero", "felicito",
];

/// Words of a suggestion: the case to offer is a "sugerencia".
#[rustfmt::skip]
const SUGGESTION_WORDS: &[&str] = &[
    "sugerencia", "sugerencias", "sugiero", "sugerir", "propongo", "propuesta", "idea", "ideas",
    "mejorar", "seria", "bueno",
];

/// Words of a formal enquiry: the case to offer is a "consulta".
#[rustfmt::skip]
const ENQUIRY_WORDS: &[&str] = &[
    "consulta", "consultar", "consulto", "pregunta", "formal",
];

/// Words of a compliment: the case to offer is a "felicitacion".
#[rustfmt::skip]
const PRAISE_WORDS: &[&str] = &[
    "felicitar", "felicito", "felicitaciones", "felicitacion", "agradecer", "agradecida",
    "agradecido", "agradezco", "agradecimiento", "destacar", "reconocer", "reconocimiento",
];

/// Words that name a right over one's personal data (Ley 21.719), in the order they are
/// tried: the most specific first ("bloquear" before "borrar", "corregir" before "ver").
#[rustfmt::skip]
const RIGHT_WORDS: &[(&str, &[&str])] = &[
    ("bloqueo", &["bloquear", "bloqueo", "bloqueen", "suspender", "suspendan", "congelar"]),
    ("portabilidad", &["portabilidad", "portar", "exportar", "formato", "descargar", "transferir", "llevarme"]),
    ("oposicion", &["oponerme", "oposicion", "opongo", "dejen", "publicidad", "marketing", "usen", "utilicen", "ocupen"]),
    ("rectificacion", &["rectificar", "rectificacion", "corregir", "corrijan", "actualizar", "actualicen", "equivocado", "equivocados", "erroneo", "erroneos", "incorrecto", "incorrectos"]),
    ("supresion", &["borrar", "borren", "borrado", "eliminar", "eliminen", "suprimir", "supresion", "supriman", "olvido", "saquen", "sacar", "cancelar", "cancelacion"]),
    // "saber", "ver" and "tienen" are stop words: what is left of "quiero saber qué datos
    // míos tienen" is "datos míos".
    ("acceso", &["acceso", "acceder", "conocer", "guardan", "copia", "mios", "mias", "revisar", "informe"]),
];

/// Words that only say "I want to file something", not what about.
#[rustfmt::skip]
const PROCEDURAL_WORDS: &[&str] = &[
    "reclamo", "reclamos", "reclamar", "queja", "quejarme", "quejar", "poner", "hacer", "ingresar",
    "presentar", "formal", "formalmente", "escrito", "solicitud", "solicitar", "sugerencia",
    "sugerencias", "sugerir", "felicitacion", "felicitar", "oirs", "municipalidad", "municipio",
    "quiero", "necesito", "como", "donde", "dejar", "enviar", "mandar", "libro", "formulario",
    "tramite", "caso", "consulta", "consultar", "ayuda", "algo", "cosa", "buzon", "idea", "ideas",
    "pedir", "peticion", "online", "linea", "web", "internet", "escribir", "puedo", "favor",
];

/// A message's words read against the lists above. The lists are stemmed with the catalog's
/// own pipeline when the engine loads, so "reclamé", "reclamando" and "reclamos" all count.
pub struct Cues {
    facets: HashSet<String>,
    complaint: HashSet<String>,
    request: HashSet<String>,
    suggestion: HashSet<String>,
    enquiry: HashSet<String>,
    praise: HashSet<String>,
    filing: HashSet<String>,
    procedural: HashSet<String>,
    rights: Vec<(&'static str, HashSet<String>)>,
}

fn stems_of(pipeline: &TextPipeline, list: &[&str]) -> HashSet<String> {
    list.iter()
        .flat_map(|w| {
            let mut v = pipeline.stem(w);
            // Stop words vanish in stemming; keep them as they are so the lists stay whole.
            if v.is_empty() {
                v.push((*w).to_string());
            }
            v
        })
        .collect()
}

/// What a message is, for the conversation rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The stems that name a subject (not facets like price or place): empty in "¿y cuánto
    /// sale?", which only makes sense after the previous answer.
    pub subject: Vec<String>,
    /// Short enough to be a follow-up at all.
    pub short: bool,
    /// Its meaningful stems (one or two: a keyword, not a sentence).
    pub meaningful: Vec<String>,
    /// The case type the words call for, if any.
    pub case_type: Option<&'static str>,
    /// It says outright that it files something ("solicito…", "reclamo por…").
    pub files: bool,
    /// It says what the case would be about, beyond "I want to file a complaint".
    pub names_subject: bool,
    /// The right over one's personal data the words name, if any.
    pub right: Option<&'static str>,
}

impl Reading {
    /// Only facets: a follow-up on the previous answer.
    pub fn follow_up(&self) -> bool {
        self.short && self.subject.is_empty()
    }
}

impl Cues {
    pub fn new(pipeline: &TextPipeline) -> Self {
        Self {
            facets: stems_of(pipeline, FACET_WORDS),
            complaint: stems_of(pipeline, COMPLAINT_WORDS),
            request: stems_of(pipeline, REQUEST_WORDS),
            suggestion: stems_of(pipeline, SUGGESTION_WORDS),
            enquiry: stems_of(pipeline, ENQUIRY_WORDS),
            praise: stems_of(pipeline, PRAISE_WORDS),
            filing: stems_of(pipeline, FILING_WORDS),
            procedural: stems_of(pipeline, PROCEDURAL_WORDS),
            rights: RIGHT_WORDS
                .iter()
                .map(|(r, words)| (*r, stems_of(pipeline, words)))
                .collect(),
        }
    }

    /// Reads a message from its stems (stop words already removed) and word count.
    pub fn read(&self, stems: &[String], words: usize) -> Reading {
        let alphabetic: Vec<&String> = stems
            .iter()
            .filter(|s| s.chars().any(char::is_alphabetic))
            .collect();
        let any = |set: &HashSet<String>| alphabetic.iter().any(|s| set.contains(s.as_str()));
        // The strongest reading wins: a compliment, a complaint, a suggestion, a request, an
        // enquiry.
        let case_type = [
            (&self.praise, "felicitacion"),
            (&self.complaint, "reclamo"),
            (&self.suggestion, "sugerencia"),
            (&self.request, "solicitud"),
            (&self.enquiry, "consulta"),
        ]
        .into_iter()
        .find(|(set, _)| any(set))
        .map(|(_, t)| t);
        Reading {
            subject: alphabetic
                .iter()
                .filter(|s| !self.facets.contains(s.as_str()))
                .map(|s| s.to_string())
                .collect(),
            short: words > 0 && words <= FOLLOW_UP_MAX_WORDS,
            meaningful: alphabetic.iter().map(|s| s.to_string()).collect(),
            case_type,
            files: any(&self.filing),
            names_subject: alphabetic
                .iter()
                .any(|s| !self.procedural.contains(s.as_str())),
            right: self
                .rights
                .iter()
                .find(|(_, set)| any(set))
                .map(|(r, _)| *r),
        }
    }
}

/// Longer messages stand on their own.
const FOLLOW_UP_MAX_WORDS: usize = 14;

/// Which offered choice a typed answer picks: a number ("2", "la segunda", "opcion 3").
pub fn choice_by_number(words: &[String], choices: usize) -> Option<usize> {
    const ORDINALS: &[&[&str]] = &[
        &["1", "uno", "primera", "primero", "primer"],
        &["2", "dos", "segunda", "segundo"],
        &["3", "tres", "tercera", "tercero"],
        &["4", "cuatro", "cuarta", "cuarto"],
    ];
    const FILLER: &[&str] = &[
        "la",
        "el",
        "opcion",
        "numero",
        "nro",
        "n",
        "es",
        "esa",
        "ese",
        "de",
        "por",
        "favor",
        "porfa",
        "la",
        "quiero",
        "a",
        "alternativa",
        "boton",
        "po",
        "ya",
        "ok",
        "y",
    ];
    if words.is_empty() || words.len() > 5 {
        return None;
    }
    let mut picked = None;
    for w in words {
        if let Some(i) = ORDINALS.iter().position(|o| o.contains(&w.as_str())) {
            if picked.is_some_and(|p| p != i) {
                return None;
            }
            picked = Some(i);
        } else if !FILLER.contains(&w.as_str()) {
            return None;
        }
    }
    picked.filter(|&i| i < choices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::text::Synonyms;

    fn read(msg: &str) -> Reading {
        let p = TextPipeline::new(Synonyms::default());
        let cues = Cues::new(&p);
        let a = p.analyze(msg);
        cues.read(&a.stems, a.words.len())
    }

    #[test]
    fn facet_questions_are_follow_ups_and_subjects_are_not() {
        assert!(read("¿y cuánto sale?").follow_up());
        assert!(read("y donde queda").follow_up());
        assert!(read("¿y es gratis?").follow_up());
        assert!(read("y para mi mamá también?").follow_up());
        assert!(!read("y donde pago el permiso de circulacion").follow_up());
        assert!(!read("cuanto cuesta la licencia de conducir").follow_up());
    }

    #[test]
    fn the_words_name_a_right_over_personal_data() {
        let read = |m: &str| read(m).right;
        assert_eq!(
            read("quiero que borren mis datos personales"),
            Some("supresion")
        );
        assert_eq!(read("que datos mios tienen guardados"), Some("acceso"));
        assert_eq!(
            read("mi direccion esta equivocada en sus registros, quiero corregirla"),
            Some("rectificacion")
        );
        assert_eq!(
            read("no quiero que usen mis datos para publicidad"),
            Some("oposicion")
        );
        assert_eq!(
            read("necesito mis datos en un formato para llevarlos a otra institucion"),
            Some("portabilidad")
        );
        assert_eq!(
            read("bloqueen mis datos mientras revisan mi reclamo"),
            Some("bloqueo")
        );
        assert_eq!(
            read("quiero saber que datos personales mios tiene la municipalidad"),
            Some("acceso")
        );
        assert_eq!(
            read("no quiero que usen mis datos personales"),
            Some("oposicion")
        );
        assert_eq!(read("horario de atencion"), None);
    }

    #[test]
    fn the_words_call_for_a_case_type() {
        let r = read("quiero reclamar porque no pasa el camion de la basura");
        assert_eq!(r.case_type, Some("reclamo"));
        assert!(r.names_subject);
        let r = read("quiero poner un reclamo");
        assert_eq!(r.case_type, Some("reclamo"));
        assert!(!r.names_subject);
        assert_eq!(
            read("quiero felicitar a la funcionaria del meson").case_type,
            Some("felicitacion")
        );
        assert_eq!(
            read("solicito la poda del arbol de mi vereda").case_type,
            Some("solicitud")
        );
        assert_eq!(read("cual es el horario de la dom").case_type, None);
    }

    #[test]
    fn typed_choices() {
        let w = |s: &str| crate::chat::text::words(s);
        assert_eq!(choice_by_number(&w("2"), 3), Some(1));
        assert_eq!(choice_by_number(&w("la segunda"), 3), Some(1));
        assert_eq!(choice_by_number(&w("opción 1"), 2), Some(0));
        assert_eq!(choice_by_number(&w("la tercera"), 2), None);
        assert_eq!(choice_by_number(&w("2 permisos de circulacion"), 3), None);
    }
}
