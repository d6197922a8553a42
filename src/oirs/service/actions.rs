//! Staff actions on a case: a pure plan (the case as read, who acts, what they ask, the
//! calendar, today → the changes, the event, and the messages to send) and one transaction
//! that applies it if the case is still the version the plan was made from.
//!
//! Two actions saved at the same moment cannot undo each other: the second finds the version
//! moved, reads the case again and is planned anew on the first one's result (a comment beside
//! a re-routing keeps the new department; one beside an extension keeps the extension). If the
//! case keeps changing under it, the caller gets 409 and may retry.

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::*;
use crate::oirs::calendar::DiasHabiles;
use crate::oirs::domain::{close_as_duplicate, transition, EventKind, Status};
use crate::store::{now_millis, Store};
use crate::write_pool;

/// Everything an action needs besides the store and the case.
pub struct WorkContext<'a> {
    pub tz: Tz,
    pub calendar: &'a DiasHabiles,
    pub channels: Channels,
    /// The topics a case can be about (corregir_tema).
    pub topics: &'a [&'a str],
    /// Where residents follow their case; links in e-mails are absolute.
    pub public_base_url: &'a str,
}

/// What the plan needs to know beyond the case itself, read from the store beforehand.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The department asked for (derivar): `None` when it does not exist or is inactive.
    pub target: Option<Department>,
    /// The department the case is in: its name and e-mail.
    pub current: Option<Department>,
    /// Cerrar as a duplicate: whether the other folio exists.
    pub duplicate_exists: bool,
    /// Prorrogar: the case type's extension in days (0: none).
    pub extension_days: i64,
    /// The resident asked to block their data (Ley 21.719): nothing personal leaves.
    pub blocked: bool,
    /// Asignar: the username asked for, when it is an active staff member of the case's
    /// department.
    pub assignee: Option<String>,
}

/// The fields of the case an action writes. `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseChanges {
    pub department: Option<String>,
    pub due_date: Option<NaiveDate>,
    /// `Some(None)` resumes the clock.
    pub paused_since: Option<Option<NaiveDate>>,
    pub extended: Option<bool>,
    pub answer: Option<String>,
    pub duplicate_of: Option<String>,
    pub topic: Option<String>,
    /// `Some(None)` leaves the case unassigned.
    pub assignee: Option<Option<String>>,
}

/// A message committed with the action and delivered by the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Message {
    Webhook(Derivacion),
    Email(Email),
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Webhook(_) => "webhook",
            Message::Email(_) => "email",
        }
    }

    pub fn payload(&self) -> String {
        match self {
            Message::Webhook(w) => serde_json::to_string(w),
            Message::Email(e) => serde_json::to_string(e),
        }
        .unwrap_or_default()
    }
}

/// The derivation sent to the document-management system (SPEC: outbox webhooks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Derivacion {
    pub event: &'static str,
    pub folio: String,
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    pub department: String,
    /// Empty when the resident's data is blocked.
    pub description: String,
    pub blocked: bool,
    pub received_at: String,
    pub due_date: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// What an action does to a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub from: Status,
    pub to: Status,
    pub changes: CaseChanges,
    /// The note of the case event (shown to the resident when `public`).
    pub note: Option<String>,
    pub public: bool,
    /// The department the event is recorded under (after a re-routing, the new one).
    pub department: String,
    pub messages: Vec<Message>,
}

