//! Files on the resident pages, without JavaScript: the /oirs form takes up to five photos or
//! PDFs with the case, and the tracking page lists a case's files, downloads them and takes
//! more. The tracking code travels in POST bodies only, as on the rest of the tracking page.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::{no_store, track_view, TrackForm};
use crate::app::AppState;
use crate::http::throttle::ClientAddr;
use crate::http::ApiError;
use crate::oirs::attachments::{self, Prepared, Source};
use crate::oirs::routes::{authorize, TrackQuery};
use crate::oirs::uploads::file_response;

/// A file as sent in a form: its name and bytes.
pub type SentFile = (Option<String>, Bytes);

/// The text fields and the files (field `archivos` or `archivo`) of a form posted either
/// URL-encoded or as multipart.
pub async fn read_form(
    state: &AppState,
    req: Request,
) -> Result<(HashMap<String, String>, Vec<SentFile>), ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(values) = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("invalid_form", "the form does not parse"))?;
        return Ok((values, Vec::new()));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            crate::http::extract::payload_too_large()
        } else {
            ApiError::bad_request("invalid_multipart", "the form does not parse")
        }
    };
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|_| ApiError::bad_request("invalid_multipart", "the form does not parse"))?;
    let mut values = HashMap::new();
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "archivos" || name == "archivo" {
            let file_name = field.file_name().map(String::from);
            let data = field.bytes().await.map_err(bad)?;
            // A file input left empty still sends an empty part.
            if !data.is_empty() || file_name.as_deref().is_some_and(|n| !n.is_empty()) {
                files.push((file_name, data));
            }
        } else {
            values.insert(name, field.text().await.map_err(bad)?);
        }
    }
    Ok((values, files))
}

/// Checks and cleans the files of a form; the message names the file that is refused.
pub async fn prepare_all(files: Vec<SentFile>) -> Result<Vec<Prepared>, String> {
    if files.len() > attachments::MAX_PER_CASE as usize {
        return Err(format!(
            "Puede adjuntar hasta {} archivos.",
            attachments::MAX_PER_CASE
        ));
    }
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|(name, data)| {
                attachments::prepare(name.as_deref(), data).map_err(|r| {
                    let shown = name
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or("archivo");
                    format!("«{shown}»: {r}")
                })
            })
            .collect()
    })
    .await
    .map_err(|_| "No pudimos leer los archivos; intente nuevamente.".to_string())?
}

/// Stores the prepared files of a case just filed from the form.
pub async fn store_all(state: &AppState, folio: &str, files: &[Prepared]) -> Result<(), ApiError> {
    if files.is_empty() {
        return Ok(());
    }
    let case = crate::oirs::service::find_case(&state.store, folio)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    for f in files {
        attachments::store(&state.store, case.id, Source::Vecino, None, f).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct DownloadForm {
    folio: Option<String>,
    code: Option<String>,
    rut: Option<String>,
    id: i64,
}

/// A file of the case, for the resident who has its folio and code (or RUT).
pub async fn download(
    State(state): State<AppState>,
    client: ClientAddr,
    Form(f): Form<DownloadForm>,
) -> Result<Response, ApiError> {
    let q = TrackQuery {
        code: f.code,
        rut: f.rut,
    };
    let case = authorize(&state, client, f.folio.as_deref().unwrap_or(""), &q).await?;
    let file = attachments::content(&state.store, case.id, f.id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    Ok(no_store(file_response(file)))
}

/// Attaches a file from the tracking page, then shows the page again with the outcome.
pub async fn upload(
    State(state): State<AppState>,
    client: ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let (values, files) = read_form(&state, req).await?;
    let form = TrackForm {
        folio: values.get("folio").cloned(),
        code: values.get("code").cloned(),
        rut: values.get("rut").cloned(),
    };
    let q = TrackQuery {
        code: form.code.clone(),
        rut: form.rut.clone(),
    };
    let case = authorize(&state, client, form.folio.as_deref().unwrap_or(""), &q).await;
    let outcome: Result<String, (StatusCode, String)> = match (case, files.len()) {
        (Err(e), _) => return Err(e),
        (Ok(_), 0) => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Elija un archivo para adjuntar.".into(),
        )),
        (Ok(case), _) if case.status == crate::oirs::domain::Status::Cerrado => Err((
            StatusCode::CONFLICT,
            "El caso está cerrado: ya no se pueden adjuntar archivos.".into(),
        )),
        (Ok(case), _) => match prepare_all(files).await {
            Err(m) => Err((StatusCode::UNPROCESSABLE_ENTITY, m)),
            Ok(prepared) => {
                let mut stored = Ok(String::new());
                for p in &prepared {
                    match attachments::store(&state.store, case.id, Source::Vecino, None, p).await {
                        Ok(out) => stored = Ok(format!("Adjuntamos «{}» a su caso.", out.name)),
                        Err(crate::oirs::service::OirsError::Conflict(m)) => {
                            stored = Err((StatusCode::CONFLICT, m));
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                stored
            }
        },
    };
    let (status, notice, error) = match outcome {
        Ok(n) => (StatusCode::OK, Some(n), None),
        Err((s, m)) => (s, None, Some(m)),
    };
    let mut resp = track_view(&state, client, form, notice, error).await?;
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    Ok(resp)
}
