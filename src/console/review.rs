//! "Revisión del asistente" (analysts and admins): the worklist of what residents asked and
//! the assistant did not answer, with one click to teach it (assign to an answer, mark out of
//! scope, or write a new answer), the taught texts with undo, and the safety gate's figures
//! when a change is refused. Over the same functions as the catalog review API.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::NaiveDate;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{local_millis, notice, see_other, Console, PageError, PageResult};
use crate::analytics::report::pct;
use crate::app::AppState;
use crate::chat::overlay;
use crate::http::{ApiError, ApiPath, ApiQuery};
use crate::review::{self, gate::Figures, GateReport, Refusal, ROLES};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/revision", get(page))
        .route("/staff/revision/ensenar", post(teach))
        .route("/staff/revision/ejemplos/{id}/deshacer", post(undo))
        .route("/staff/revision/nueva", get(draft_page).post(draft_save))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    desde: Option<String>,
    hasta: Option<String>,
    ok: Option<String>,
}

fn day(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "Escriba la fecha como 2026-04-20.")),
    }
}

/// A figure's Spanish label, its key in the gate's report, and how to read it.
type Named = (&'static str, &'static str, fn(&Figures) -> f64);

/// The gate's figures as rows people read: figure, before, after, whether it got worse.
fn figure_rows(report: &GateReport) -> Vec<Value> {
    let names: [Named; 6] = [
        ("Consultas respondidas", "answer_rate", |f| f.answer_rate),
        ("Respuestas correctas", "answer_precision", |f| {
            f.answer_precision
        }),
        (
            "Tema correcto respondido u ofrecido",
            "right_topic_offered",
            |f| f.right_topic_offered,
        ),
        ("Consultas válidas no entendidas", "false_fallbacks", |f| {
            f.false_fallbacks
        }),
        (
            "Preguntas ajenas reconocidas como tales",
            "out_of_scope_fallback",
            |f| f.out_of_scope_fallback,
        ),
        (
            "Preguntas ajenas respondidas",
            "out_of_scope_answered",
            |f| f.out_of_scope_answered,
        ),
    ];
    let mut rows = Vec::new();
    for (b, a) in report.before.iter().zip(&report.after) {
        for (label, key, get) in &names {
            let worse = report.lowered.contains(&format!("{}: {key}", b.set));
            rows.push(context! {
                set => b.set.clone(),
                label => *label,
                before => pct(get(b)),
                after => pct(get(a)),
                worse => worse,
            });
        }
    }
    rows
}

struct Refused {
    text: String,
    intent: Option<String>,
    report: GateReport,
}