/// Who may do what, the status machine, the deadline arithmetic and the messages, with no
/// store and no clock of its own.
pub fn plan(
    case: &CaseRecord,
    actor: &Actor,
    ev: &EventIn,
    facts: &Facts,
    ctx: &WorkContext<'_>,
    today: NaiveDate,
) -> Result<Plan, OirsError> {
    use crate::staff::auth::Role;
    if !actor.may_act_on(&case.department) {
        return Err(OirsError::Forbidden);
    }
    if ev.kind == EventKind::Derivar && !matches!(actor.role, Role::Admin | Role::Coordinator) {
        return Err(OirsError::Forbidden);
    }
    let text = ev.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 10_000) {
        return Err(OirsError::Invalid(
            "text",
            "at most 10,000 characters".into(),
        ));
    }
    let needs_text = matches!(
        ev.kind,
        EventKind::Derivar
            | EventKind::Comentar
            | EventKind::PedirInformacion
            | EventKind::Responder
    );
    if needs_text && text.is_none() {
        return Err(OirsError::Invalid(
            "text",
            format!("{} needs a text", ev.kind.as_str()),
        ));
    }
    let duplicate_of = duplicate_of(case, ev, facts)?;
    let allowed = if duplicate_of.is_some() {
        close_as_duplicate(case.status)
    } else {
        transition(case.status, ev.kind)
    };
    let to = allowed.ok_or_else(|| {
        OirsError::Conflict(format!(
            "cannot {} a case that is {}",
            ev.kind.as_str(),
            case.status.as_str()
        ))
    })?;
    let mut changes = CaseChanges {
        duplicate_of: duplicate_of.clone(),
        ..CaseChanges::default()
    };
    let mut department = facts.current.clone();
    let mut note = text.map(String::from);
    match ev.kind {
        EventKind::Derivar => {
            let asked = ev.department.as_deref().map(str::trim).unwrap_or("");
            if asked.is_empty() {
                return Err(OirsError::Invalid(
                    "department",
                    "derivar needs a department".into(),
                ));
            }
            let target = facts.target.clone().filter(|d| d.id == asked && d.active);
            let Some(target) = target else {
                return Err(OirsError::Invalid(
                    "department",
                    format!("unknown department {asked:?}"),
                ));
            };
            if target.id == case.department {
                return Err(OirsError::Conflict(
                    "the case is already in that department".into(),
                ));
            }
            note = Some(format!(
                "Derivado a {}: {}",
                target.name,
                text.unwrap_or("")
            ));
            changes.department = Some(target.id.clone());
            // Whoever had it in the old department does not work on it any more.
            changes.assignee = Some(None);
            department = Some(target);
        }
        EventKind::PedirInformacion => changes.paused_since = Some(Some(today)),
        EventKind::Reanudar => {
            // Days (on the case's clock) spent waiting for the resident do not count against
            // the deadline.
            if let Some(since) = case.paused_since {
                let waited = ctx.calendar.elapsed(case.clock, since, today).max(0) as u32;
                changes.due_date = Some(ctx.calendar.extend(case.clock, case.due_date, waited));
            }
            changes.paused_since = Some(None);
        }
        EventKind::Prorrogar => {
            if facts.extension_days <= 0 {
                return Err(OirsError::Conflict(
                    "this case type has no extension".into(),
                ));
            }
            if case.extended {
                return Err(OirsError::Conflict(
                    "the deadline was already extended".into(),
                ));
            }
            let due = ctx
                .calendar
                .extend(case.clock, case.due_date, facts.extension_days as u32);
            note = Some(format!("Plazo prorrogado hasta {}", due.format("%d-%m-%Y")));
            changes.due_date = Some(due);
            changes.extended = Some(true);
        }
        EventKind::Responder => changes.answer = text.map(String::from),
        EventKind::CorregirTema => {
            let t = ev.topic.as_deref().map(str::trim).unwrap_or("");
            if !ctx.topics.contains(&t) {
                return Err(OirsError::Invalid(
                    "topic",
                    format!("{t:?} is not a topic a case can be about"),
                ));
            }
            if t == case.topic {
                return Err(OirsError::Conflict(
                    "the case already has that topic".into(),
                ));
            }
            note = Some(format!("Tema corregido: {} → {t}", case.topic));
            changes.topic = Some(t.to_string());
        }
        EventKind::Cerrar => {
            if let Some(other) = &duplicate_of {
                note = Some(format!(
                    "Cerrado por repetir el caso {other}, donde continúa la atención"
                ));
            }
        }
        EventKind::Asignar => {
            let asked = ev.assignee.as_deref().map(str::trim).unwrap_or("");
            if asked.is_empty() {
                return Err(OirsError::Invalid(
                    "assignee",
                    "asignar needs the username of a staff member".into(),
                ));
            }
            if facts.assignee.as_deref() != Some(asked) {
                return Err(OirsError::Invalid(
                    "assignee",
                    format!("{asked:?} is not an active staff member of the case's department"),
                ));
            }
            if case.assignee.as_deref() == Some(asked) {
                return Err(OirsError::Conflict(format!(
                    "the case is already assigned to {asked}"
                )));
            }
            note = Some(match text {
                Some(t) => format!("Asignado a {asked}: {t}"),
                None => format!("Asignado a {asked}"),
            });
            changes.assignee = Some(Some(asked.to_string()));
        }
        EventKind::Iniciar | EventKind::Comentar => {}
    }
    let department_id = department
        .as_ref()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| case.department.clone());
    let messages = messages(
        case,
        ev.kind,
        text,
        &changes,
        department.as_ref(),
        facts,
        ctx,
    );
    Ok(Plan {
        from: case.status,
        to,
        changes,
        note,
        public: !matches!(ev.kind, EventKind::Comentar | EventKind::Asignar),
        department: department_id,
        messages,
    })
}

