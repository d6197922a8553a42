//! Demo data for `ventanilla serve --demo`: staff users with a documented password, a few
//! cases in different states and six weeks of chat interactions, so a newcomer sees a working
//! console and analytics at once. Only ever written into a database that has no staff users.

use chrono::{Duration, TimeZone, Utc};

use crate::analytics::recorder::{insert_batch, Interaction, InteractionKind};
use crate::app::AppState;
use crate::oirs::domain::{Channel, EventKind};
use crate::oirs::routes::{file_and_answer, validate, CaseIn};
use crate::oirs::service::{self, Actor, EventIn};
use crate::staff::auth::{self, Role};
use crate::with_pool;

/// The password of every demo user. Demo databases are for trying the product only.
pub const DEMO_PASSWORD: &str = "demo-ventanilla";

pub const DEMO_USERS: &[(&str, Role, Option<&str>)] = &[
    ("admin", Role::Admin, None),
    ("coordinacion", Role::Coordinator, None),
    ("dom", Role::Department, Some("dom")),
    ("dideco", Role::Department, Some("dideco")),
    ("analista", Role::Analyst, None),
];

/// A small deterministic generator, so every demo database looks the same.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Seeds the demo data unless the database already has staff users. Returns whether it did.
pub async fn seed(state: &AppState) -> anyhow::Result<bool> {
    let (users,): (i64,) = with_pool!(&state.store, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(pool).await?
    });
    if users > 0 {
        return Ok(false);
    }
    let hash = {
        let p = DEMO_PASSWORD.to_string();
        tokio::task::spawn_blocking(move || auth::hash_password(&p))
            .await?
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
    };
    let mut coordinator = None;
    for (name, role, dept) in DEMO_USERS {
        let id = auth::add_user(&state.store, name, &hash, *role, *dept).await?;
        if *role == Role::Coordinator {
            coordinator = Some(Actor {
                user_id: id,
                username: name.to_string(),
                role: *role,
                department: None,
            });
        }
    }
    let actor = coordinator.ok_or_else(|| anyhow::anyhow!("no coordinator"))?;
    seed_cases(state, &actor).await?;
    seed_interactions(state).await?;
    let cal = state.calendar().await;
    service::run_alerts(&state.store, &cal, state.channels(), state.today()).await?;
    Ok(true)
}