async fn view(
    state: &AppState,
    c: &Console,
    q: &PageQuery,
    error: Option<&ApiError>,
    refused: Option<Refused>,
) -> PageResult {
    c.require(ROLES)?;
    let to = day("hasta", &q.hasta)?.unwrap_or_else(|| state.today());
    let from = day("desde", &q.desde)?.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(ApiError::invalid("desde", "La fecha inicial es posterior a la final.").into());
    }
    let work = crate::review::routes::worklist(state, from, to).await?;
    let engine = state.chat.engine();
    let title_of = |id: &str| {
        engine
            .catalog
            .intent(id)
            .map(|i| i.title.clone())
            .unwrap_or_else(|| "(respuesta eliminada)".into())
    };
    let mut intents: Vec<(String, String)> = engine
        .catalog
        .intents
        .iter()
        .map(|i| (i.id.clone(), i.title.clone()))
        .collect();
    intents.sort_by_key(|a| crate::chat::text::sort_key(&a.1));
    intents.dedup_by(|a, b| a.0 == b.0);
    let groups: Vec<Value> = work
        .groups
        .iter()
        .map(|g| {
            context! {
                text => g.text,
                count => g.count,
                messages => g.messages,
                fell_back => g.decision == "fallback",
                guess => g.best_title,
                guess_id => g.best_intent,
                confidence => g.confidence.map(pct),
                variants => g.variants,
                draft_url => format!("/staff/revision/nueva?texto={}", super::urlencode(&g.text)),
            }
        })
        .collect();
    let unhelpful: Vec<Value> = work
        .unhelpful
        .iter()
        .map(|u| {
            context! {
                title => u.title.clone().unwrap_or_else(|| "(respuesta eliminada)".into()),
                intent => u.intent,
                unhelpful => u.unhelpful,
                rated => u.rated,
                texts => u.texts.iter().map(|t| context! { text => t.text, count => t.count }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let ov = overlay::load(&state.store).await?;
    let examples: Vec<Value> = ov
        .examples
        .iter()
        .rev()
        .map(|e| {
            context! {
                id => e.id,
                text => e.text,
                intent => e.intent.as_deref().map(title_of).unwrap_or_else(|| "Fuera de ámbito".into()),
                by => e.created_by,
                at => local_millis(state, e.created_at),
            }
        })
        .collect();
    let drafts: Vec<Value> = ov
        .intents
        .iter()
        .map(|d| {
            context! {
                title => d.title,
                topic => engine.catalog.topic_label(&d.topic),
                answer => d.answer,
            }
        })
        .collect();
    let refused = refused.map(|r| {
        context! {
            text => r.text,
            intent => r.intent.clone().unwrap_or_default(),
            intent_title => r.intent.as_deref().map(title_of).unwrap_or_else(|| "Fuera de ámbito".into()),
            rows => figure_rows(&r.report),
        }
    });
    Ok(c.page(
        state,
        "review.html",
        "Revisión del asistente",
        context! {
            desde => from.to_string(),
            hasta => to.to_string(),
            groups => groups,
            unhelpful => unhelpful,
            intents => intents.into_iter().map(|(id, title)| context! { id, title }).collect::<Vec<_>>(),
            examples => examples,
            drafts => drafts,
            refused => refused,
            notice => notice_text(q.ok.as_deref()),
            error => error.map(|e| e.message.clone()),
        },
    ))
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "ensenado" => Some("Listo: el asistente ya responde así a esa consulta."),
        "fuera" => Some("Listo: el asistente ya no intentará responder esa consulta."),
        "deshecho" => Some("Cambio deshecho: el asistente vuelve a responder como antes."),
        "nueva" => Some("Respuesta nueva guardada: el asistente ya la usa para esa consulta."),
        other => notice(Some(other)),
    }
}

async fn page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> PageResult {
    view(&state, &c, &q, None, None).await
}

fn field(form: &HashMap<String, String>, name: &str) -> String {
    form.get(name)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The API's English validation messages, as the console says them.
fn spanish(e: &ApiError) -> ApiError {
    let message = match e.code.as_str() {
        "already_taught" => "Esa consulta ya fue enseñada; deshaga ese cambio primero.",
        "intent_exists" => "Ya existe una respuesta con ese título.",
        _ => match e.field.as_deref() {
            Some("text") => "La consulta debe tener letras o números (hasta 300 caracteres).",
            Some("intent") => "Elija una respuesta de la lista.",
            Some("title") => "El título debe tener entre 3 y 120 caracteres, con letras.",
            Some("topic") => "Elija un tema de la lista.",
            Some("answer") => "La respuesta está vacía o usa un dato del municipio que no existe (revise las {{llaves}}).",
            Some("buttons") => "Uno de los botones no existe.",
            _ => return ApiError::new(e.status, &e.code, e.message.clone()),
        },
    };
    ApiError::new(e.status, &e.code, message)
}

async fn teach(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    c.require(ROLES)?;
    let text = field(&form, "texto");
    let intent = Some(field(&form, "intencion")).filter(|s| !s.is_empty());
    let confirm = form.get("confirmar").is_some_and(|v| v == "si");
    let q = PageQuery {
        desde: form.get("desde").cloned(),
        hasta: form.get("hasta").cloned(),
        ok: None,
    };
    if !review::has_word(&text) || text.chars().count() > crate::review::routes::MAX_EXAMPLE_CHARS {
        let e = spanish(&ApiError::invalid("text", ""));
        return rejected(view(&state, &c, &q, Some(&e), None).await, &e);
    }
    let back = format!(
        "/staff/revision?desde={}&hasta={}",
        q.desde.clone().unwrap_or_default(),
        q.hasta.clone().unwrap_or_default()
    );
    match review::teach(&state, &c.user, intent.clone(), text.clone(), confirm).await {
        Ok(_) => Ok(see_other(
            &back,
            if intent.is_some() {
                "ensenado"
            } else {
                "fuera"
            },
        )),
        Err(Refusal::Lowered(report)) => {
            let e = ApiError::conflict(
                "figures_lowered",
                "El cambio empeora cómo responde el asistente en las pruebas; no se aplicó.",
            );
            let page = view(
                &state,
                &c,
                &q,
                Some(&e),
                Some(Refused {
                    text,
                    intent,
                    report,
                }),
            )
            .await;
            rejected(page, &e)
        }
        Err(Refusal::Api(e)) if e.status.is_client_error() && e.status.as_u16() != 403 => {
            let e = spanish(&e);
            rejected(view(&state, &c, &q, Some(&e), None).await, &e)
        }
        Err(Refusal::Api(e)) => Err(PageError(e)),
    }
}

fn rejected(page: PageResult, e: &ApiError) -> PageResult {
    let mut resp = page?;
    *resp.status_mut() = e.status;
    Ok(resp)
}

async fn undo(
    State(state): State<AppState>,
    c: Console,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    crate::review::routes::remove_example(State(state.clone()), c.user.clone(), ApiPath(id))
        .await?;
    Ok(see_other("/staff/revision", "deshecho"))
}

#[derive(Deserialize, Default)]
struct DraftQuery {
    texto: Option<String>,
}

async fn draft_view(
    state: &AppState,
    c: &Console,
    values: &HashMap<String, String>,
    error: Option<&ApiError>,
) -> PageResult {
    c.require(ROLES)?;
    let engine = state.chat.engine();
    let mut topics: Vec<(String, String)> = engine
        .catalog
        .topics
        .iter()
        .map(|t| (t.id.clone(), engine.catalog.topic_label(&t.id)))
        .collect();
    topics.sort_by_key(|a| crate::chat::text::sort_key(&a.1));
    let mut keys: Vec<&String> = engine.catalog.profile.values.keys().collect();
    keys.sort();
    Ok(c.page(
        state,
        "review_draft.html",
        "Nueva respuesta del asistente",
        context! {
            texto => values.get("texto").cloned().unwrap_or_default(),
            titulo => values.get("titulo").cloned().unwrap_or_default(),
            tema => values.get("tema").cloned().unwrap_or_default(),
            respuesta => values.get("respuesta").cloned().unwrap_or_default(),
            topics => topics.into_iter().map(|(id, label)| context! { id, label }).collect::<Vec<_>>(),
            placeholders => keys.iter().map(|k| format!("{{{{{k}}}}}")).collect::<Vec<_>>(),
            error => error.map(|e| e.message.clone()),
            error_field => error.and_then(|e| e.field.clone()),
        },
    ))
}

async fn draft_page(
    State(state): State<AppState>,
    c: Console,
    ApiQuery(q): ApiQuery<DraftQuery>,
) -> PageResult {
    let mut values = HashMap::new();
    values.insert("texto".to_string(), q.texto.unwrap_or_default());
    draft_view(&state, &c, &values, None).await
}

/// Saves a new answer and teaches it the text it was written for.
async fn draft_save(
    State(state): State<AppState>,
    c: Console,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    c.verify(&form)?;
    let input = crate::review::routes::IntentIn {
        topic: field(&form, "tema"),
        title: field(&form, "titulo"),
        answer: field(&form, "respuesta"),
        buttons: Vec::new(),
    };
    let created = match crate::review::routes::add_intent(
        State(state.clone()),
        c.user.clone(),
        crate::http::ApiJson(input),
    )
    .await
    {
        Ok((_, axum::Json(d))) => d,
        Err(e) if e.status.is_client_error() && e.status.as_u16() != 403 => {
            let e = spanish(&e);
            return rejected(draft_view(&state, &c, &form, Some(&e)).await, &e);
        }
        Err(e) => return Err(PageError(e)),
    };
    let text = field(&form, "texto");
    if review::has_word(&text) {
        match review::teach(&state, &c.user, Some(created.id.clone()), text, false).await {
            Ok(_) => {}
            Err(Refusal::Lowered(report)) => {
                let e = ApiError::conflict(
                    "figures_lowered",
                    "La respuesta se guardó, pero enseñarle esta consulta empeora las pruebas; no se aplicó.",
                );
                let q = PageQuery::default();
                let refused = Refused {
                    text: field(&form, "texto"),
                    intent: Some(created.id.clone()),
                    report,
                };
                return rejected(view(&state, &c, &q, Some(&e), Some(refused)).await, &e);
            }
            Err(Refusal::Api(e)) => {
                let e = spanish(&e);
                return rejected(
                    view(&state, &c, &PageQuery::default(), Some(&e), None).await,
                    &e,
                );
            }
        }
    }
    Ok(see_other("/staff/revision", "nueva"))
}