/// Cerrar with `duplicate_of`: the other folio, checked.
fn duplicate_of(
    case: &CaseRecord,
    ev: &EventIn,
    facts: &Facts,
) -> Result<Option<String>, OirsError> {
    let given = ev
        .duplicate_of
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let (EventKind::Cerrar, Some(d)) = (ev.kind, given) else {
        return Ok(None);
    };
    let other = crate::oirs::domain::Folio::parse(d)
        .map(|f| f.to_string())
        .ok_or_else(|| OirsError::Invalid("duplicate_of", format!("{d:?} is not a folio")))?;
    if other == case.folio {
        return Err(OirsError::Invalid(
            "duplicate_of",
            "a case cannot repeat itself".into(),
        ));
    }
    if !facts.duplicate_exists {
        return Err(OirsError::Invalid(
            "duplicate_of",
            format!("no case has the folio {other}"),
        ));
    }
    Ok(Some(other))
}

/// The webhook and e-mails an action sends, filtered by the channels in use.
fn messages(
    case: &CaseRecord,
    kind: EventKind,
    text: Option<&str>,
    changes: &CaseChanges,
    department: Option<&Department>,
    facts: &Facts,
    ctx: &WorkContext<'_>,
) -> Vec<Message> {
    let mut out = Vec::new();
    let folio = &case.folio;
    if kind == EventKind::Derivar {
        if let Some(d) = department {
            out.push(Message::Webhook(Derivacion {
                event: "derivacion",
                folio: folio.clone(),
                case_type: case.case_type.clone(),
                topic: case.topic.clone(),
                department: d.id.clone(),
                description: if facts.blocked {
                    String::new()
                } else {
                    case.description.clone()
                },
                blocked: facts.blocked,
                received_at: case.received_at.to_rfc3339(),
                due_date: changes
                    .due_date
                    .unwrap_or(case.due_date)
                    .format("%Y-%m-%d")
                    .to_string(),
            }));
            if !d.email.is_empty() {
                out.push(Message::Email(Email {
                    to: d.email.clone(),
                    subject: format!("Caso derivado a su unidad: {folio}"),
                    body: format!(
                        "Se derivó a su unidad el caso {folio}. Motivo: {}\n\n{}/staff/casos/{folio}",
                        text.unwrap_or(""),
                        ctx.public_base_url
                    ),
                }));
            }
        }
    }
    let tracking = format!("{}/seguimiento?folio={folio}", ctx.public_base_url);
    let resident = case.email.as_ref().filter(|_| !facts.blocked);
    let mail = |subject: String, body: String| {
        resident.map(|to| {
            Message::Email(Email {
                to: to.clone(),
                subject,
                body: format!("Estimado(a) {}:\n\n{body}\n\nOIRS Municipal", case.name),
            })
        })
    };
    let resident_mail = match kind {
        EventKind::Responder => mail(
            format!("Respuesta a su caso {folio}"),
            format!("{}\n\nPuede revisar su caso en {tracking}", text.unwrap_or("")),
        ),
        EventKind::PedirInformacion => mail(
            format!("Necesitamos información sobre su caso {folio}"),
            format!(
                "Para continuar con su caso {folio} necesitamos: {}\n\nPuede revisar su caso en {tracking}",
                text.unwrap_or("")
            ),
        ),
        EventKind::Cerrar => match changes.duplicate_of.as_ref() {
            Some(other) => mail(
                format!("Su caso {folio} continúa en otro folio"),
                format!(
                    "Su caso {folio} repite lo que ya pidió en el caso {other}, donde seguimos \
                     atendiéndolo; por eso cerramos {folio}.\nPuede seguir el caso {other} en \
                     {}/seguimiento?folio={other}",
                    ctx.public_base_url
                ),
            ),
            // An answered case closes: the resident is invited to rate the answer.
            None => {
                let (subject, body) =
                    crate::oirs::satisfaction::invitation(folio, ctx.public_base_url);
                mail(subject, body)
            }
        },
        _ => None,
    };
    out.extend(resident_mail);
    out.retain(|m| ctx.channels.wants(m.kind()));
    out
}

