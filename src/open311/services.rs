//! GeoReport services: the territorial topics listed in `open311_services`, named as the
//! catalog names them, grouped by the department their reports are routed to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::render::{self, Record};
use super::{format_of, Open311Error, Open311Result};
use crate::app::AppState;
use crate::http::ApiPath;
use crate::oirs::service::{self, Names};
use crate::store::{Store, StoreError};
use crate::with_pool;

/// A service as configured: the topic it is, the case type a report on it files.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub code: String,
    pub case_type: String,
    pub description: String,
    pub keywords: String,
}

/// Active services whose topic the catalog still offers for cases, by code.
pub async fn active(state: &AppState) -> Result<Vec<Service>, StoreError> {
    let catalog = &state.chat.engine().catalog;
    Ok(configured(&state.store)
        .await?
        .into_iter()
        .filter(|s| catalog.is_case_topic(&s.code))
        .collect())
}

async fn configured(store: &Store) -> Result<Vec<Service>, StoreError> {
    let rows: Vec<(String, String, String, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT service_code, case_type, description, keywords FROM open311_services WHERE active ORDER BY service_code")
            .fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(code, case_type, description, keywords)| Service {
            code,
            case_type,
            description,
            keywords,
        })
        .collect())
}

/// Listings name the service and the department as residents read them.
pub struct Labels {
    names: Names,
    rules: Vec<service::RoutingRule>,
}

impl Labels {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            names: Names::load(store).await?,
            rules: service::routing_rules(store).await?,
        })
    }

    pub fn department(&self, id: &str) -> String {
        self.names.department(id)
    }

    /// The department reports on `s` are routed to, by name.
    fn group(&self, s: &Service) -> String {
        service::route(&self.rules, &s.case_type, &s.code)
            .map(|d| self.department(&d))
            .unwrap_or_default()
    }
}

fn record(state: &AppState, labels: &Labels, s: &Service) -> Record {
    Record::default()
        .field("service_code", s.code.as_str())
        .field(
            "service_name",
            state.chat.engine().catalog.topic_label(&s.code),
        )
        .field("description", s.description.as_str())
        .field("metadata", false)
        .field("type", "realtime")
        .field("keywords", s.keywords.as_str())
        .field("group", labels.group(s))
}

/// `GET services.{json,xml}`.
pub async fn list(state: &AppState, format: render::Format) -> Open311Result {
    let err = |e| Open311Error::store(format, e);
    let services = active(state).await.map_err(err)?;
    let labels = Labels::load(&state.store).await.map_err(err)?;
    let records: Vec<Record> = services.iter().map(|s| record(state, &labels, s)).collect();
    Ok(render::answer(
        StatusCode::OK,
        format,
        "services",
        "service",
        &records,
    ))
}

/// `GET services/{service_code}.{json,xml}`: no service asks for attributes (`metadata` is
/// false), so a definition is its code and an empty attribute list.
pub async fn definition(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Open311Result {
    let (code, format) = format_of(&file)?;
    let services = active(&state)
        .await
        .map_err(|e| Open311Error::store(format, e))?;
    if !services.iter().any(|s| s.code == code) {
        return Err(Open311Error::not_found(
            format,
            format!("No existe el servicio {code:?}: vea services.json."),
        ));
    }
    Ok(match format {
        render::Format::Json => axum::Json(serde_json::json!({
            "service_code": code,
            "attributes": [],
        }))
        .into_response(),
        render::Format::Xml => (
            [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_definition><service_code>{}</service_code><attributes></attributes></service_definition>",
                render::escape(code)
            ),
        )
            .into_response(),
    })
}
