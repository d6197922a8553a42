//! GeoReport service requests: filing one with an app's key (an OIRS case, routed like any
//! other), and the public listing and single request. What is public: status, service, dates,
//! department, address, coordinates and the public status label; the description only when
//! the resident chose to publish it. Never the name, RUT, e-mail or phone.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::render::{self, Format, Record};
use super::services::{self, Labels, Service};
use super::{format_of, keys, Open311Error, Open311Result};
use crate::app::AppState;
use crate::http::ApiPath;
use crate::oirs::domain::{Channel, Folio, Status};
use crate::oirs::routes::CaseIn;
use crate::oirs::service::millis;
use crate::store::StoreError;
use crate::with_pool;

/// The longest span a listing covers (GeoReport: "may not span more than 90 days").
const MAX_SPAN_DAYS: i64 = 90;
/// Requests in one listing at most, newest first.
const MAX_LISTED: i64 = 1000;

/// The columns a public request is made of: nothing personal.
const PUBLIC_COLUMNS: &str = "c.folio, c.topic, c.status, c.department_id, c.description, \
    c.public_description, c.address, c.latitude, c.longitude, c.received_at, c.updated_at, c.due_date";

type PublicRow = (
    String,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
    String,
);

/// What a listing asks for, parsed from GeoReport's query parameters.
#[derive(Debug, PartialEq)]
pub struct Filter {
    /// `service_request_id` (folios): overrides the other parameters.
    pub folios: Option<Vec<String>>,
    pub service_codes: Vec<String>,
    /// `Some(true)` open only, `Some(false)` closed only.
    pub open: Option<bool>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn list_param(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A W3C date-time (`2026-12-01T09:00:00-03:00`, `…Z`) or a local date (`2026-12-01`, from
/// its first instant).
fn instant(v: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl Filter {
    /// GeoReport's parameters; unknown ones (`jurisdiction_id`, an app's own) are ignored.
    pub fn parse(query: &str, tz: Tz, now: DateTime<Utc>) -> Result<Self, String> {
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| params.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let date = |k: &'static str| -> Result<Option<DateTime<Utc>>, String> {
            match get(k) {
                None => Ok(None),
                Some(v) => instant(v, tz).map(Some).ok_or_else(|| {
                    format!("{k}: use una fecha y hora W3C, por ejemplo 2026-12-01T00:00:00-03:00.")
                }),
            }
        };
        let open = match get("status").map(list_param).as_deref() {
            None => None,
            Some([one]) if one == "open" => Some(true),
            Some([one]) if one == "closed" => Some(false),
            Some(all) if all.iter().all(|s| s == "open" || s == "closed") => None,
            Some(_) => return Err("status: use open o closed.".into()),
        };
        let span = Duration::days(MAX_SPAN_DAYS);
        let (start, end) = match (date("start_date")?, date("end_date")?) {
            (Some(s), Some(e)) => (s, e),
            (Some(s), None) => (s, (s + span).min(now)),
            (None, Some(e)) => (e - span, e),
            (None, None) => (now - span, now),
        };
        if start > end {
            return Err("start_date debe ser anterior a end_date.".into());
        }
        if end - start > span {
            return Err(format!(
                "El rango de fechas no puede superar {MAX_SPAN_DAYS} días."
            ));
        }
        Ok(Self {
            folios: get("service_request_id").map(|v| {
                list_param(v)
                    .iter()
                    .filter_map(|f| Folio::parse(f))
                    .map(|f| f.to_string())
                    .collect()
            }),
            service_codes: get("service_code").map(list_param).unwrap_or_default(),
            open,
            start,
            end,
        })
    }
}

/// The public requests matching `filter`, newest first: cases on an active service's topic
/// whose type is one a service files.
async fn public_requests(state: &AppState, filter: &Filter) -> Result<Vec<PublicRow>, StoreError> {
    if filter.folios.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let rows: Vec<PublicRow> = with_pool!(&state.store, pool => {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "SELECT {PUBLIC_COLUMNS} FROM cases c JOIN open311_services s ON s.service_code = c.topic AND s.active \
             WHERE c.case_type IN (SELECT case_type FROM open311_services WHERE active)"
        ));
        if let Some(folios) = &filter.folios {
            qb.push(" AND c.folio IN (");
            let mut sep = qb.separated(", ");
            for folio in folios {
                sep.push_bind(folio.clone());
            }
            qb.push(")");
        } else {
            qb.push(" AND c.received_at >= ").push_bind(filter.start.timestamp_millis());
            qb.push(" AND c.received_at <= ").push_bind(filter.end.timestamp_millis());
            if !filter.service_codes.is_empty() {
                qb.push(" AND c.topic IN (");
                let mut sep = qb.separated(", ");
                for code in &filter.service_codes {
                    sep.push_bind(code.clone());
                }
                qb.push(")");
            }
            match filter.open {
                Some(true) => { qb.push(" AND c.status NOT IN ('respondido', 'cerrado')"); }
                Some(false) => { qb.push(" AND c.status IN ('respondido', 'cerrado')"); }
                None => {}
            }
        }
        qb.push(" ORDER BY c.received_at DESC, c.id DESC LIMIT ").push_bind(MAX_LISTED);
        qb.build_query_as::<PublicRow>().fetch_all(pool).await?
    });
    Ok(rows)
}

/// A W3C date-time with the local offset (`2026-12-01T09:30:00-03:00`).
fn w3c(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn public_record(state: &AppState, labels: &Labels, row: PublicRow) -> Record {
    let (
        folio,
        topic,
        status,
        department,
        description,
        publish,
        address,
        lat,
        long,
        received,
        updated,
        due,
    ) = row;
    let tz = state.tz;
    let status = status.parse::<Status>().unwrap_or(Status::Recibido);
    // The due date's last instant, local time.
    let expected = NaiveDate::parse_from_str(&due, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .and_then(|d| tz.from_local_datetime(&d).earliest())
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, false));
    let published = (publish && !description.is_empty()).then_some(description);
    let location = crate::oirs::location::Location::stored(lat, long);
    Record::default()
        .field("service_request_id", folio)
        .field("status", if status.is_open() { "open" } else { "closed" })
        .field("status_notes", status.label())
        .field(
            "service_name",
            state.chat.engine().catalog.topic_label(&topic),
        )
        .field("service_code", topic)
        .field("description", published)
        .field("agency_responsible", labels.department(&department))
        .field("service_notice", Value::Null)
        .field("requested_datetime", w3c(millis(received), tz))
        .field("updated_datetime", w3c(millis(updated), tz))
        .field("expected_datetime", expected)
        .field("address", address)
        .field("address_id", Value::Null)
        .field("zipcode", Value::Null)
        .field("lat", location.map(|l| l.lat()))
        .field("long", location.map(|l| l.long()))
        .field("media_url", Value::Null)
}

/// `GET requests.{json,xml}` with GeoReport's filters.
pub async fn list(state: &AppState, format: Format, query: Option<&str>) -> Open311Result {
    let filter = Filter::parse(query.unwrap_or(""), state.tz, Utc::now())
        .map_err(|m| Open311Error::bad_request(format, m))?;
    let err = |e| Open311Error::store(format, e);
    let rows = public_requests(state, &filter).await.map_err(err)?;
    let labels = Labels::load(&state.store).await.map_err(err)?;
    let records: Vec<Record> = rows
        .into_iter()
        .map(|r| public_record(state, &labels, r))
        .collect();
    Ok(render::answer(
        StatusCode::OK,
        format,
        "service_requests",
        "request",
        &records,
    ))
}

/// `GET requests/{service_request_id}.{json,xml}`: a list of one, as the specification has
/// it; 404 for a folio that is not a public request (unknown, or not territorial).
pub async fn one(State(state): State<AppState>, ApiPath(file): ApiPath<String>) -> Open311Result {
    let (id, format) = format_of(&file)?;
    let not_found = || {
        Open311Error::not_found(
            format,
            "No existe una solicitud pública con ese service_request_id.",
        )
    };
    let folio = Folio::parse(id).ok_or_else(not_found)?.to_string();
    let filter = Filter {
        folios: Some(vec![folio]),
        service_codes: Vec::new(),
        open: None,
        start: Utc::now(),
        end: Utc::now(),
    };
    let err = |e| Open311Error::store(format, e);
    let row = public_requests(&state, &filter)
        .await
        .map_err(err)?
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    let labels = Labels::load(&state.store).await.map_err(err)?;
    Ok(render::answer(
        StatusCode::OK,
        format,
        "service_requests",
        "request",
        &[public_record(&state, &labels, row)],
    ))
}

/// GeoReport's parameter for each field of a filing, to name it in errors.
fn param_of(field: &str) -> &str {
    match field {
        "name" => "first_name",
        "address" => "address_string",
        "topic" | "type" => "service_code",
        other => other,
    }
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "si" | "sí" | "yes")
    )
}