/// Reads what the plan needs to know about the world.
async fn facts(store: &Store, case: &CaseRecord, ev: &EventIn) -> Result<Facts, OirsError> {
    let departments = departments(store).await?;
    let asked = ev.department.as_deref().map(str::trim);
    let duplicate_exists = match (ev.kind, ev.duplicate_of.as_deref()) {
        (EventKind::Cerrar, Some(d)) => match crate::oirs::domain::Folio::parse(d.trim()) {
            Some(f) => find_case(store, &f.to_string()).await?.is_some(),
            None => false,
        },
        _ => false,
    };
    let extension_days = if ev.kind == EventKind::Prorrogar {
        case_type(store, &case.case_type)
            .await?
            .map(|t| i64::from(t.extension_days))
            .unwrap_or(0)
    } else {
        0
    };
    let blocked = match &case.rut {
        Some(rut) => blocked(store, rut).await?.is_some(),
        None => false,
    };
    let assignee = match (ev.kind, ev.assignee.as_deref().map(str::trim)) {
        (EventKind::Asignar, Some(u)) if !u.is_empty() => {
            department_member(store, u, &case.department).await?
        }
        _ => None,
    };
    Ok(Facts {
        target: departments
            .iter()
            .find(|d| Some(d.id.as_str()) == asked)
            .cloned(),
        current: departments
            .iter()
            .find(|d| d.id == case.department)
            .cloned(),
        duplicate_exists,
        extension_days,
        blocked,
        assignee,
    })
}

/// Active staff members of a department (or of every department), by username: who a case
/// can be assigned to.
pub async fn department_members(
    store: &Store,
    department: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = crate::with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT username FROM users WHERE active = TRUE AND department_id IS NOT NULL \
             AND ($1 IS NULL OR department_id = $1) ORDER BY username",
        )
        .bind(department)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// The username, if it is an active staff member of the department.
async fn department_member(
    store: &Store,
    username: &str,
    department: &str,
) -> Result<Option<String>, OirsError> {
    let row: Option<(String,)> = crate::with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT username FROM users WHERE username = $1 AND active = TRUE AND department_id = $2",
        )
        .bind(username)
        .bind(department)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|(u,)| u))
}

/// How many times an action is re-planned when the case changed under it.
const ATTEMPTS: usize = 5;

/// Applies a staff action: plan on the case as read, then one transaction that writes the
/// changes, the event, the audit row and the messages, if the case is still that version.
pub async fn apply_event(
    store: &Store,
    ctx: &WorkContext<'_>,
    actor: &Actor,
    folio: &str,
    ev: &EventIn,
) -> Result<CaseRecord, OirsError> {
    for _ in 0..ATTEMPTS {
        let case = find_case(store, folio).await?.ok_or(OirsError::NotFound)?;
        let facts = facts(store, &case, ev).await?;
        let today = Utc::now().with_timezone(&ctx.tz).date_naive();
        let plan = plan(&case, actor, ev, &facts, ctx, today)?;
        if write(store, &case, actor, ev.kind, &plan).await? {
            return find_case(store, folio).await?.ok_or(OirsError::NotFound);
        }
    }
    Err(OirsError::Conflict(
        "the case changed meanwhile; reload and try again".into(),
    ))
}