/// A demo case: days ago, type, topic, description, then the staff events applied to it.
type DemoCase = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static [(EventKind, &'static str)],
);

async fn seed_cases(state: &AppState, actor: &Actor) -> anyhow::Result<()> {
    let cases: &[DemoCase] = &[
        (
            1,
            "reclamo",
            "alumbrado_publico",
            "La luminaria frente al número 450 de calle Egaña está apagada hace dos semanas.",
            &[],
        ),
        (
            2,
            "solicitud",
            "permisos_edificacion",
            "Quiero saber qué documentos necesito para ampliar mi casa en el sector Bellavista.",
            &[(EventKind::Iniciar, "")],
        ),
        (
            4,
            "consulta",
            "becas",
            "¿Cuándo abre la postulación a la beca municipal de educación superior?",
            &[],
        ),
        (
            9,
            "solicitud",
            "ayudas_sociales",
            "Solicito ayuda social para mi madre, adulta mayor, que vive sola.",
            &[
                (EventKind::Iniciar, ""),
                (
                    EventKind::PedirInformacion,
                    "Por favor indique la dirección y un teléfono de contacto de su madre.",
                ),
            ],
        ),
        (
            16,
            "reclamo",
            "calles_veredas",
            "Hay un hoyo grande en la vereda de Sotomayor con Latorre; ya se cayó una vecina.",
            &[(EventKind::Iniciar, "")],
        ),
        (
            24,
            "felicitacion",
            "sugerencia",
            "Quiero felicitar a la funcionaria de la OIRS que me atendió muy bien.",
            &[(
                EventKind::Responder,
                "Muchas gracias por su mensaje; se lo hicimos llegar a la funcionaria.",
            )],
        ),
        (
            30,
            "solicitud",
            "certificados_dom",
            "Necesito un certificado de número para mi propiedad en calle Serrano.",
            &[(EventKind::Iniciar, "")],
        ),
    ];
    let names = [
        "Rosa Pérez",
        "Juan Soto",
        "María González",
        "Pedro Muñoz",
        "Carmen Rojas",
        "Luis Díaz",
        "Ana Fuentes",
    ];
    for (i, (days, case_type, topic, description, events)) in cases.iter().enumerate() {
        let received = Utc::now() - Duration::days(*days) - Duration::hours(3);
        let input = CaseIn {
            case_type: case_type.to_string(),
            topic: topic.to_string(),
            description: description.to_string(),
            name: names[i % names.len()].to_string(),
            rut: None,
            email: Some(format!("vecino{}@example.cl", i + 1)),
            phone: None,
            address: None,
            lat: None,
            long: None,
            public_description: false,
            chat_session_id: None,
            right: None,
            consent: true,
        };
        let channel = if i % 2 == 0 {
            Channel::Web
        } else {
            Channel::Chat
        };
        let case = validate(&input, state, channel, received)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let (_, filed) = file_and_answer(state, case, None)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        for (kind, text) in events.iter() {
            let ev = EventIn {
                kind: *kind,
                department: None,
                text: Some(text.to_string()).filter(|t| !t.is_empty()),
                duplicate_of: None,
                topic: None,
                assignee: None,
            };
            state.apply_event(actor, &filed.folio, &ev).await?;
        }
    }
    Ok(())
}

async fn seed_interactions(state: &AppState) -> anyhow::Result<()> {
    let engine = state.chat.engine();
    let botonera = &engine.catalog.botonera;
    let roots: Vec<&str> = botonera.roots.iter().map(String::as_str).collect();
    let intents: Vec<(&str, &str)> = engine
        .catalog
        .intents
        .iter()
        .map(|i| (i.id.as_str(), i.topic.as_str()))
        .collect();
    let mut rng = Lcg(20_260_420);
    // Weekday weights (Monday first): Tuesday and Wednesday busiest, weekends quiet.
    let weekday_weight = [16u64, 22, 21, 15, 13, 6, 5];
    let today = state.today();
    let mut batch = Vec::new();
    for back in 0..42i64 {
        let day = today - Duration::days(back);
        use chrono::Datelike;
        let per_day =
            weekday_weight[day.weekday().num_days_from_monday() as usize] * 3 + rng.next(15);
        for n in 0..per_day {
            // Mostly office hours, a tail in the evening.
            let hour = if rng.next(10) < 7 {
                9 + rng.next(9)
            } else {
                rng.next(24)
            } as u32;
            let local = day
                .and_hms_opt(hour, rng.next(60) as u32, 0)
                .unwrap_or_default();
            let Some(at) = state.tz.from_local_datetime(&local).earliest() else {
                continue;
            };
            let at = at.with_timezone(&Utc);
            let session = format!("demo-{back}-{}", n / 3);
            let mut ev = Interaction {
                occurred_at: at,
                session_id: Some(session),
                ..Interaction::default()
            };
            if rng.next(100) < 55 {
                let root = roots[rng.next(roots.len() as u64) as usize];
                ev.kind = InteractionKind::Button;
                ev.button_id = Some(root.to_string());
                batch.push(ev.clone());
                if let Some(b) = botonera.get(root) {
                    if !b.children.is_empty() {
                        let child = &b.children[rng.next(b.children.len() as u64) as usize];
                        ev.button_id = Some(child.clone());
                        ev.parent_id = Some(root.to_string());
                        batch.push(ev);
                    }
                }
            } else {
                ev.kind = InteractionKind::Message;
                if rng.next(100) < 8 {
                    ev.fallback = true;
                    ev.confidence = Some(0.2);
                } else {
                    let (intent, topic) = intents[rng.next(intents.len() as u64) as usize];
                    ev.intent = Some(intent.to_string());
                    ev.topic = Some(topic.to_string());
                    ev.confidence = Some(0.8);
                }
                batch.push(ev);
            }
        }
    }
    insert_batch(&state.soft_store, state.tz, &batch).await?;
    Ok(())
}