/// The case a GeoReport filing describes, before the OIRS rules check it.
fn case_input(p: &HashMap<String, String>, service: &Service) -> CaseIn {
    let get = |k: &str| p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let name = [get("first_name"), get("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let number = |k: &str| get(k).map(|s| s.replace(',', ".").parse().unwrap_or(f64::NAN));
    CaseIn {
        case_type: service.case_type.clone(),
        topic: service.code.clone(),
        description: get("description").unwrap_or_default().to_string(),
        // Apps may file without a name; the case still needs one to address the answer to.
        name: if name.is_empty() {
            "Sin nombre".into()
        } else {
            name
        },
        rut: None,
        email: get("email").map(String::from),
        phone: get("phone").map(String::from),
        address: get("address_string").map(String::from),
        lat: number("lat"),
        long: number("long"),
        public_description: truthy(get("public_description")),
        chat_session_id: None,
        right: None,
        // The app collected the resident's consent to file; its key holder answers for it.
        consent: true,
    }
}

/// `POST requests.{json,xml}` (form-encoded, GeoReport's fields): files an OIRS case of the
/// service's type on its topic, attributed to the key in the audit log.
pub async fn create(state: &AppState, format: Format, body: &[u8]) -> Open311Result {
    let p: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let store_err = |e| Open311Error::store(format, e);
    let holder = match get("api_key") {
        Some(key) => keys::holder(&state.store, key).await.map_err(store_err)?,
        None => None,
    }
    .ok_or_else(|| {
        Open311Error::new(
            StatusCode::FORBIDDEN,
            format,
            "api_key ausente, inválida o revocada: pida una clave a la municipalidad.",
        )
    })?;
    let code = get("service_code")
        .ok_or_else(|| Open311Error::bad_request(format, "service_code: es obligatorio."))?;
    let service = services::active(state)
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|s| s.code == code)
        .ok_or_else(|| {
            Open311Error::bad_request(
                format,
                format!("service_code: no existe el servicio {code:?} (vea services.json)."),
            )
        })?;
    if get("lat").is_none()
        && get("long").is_none()
        && get("address_string").is_none()
        && get("address_id").is_none()
    {
        return Err(Open311Error::bad_request(
            format,
            "Indique dónde está el problema: lat y long, o address_string.",
        ));
    }
    let input = case_input(&p, &service);
    let mut case = crate::oirs::routes::validate(&input, state, Channel::Open311, Utc::now())
        .await
        .map_err(|e| {
            let described: Vec<String> = if e.fields.is_empty() {
                vec![match &e.field {
                    Some(f) => format!("{}: {}", param_of(f), e.message),
                    None => e.message.clone(),
                }]
            } else {
                e.fields
                    .iter()
                    .map(|f| format!("{}: {}", param_of(&f.field), f.message))
                    .collect()
            };
            let status = if e.status.is_client_error() {
                StatusCode::BAD_REQUEST
            } else {
                e.status
            };
            Open311Error::new(status, format, described.join(" "))
        })?;
    case.open311_key = Some(holder);
    let (_, filed) = crate::oirs::routes::file_and_answer(state, case, None)
        .await
        .map_err(|e| Open311Error::new(e.status, format, e.message))?;
    let filed = filed.0;
    let notice = format!(
        "Recibimos su reporte con el folio {}; lo atiende {}. Plazo de respuesta: {}. \
         Código de seguimiento (para consultar el caso en la página de la municipalidad): {}.",
        filed.folio,
        filed.department_name,
        filed.due_date.format("%d-%m-%Y"),
        filed.tracking_code
    );
    let record = Record::default()
        .field("service_request_id", filed.folio)
        .field("service_notice", notice)
        .field("account_id", Value::Null);
    Ok(render::answer(
        StatusCode::CREATED,
        format,
        "service_requests",
        "request",
        &[record],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc)
    }

    #[test]
    fn filters_parse_with_their_defaults() {
        let tz: Tz = "America/Santiago".parse().expect("tz");
        let f = Filter::parse("", tz, now()).expect("empty");
        assert_eq!(f.end, now());
        assert_eq!(f.end - f.start, Duration::days(90));
        assert_eq!(f.open, None);

        let f = Filter::parse(
            "service_code=alumbrado_publico,calles_veredas&status=open&start_date=2026-11-01T00:00:00-03:00&jurisdiction_id=tome",
            tz,
            now(),
        )
        .expect("filters");
        assert_eq!(f.service_codes, ["alumbrado_publico", "calles_veredas"]);
        assert_eq!(f.open, Some(true));
        assert_eq!(f.start.to_rfc3339(), "2026-11-01T03:00:00+00:00");
        assert_eq!(f.end, now(), "at most now");
        assert_eq!(
            Filter::parse("status=open,closed", tz, now())
                .expect("both")
                .open,
            None
        );
        let f = Filter::parse("service_request_id=oirs-2026-000001,x", tz, now()).expect("ids");
        assert_eq!(f.folios, Some(vec!["OIRS-2026-000001".to_string()]));
        let f = Filter::parse("end_date=2026-11-30", tz, now()).expect("local date");
        assert_eq!(f.end.to_rfc3339(), "2026-11-30T03:00:00+00:00");
    }

    #[test]
    fn bad_filters_say_why() {
        let tz: Tz = "America/Santiago".parse().expect("tz");
        for (q, word) in [
            ("status=pending", "status"),
            ("start_date=ayer", "start_date"),
            ("end_date=2026-13-01", "end_date"),
            (
                "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
                "90",
            ),
            (
                "start_date=2026-06-01T00:00:00Z&end_date=2026-05-01T00:00:00Z",
                "anterior",
            ),
        ] {
            let e = Filter::parse(q, tz, now()).expect_err(q);
            assert!(e.contains(word), "{q}: {e}");
        }
    }

    #[test]
    fn filings_map_to_cases() {
        let s = Service {
            code: "alumbrado_publico".into(),
            case_type: "reclamo".into(),
            description: String::new(),
            keywords: String::new(),
        };
        let p: HashMap<String, String> = form_urlencoded::parse(
            b"first_name=Ana&last_name=P%C3%A9rez&lat=-36,6&long=-72.9&description=x&public_description=true",
        )
        .into_owned()
        .collect();
        let c = case_input(&p, &s);
        assert_eq!(c.name, "Ana Pérez");
        assert_eq!((c.lat, c.long), (Some(-36.6), Some(-72.9)));
        assert!(c.public_description && c.consent);
        assert_eq!(
            (c.case_type.as_str(), c.topic.as_str()),
            ("reclamo", "alumbrado_publico")
        );
        let c = case_input(&HashMap::new(), &s);
        assert_eq!(c.name, "Sin nombre");
        assert!(!c.public_description);
        assert_eq!(param_of("name"), "first_name");
        assert_eq!(param_of("address"), "address_string");
    }
}