/// Writes a plan if the case is still at the version it was planned on; `false` when not.
async fn write(
    store: &Store,
    case: &CaseRecord,
    actor: &Actor,
    kind: EventKind,
    plan: &Plan,
) -> Result<bool, OirsError> {
    let now = now_millis();
    let c = &plan.changes;
    let due = c.due_date.map(|d| d.format("%Y-%m-%d").to_string());
    let pause_set = c.paused_since.is_some();
    let paused = c
        .paused_since
        .flatten()
        .map(|d| d.format("%Y-%m-%d").to_string());
    let answered = plan.to == Status::Respondido && plan.from != Status::Respondido;
    let closed = plan.to == Status::Cerrado;
    let assign_set = c.assignee.is_some();
    let assignee = c.assignee.clone().flatten();
    let written: Result<bool, OirsError> = write_pool!(store, pool => {
        async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE cases SET status = $1, department_id = COALESCE($2, department_id), \
                 due_date = COALESCE($3, due_date), \
                 paused_since = CASE WHEN $4 THEN $5 ELSE paused_since END, \
                 extended = COALESCE($6, extended), answer = COALESCE($7, answer), \
                 answered_at = CASE WHEN $8 THEN $9 ELSE answered_at END, \
                 closed_at = CASE WHEN $10 THEN $9 ELSE closed_at END, \
                 alert_level = CASE WHEN $8 OR $10 THEN 'none' ELSE alert_level END, \
                 duplicate_of = COALESCE($11, duplicate_of), topic = COALESCE($12, topic), \
                 assignee = CASE WHEN $15 THEN $16 ELSE assignee END, \
                 updated_at = $9, version = version + 1 WHERE id = $13 AND version = $14",
            )
            .bind(plan.to.as_str())
            .bind(&c.department)
            .bind(&due)
            .bind(pause_set)
            .bind(&paused)
            .bind(c.extended)
            .bind(&c.answer)
            .bind(answered)
            .bind(now)
            .bind(closed)
            .bind(&c.duplicate_of)
            .bind(&c.topic)
            .bind(case.id)
            .bind(case.version)
            .bind(assign_set)
            .bind(&assignee)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO case_events (case_id, at, kind, actor, from_status, to_status, department_id, note, public) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(case.id).bind(now).bind(kind.as_str()).bind(&actor.username)
            .bind(plan.from.as_str()).bind(plan.to.as_str()).bind(&plan.department).bind(&plan.note).bind(plan.public)
            .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO audit_log (at, user_id, username, action, folio, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(now).bind(actor.user_id).bind(&actor.username).bind(kind.as_str()).bind(&case.folio)
                .bind(format!("{} -> {}", plan.from.as_str(), plan.to.as_str()))
                .execute(&mut *tx).await?;
            for m in &plan.messages {
                sqlx::query("INSERT INTO outbox (kind, payload, next_attempt_at, created_at, folio) VALUES ($1, $2, $3, $3, $4)")
                    .bind(m.kind())
                    .bind(m.payload())
                    .bind(now)
                    .bind(&case.folio)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        }.await
    });
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oirs::calendar::Clock;
    use crate::staff::auth::Role;

    fn calendar() -> DiasHabiles {
        DiasHabiles::new(Vec::<NaiveDate>::new())
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid")
    }

    fn case(status: Status) -> CaseRecord {
        CaseRecord {
            id: 7,
            folio: "OIRS-2026-000042".into(),
            tracking_hash: String::new(),
            case_type: "reclamo".into(),
            topic: "aseo_ornato".into(),
            department: "dimao".into(),
            status,
            channel: "web".into(),
            description: "Basura en la esquina".into(),
            name: "Ana Pérez".into(),
            rut: None,
            email: Some("ana@example.cl".into()),
            phone: None,
            address: None,
            received_at: Utc::now(),
            due_date: day("2026-12-15"),
            paused_since: None,
            extended: false,
            alert_level: "none".into(),
            answer: None,
            answered_at: None,
            duplicate_of: None,
            clock: Clock::Habiles,
            data_right: None,
            version: 3,
            assignee: None,
            lat: None,
            long: None,
            public_description: false,
            identity_verified: false,
        }
    }

    fn actor(role: Role, department: Option<&str>) -> Actor {
        Actor {
            user_id: 1,
            username: "u".into(),
            role,
            department: department.map(String::from),
        }
    }

    fn dept(id: &str, email: &str) -> Department {
        Department {
            id: id.into(),
            name: format!("Depto {id}"),
            email: email.into(),
            active: true,
        }
    }

    fn ev(kind: EventKind, text: Option<&str>) -> EventIn {
        EventIn {
            kind,
            department: None,
            text: text.map(String::from),
            duplicate_of: None,
            topic: None,
            assignee: None,
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&WorkContext<'_>) -> T) -> T {
        let cal = calendar();
        let topics = ["aseo_ornato", "alumbrado"];
        let ctx = WorkContext {
            tz: chrono_tz::America::Santiago,
            calendar: &cal,
            channels: Channels {
                webhook: true,
                email: true,
            },
            topics: &topics,
            public_base_url: "https://muni.example.cl",
        };
        f(&ctx)
    }

    const TODAY: &str = "2026-12-01";

    #[test]
    fn a_comment_writes_no_field_of_the_case() {
        with_ctx(|ctx| {
            let p = plan(
                &case(Status::EnProceso),
                &actor(Role::Department, Some("dimao")),
                &ev(EventKind::Comentar, Some("llamé al vecino")),
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.changes, CaseChanges::default());
            assert_eq!(p.to, Status::EnProceso);
            assert!(!p.public);
            assert!(p.messages.is_empty());
        });
    }

    #[test]
    fn rerouting_names_the_department_and_sends_the_webhook() {
        with_ctx(|ctx| {
            let mut e = ev(EventKind::Derivar, Some("corresponde a DOM"));
            e.department = Some("dom".into());
            let facts = Facts {
                target: Some(dept("dom", "dom@muni.cl")),
                current: Some(dept("dimao", "")),
                ..Facts::default()
            };
            let p = plan(
                &case(Status::Derivado),
                &actor(Role::Coordinator, None),
                &e,
                &facts,
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.changes.department.as_deref(), Some("dom"));
            assert_eq!(p.department, "dom");
            assert_eq!(
                p.note.as_deref(),
                Some("Derivado a Depto dom: corresponde a DOM")
            );
            assert!(matches!(&p.messages[0], Message::Webhook(w) if w.department == "dom"));
            assert!(
                matches!(&p.messages[1], Message::Email(m) if m.to == "dom@muni.cl" && m.body.contains("https://muni.example.cl/staff/casos/OIRS-2026-000042"))
            );
            // Department staff may not re-route.
            let refused = plan(
                &case(Status::Derivado),
                &actor(Role::Department, Some("dimao")),
                &e,
                &facts,
                ctx,
                day(TODAY),
            );
            assert!(matches!(refused, Err(OirsError::Forbidden)));
            // An unknown department names the field.
            let unknown = plan(
                &case(Status::Derivado),
                &actor(Role::Admin, None),
                &e,
                &Facts::default(),
                ctx,
                day(TODAY),
            );
            assert!(matches!(unknown, Err(OirsError::Invalid("department", _))));
        });
    }

    #[test]
    fn extension_once_and_only_where_the_type_has_one() {
        with_ctx(|ctx| {
            let a = actor(Role::Department, Some("dimao"));
            let e = ev(EventKind::Prorrogar, None);
            let facts = Facts {
                extension_days: 10,
                ..Facts::default()
            };
            let p = plan(&case(Status::EnProceso), &a, &e, &facts, ctx, day(TODAY)).expect("valid");
            // 15 Dec 2026 (Tue) + 10 días hábiles, no holidays in this calendar = 29 Dec.
            assert_eq!(p.changes.due_date, Some(day("2026-12-29")));
            assert_eq!(p.changes.extended, Some(true));
            let mut extended = case(Status::EnProceso);
            extended.extended = true;
            assert!(matches!(
                plan(&extended, &a, &e, &facts, ctx, day(TODAY)),
                Err(OirsError::Conflict(_))
            ));
            assert!(matches!(
                plan(
                    &case(Status::EnProceso),
                    &a,
                    &e,
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Conflict(_))
            ));
        });
    }

    #[test]
    fn waiting_for_the_resident_moves_the_deadline_by_the_days_waited() {
        with_ctx(|ctx| {
            let a = actor(Role::Department, Some("dimao"));
            let p = plan(
                &case(Status::EnProceso),
                &a,
                &ev(EventKind::PedirInformacion, Some("¿Qué esquina?")),
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.changes.paused_since, Some(Some(day(TODAY))));
            assert!(
                matches!(&p.messages[0], Message::Email(m) if m.to == "ana@example.cl"
                && m.body.contains("https://muni.example.cl/seguimiento?folio=OIRS-2026-000042"))
            );
            let mut paused = case(Status::PendienteInformacion);
            paused.paused_since = Some(day("2026-12-01"));
            // Tue 1 Dec → Thu 3 Dec: two business days waited.
            let p = plan(
                &paused,
                &a,
                &ev(EventKind::Reanudar, None),
                &Facts::default(),
                ctx,
                day("2026-12-03"),
            )
            .expect("valid");
            assert_eq!(p.changes.paused_since, Some(None));
            assert_eq!(p.changes.due_date, Some(day("2026-12-17")));
        });
    }

    #[test]
    fn answers_and_closing_follow_the_status_machine() {
        with_ctx(|ctx| {
            let a = actor(Role::Department, Some("dimao"));
            let p = plan(
                &case(Status::EnProceso),
                &a,
                &ev(EventKind::Responder, Some("Retiramos la basura.")),
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.to, Status::Respondido);
            assert_eq!(p.changes.answer.as_deref(), Some("Retiramos la basura."));
            // A blocked person's e-mail is not written.
            let blocked = Facts {
                blocked: true,
                ..Facts::default()
            };
            let p = plan(
                &case(Status::EnProceso),
                &a,
                &ev(EventKind::Responder, Some("Listo.")),
                &blocked,
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert!(p.messages.is_empty());
            assert!(matches!(
                plan(
                    &case(Status::Cerrado),
                    &a,
                    &ev(EventKind::Responder, Some("x")),
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Conflict(_))
            ));
            assert!(matches!(
                plan(
                    &case(Status::EnProceso),
                    &a,
                    &ev(EventKind::Responder, Some("  ")),
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Invalid("text", _))
            ));
            // Other departments' cases are out of reach.
            assert!(matches!(
                plan(
                    &case(Status::EnProceso),
                    &actor(Role::Department, Some("dom")),
                    &ev(EventKind::Comentar, Some("x")),
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Forbidden)
            ));
        });
    }

    #[test]
    fn closing_as_a_duplicate_points_the_resident_to_the_other_folio() {
        with_ctx(|ctx| {
            let a = actor(Role::Coordinator, None);
            let mut e = ev(EventKind::Cerrar, None);
            e.duplicate_of = Some("OIRS-2026-000041".into());
            let facts = Facts {
                duplicate_exists: true,
                ..Facts::default()
            };
            let p = plan(&case(Status::Derivado), &a, &e, &facts, ctx, day(TODAY)).expect("valid");
            assert_eq!(p.to, Status::Cerrado);
            assert_eq!(p.changes.duplicate_of.as_deref(), Some("OIRS-2026-000041"));
            assert!(matches!(&p.messages[0], Message::Email(m)
                if m.body.contains("https://muni.example.cl/seguimiento?folio=OIRS-2026-000041")));
            assert!(matches!(
                plan(
                    &case(Status::Derivado),
                    &a,
                    &e,
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Invalid("duplicate_of", _))
            ));
            e.duplicate_of = Some("OIRS-2026-000042".into());
            assert!(matches!(
                plan(&case(Status::Derivado), &a, &e, &facts, ctx, day(TODAY)),
                Err(OirsError::Invalid("duplicate_of", _))
            ));
        });
    }

    #[test]
    fn closing_an_answered_case_invites_the_resident_to_rate_it() {
        with_ctx(|ctx| {
            let a = actor(Role::Department, Some("dimao"));
            let p = plan(
                &case(Status::Respondido),
                &a,
                &ev(EventKind::Cerrar, None),
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.to, Status::Cerrado);
            assert!(matches!(&p.messages[..], [Message::Email(m)]
                if m.to == "ana@example.cl" && m.subject.starts_with("¿Cómo evalúa")
                    && m.body.contains("https://muni.example.cl/seguimiento?folio=")));
            let blocked = Facts {
                blocked: true,
                ..Facts::default()
            };
            let p = plan(
                &case(Status::Respondido),
                &a,
                &ev(EventKind::Cerrar, None),
                &blocked,
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert!(p.messages.is_empty(), "a blocked person gets no invitation");
        });
    }

    #[test]
    fn correcting_the_topic_checks_it() {
        with_ctx(|ctx| {
            let a = actor(Role::Department, Some("dimao"));
            let mut e = ev(EventKind::CorregirTema, None);
            e.topic = Some("alumbrado".into());
            let p = plan(
                &case(Status::Derivado),
                &a,
                &e,
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.changes.topic.as_deref(), Some("alumbrado"));
            e.topic = Some("ovnis".into());
            assert!(matches!(
                plan(
                    &case(Status::Derivado),
                    &a,
                    &e,
                    &Facts::default(),
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Invalid("topic", _))
            ));
        });
    }

    #[test]
    fn channels_not_in_use_send_nothing() {
        let cal = calendar();
        let ctx = WorkContext {
            tz: chrono_tz::America::Santiago,
            calendar: &cal,
            channels: Channels {
                webhook: false,
                email: false,
            },
            topics: &[],
            public_base_url: "http://x",
        };
        let p = plan(
            &case(Status::EnProceso),
            &actor(Role::Admin, None),
            &ev(EventKind::Responder, Some("ok")),
            &Facts::default(),
            &ctx,
            day(TODAY),
        )
        .expect("valid");
        assert!(p.messages.is_empty());
    }

    #[test]
    fn assigning_needs_a_member_of_the_department_and_stays_internal() {
        let c = case(Status::EnProceso);
        let mut e = ev(EventKind::Asignar, None);
        e.assignee = Some("pedro".into());
        let member = Facts {
            assignee: Some("pedro".into()),
            ..Facts::default()
        };
        with_ctx(|ctx| {
            let p = plan(
                &c,
                &actor(Role::Department, Some("dimao")),
                &e,
                &member,
                ctx,
                day(TODAY),
            )
            .expect("a colleague may assign");
            assert_eq!(p.changes.assignee, Some(Some("pedro".into())));
            assert_eq!(p.to, Status::EnProceso);
            assert!(!p.public);
            // Not a member (inactive, other department, unknown): 422 naming the field.
            let err = plan(
                &c,
                &actor(Role::Coordinator, None),
                &e,
                &Facts::default(),
                ctx,
                day(TODAY),
            )
            .expect_err("not a member");
            assert!(matches!(err, OirsError::Invalid("assignee", _)));
            // Another department's staff may not assign.
            let err = plan(
                &c,
                &actor(Role::Department, Some("obras")),
                &e,
                &member,
                ctx,
                day(TODAY),
            )
            .expect_err("other department");
            assert!(matches!(err, OirsError::Forbidden));
            // Already theirs: 409; closed: 409.
            let mut theirs = c.clone();
            theirs.assignee = Some("pedro".into());
            assert!(matches!(
                plan(
                    &theirs,
                    &actor(Role::Coordinator, None),
                    &e,
                    &member,
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Conflict(_))
            ));
            assert!(matches!(
                plan(
                    &case(Status::Cerrado),
                    &actor(Role::Coordinator, None),
                    &e,
                    &member,
                    ctx,
                    day(TODAY)
                ),
                Err(OirsError::Conflict(_))
            ));
        });
    }

    #[test]
    fn rerouting_clears_the_assignee() {
        let mut c = case(Status::EnProceso);
        c.assignee = Some("pedro".into());
        let mut e = ev(EventKind::Derivar, Some("Corresponde a obras"));
        e.department = Some("obras".into());
        let facts = Facts {
            target: Some(dept("obras", "")),
            current: Some(dept("dimao", "")),
            ..Facts::default()
        };
        with_ctx(|ctx| {
            let p = plan(
                &c,
                &actor(Role::Coordinator, None),
                &e,
                &facts,
                ctx,
                day(TODAY),
            )
            .expect("valid");
            assert_eq!(p.changes.assignee, Some(None));
        });
    }
}
