//! Files attached to a case: photos of the pothole, a PDF of a certificate. What a file is
//! is judged by its first bytes, never by its name or the type the browser declares. Images
//! lose their metadata (EXIF, XMP, IPTC, comments, text chunks: GPS position, camera, owner)
//! by dropping those segments byte for byte, so the photo itself is kept exactly as taken;
//! the thumbnail is the only thing decoded and re-encoded.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::oirs::service::{millis, OirsError};
use crate::store::{now_millis, Store, StoreError};
use crate::write_pool;

/// At most this many bytes per file (5 MB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// At most this many files per case from each side (the resident; staff with their answer).
pub const MAX_PER_CASE: i64 = 5;
/// What an upload request may weigh: one file plus the multipart envelope.
pub const UPLOAD_BODY_LIMIT: usize = MAX_BYTES + 64 * 1024;
/// What filing on /oirs with five files may weigh.
pub const FORM_BODY_LIMIT: usize = MAX_PER_CASE as usize * MAX_BYTES + 64 * 1024;

/// The larger body limit of the routes that take files, if this is one.
pub fn upload_limit(method: &axum::http::Method, path: &str) -> Option<usize> {
    if method != axum::http::Method::POST {
        return None;
    }
    if path == "/oirs" {
        Some(FORM_BODY_LIMIT)
    } else if path.ends_with("/attachments") || path == "/seguimiento/adjuntar" {
        Some(UPLOAD_BODY_LIMIT)
    } else {
        None
    }
}

/// The longest side of a thumbnail, in pixels.
const THUMB_SIDE: u32 = 240;

/// The kinds of file a case accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Pdf,
}

impl Kind {
    /// By content: the format's signature at the start of the file.
    pub fn sniff(bytes: &[u8]) -> Option<Kind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.starts_with(b"%PDF-") {
            Some(Kind::Pdf)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Pdf => "application/pdf",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Pdf => "pdf",
        }
    }
}

/// Why a file was refused; each maps to its own status.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("El archivo pesa más de 5 MB.")]
    TooLarge,
    #[error("Solo se aceptan fotos JPEG o PNG y documentos PDF.")]
    WrongType,
    #[error("La imagen está dañada o incompleta.")]
    Damaged,
    #[error("El archivo está vacío.")]
    Empty,
}

/// A file ready to store: metadata gone, thumbnail made.
#[derive(Debug)]
pub struct Prepared {
    pub name: String,
    pub kind: Kind,
    pub data: Vec<u8>,
    /// A JPEG of at most 240 px a side, for images.
    pub thumbnail: Option<Vec<u8>>,
}

/// Checks and cleans an uploaded file. CPU-bound for images (the thumbnail): call it from
/// `spawn_blocking`.
pub fn prepare(name: Option<&str>, bytes: &[u8]) -> Result<Prepared, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(Refusal::TooLarge);
    }
    let kind = Kind::sniff(bytes).ok_or(Refusal::WrongType)?;
    let data = match kind {
        Kind::Jpeg => strip_jpeg(bytes).ok_or(Refusal::Damaged)?,
        Kind::Png => strip_png(bytes).ok_or(Refusal::Damaged)?,
        Kind::Pdf => bytes.to_vec(),
    };
    let thumbnail = match kind {
        Kind::Jpeg | Kind::Png => Some(thumbnail(&data, kind).ok_or(Refusal::Damaged)?),
        Kind::Pdf => None,
    };
    Ok(Prepared {
        name: file_name(name, kind),
        kind,
        data,
        thumbnail,
    })
}

/// The name as the resident gave it, without folders or control characters, at most 120
/// characters, ending in the extension of what the file really is.
pub fn file_name(given: Option<&str>, kind: Kind) -> String {
    let base = given
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) => stem,
        None => base.as_str(),
    };
    let stem: String = stem.trim().chars().take(110).collect();
    let stem = if stem.trim().is_empty() {
        "adjunto"
    } else {
        stem.trim()
    };
    format!("{stem}.{}", kind.extension())
}

/// A JPEG without its APPn segments other than JFIF (APP0), the colour profile (APP2
/// `ICC_PROFILE`) and Adobe's colour transform (APP14), without comments, and without anything
/// after the end of the image (phones append thumbnails and motion clips there). `None` when
/// the segments do not parse.
pub fn strip_jpeg(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut i = 2;
    loop {
        // Fill bytes may precede a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Some(out);
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&bytes[i..i + 2]);
                i += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*bytes.get(i + 2)?) << 8 | usize::from(*bytes.get(i + 3)?);
        if len < 2 {
            return None;
        }
        let end = i + 2 + len;
        let segment = bytes.get(i..end)?;
        let payload = &segment[4..];
        let keep = match marker {
            0xE0 | 0xEE => true,
            0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
            0xE1..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        i = end;
        if marker == 0xDA {
            // Entropy-coded data up to the next marker that is not stuffing or a restart.
            let start = i;
            loop {
                let b = *bytes.get(i)?;
                if b == 0xFF {
                    let next = *bytes.get(i + 1)?;
                    if next != 0x00 && !(0xD0..=0xD7).contains(&next) && next != 0xFF {
                        break;
                    }
                    i += if next == 0xFF { 1 } else { 2 };
                } else {
                    i += 1;
                }
            }
            out.extend_from_slice(&bytes[start..i]);
        }
    }
}

/// Chunks a PNG needs to show right; every other ancillary chunk (text, `eXIf`, time) goes.
const PNG_KEEP: [&[u8; 4]; 10] = [
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"acTL", b"fcTL",
];

/// A PNG with only its critical chunks and those that change how it looks, and nothing after
/// `IEND`. `None` when the chunks do not parse.
pub fn strip_png(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..8]);
    let mut i = 8;
    loop {
        let len = u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as usize;
        let end = i.checked_add(12)?.checked_add(len)?;
        let chunk = bytes.get(i..end)?;
        let kind: &[u8; 4] = chunk[4..8].try_into().ok()?;
        let critical = kind[0].is_ascii_uppercase();
        if critical || kind == b"fdAT" || PNG_KEEP.contains(&kind) {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            return Some(out);
        }
    }
}

/// A JPEG thumbnail of an image, or `None` when it does not decode. Decoding is bounded, so a
/// small file claiming a huge picture cannot exhaust memory.
fn thumbnail(bytes: &[u8], kind: Kind) -> Option<Vec<u8>> {
    let format = match kind {
        Kind::Jpeg => image::ImageFormat::Jpeg,
        Kind::Png => image::ImageFormat::Png,
        Kind::Pdf => return None,
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().ok()?;
    let small = img.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    small.write_with_encoder(encoder).ok()?;
    Some(out)
}

/// Who attached a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The resident, when filing or from the tracking page.
    Vecino,
    /// Staff, with their answer.
    Staff,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Vecino => "vecino",
            Source::Staff => "staff",
        }
    }
}

/// A stored file as the API describes it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct AttachmentOut {
    pub id: i64,
    pub name: String,
    /// `image/jpeg`, `image/png` or `application/pdf`.
    pub content_type: String,
    /// Size of the file as stored, in bytes.
    pub bytes: i64,
}

/// An attachment in a case's list: who attached it and when.
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct AttachmentInfo {
    #[serde(flatten)]
    pub file: AttachmentOut,
    /// `vecino` or `staff`.
    pub source: String,
    pub has_thumbnail: bool,
    pub created_at: DateTime<Utc>,
}

/// Stores a prepared file on a case, unless that side already attached the maximum: then
/// `Conflict`. The count and the insert are one transaction holding the case's row, so two
/// uploads at once cannot both be the fifth.
pub async fn store(
    store: &Store,
    case_id: i64,
    source: Source,
    uploaded_by: Option<&str>,
    file: &Prepared,
) -> Result<AttachmentOut, OirsError> {
    let now = now_millis();
    let id: Option<i64> = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE cases SET updated_at = updated_at WHERE id = $1")
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM attachments WHERE case_id = $1 AND source = $2")
                .bind(case_id)
                .bind(source.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if n >= MAX_PER_CASE {
            None
        } else {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO attachments (case_id, name, content_type, size, data, thumbnail, source, uploaded_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(case_id)
            .bind(&file.name)
            .bind(file.kind.content_type())
            .bind(file.data.len() as i64)
            .bind(&file.data)
            .bind(&file.thumbnail)
            .bind(source.as_str())
            .bind(uploaded_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Some(id)
        }
    });
    let id = id.ok_or_else(|| {
        OirsError::Conflict(format!(
            "Ya se adjuntaron {MAX_PER_CASE} archivos a este caso, el máximo."
        ))
    })?;
    Ok(AttachmentOut {
        id,
        name: file.name.clone(),
        content_type: file.kind.content_type().into(),
        bytes: file.data.len() as i64,
    })
}

type InfoRow = (i64, String, String, i64, String, bool, i64);

/// The files of a case, oldest first (no contents).
pub async fn list(store: &Store, case_id: i64) -> Result<Vec<AttachmentInfo>, StoreError> {
    let rows: Vec<InfoRow> = crate::with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, name, content_type, size, source, thumbnail IS NOT NULL, created_at \
             FROM attachments WHERE case_id = $1 ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(id, name, content_type, bytes, source, has_thumbnail, at)| AttachmentInfo {
                file: AttachmentOut {
                    id,
                    name,
                    content_type,
                    bytes,
                },
                source,
                has_thumbnail,
                created_at: millis(at),
            },
        )
        .collect())
}

/// One file's contents (or its thumbnail), if it belongs to that case.
pub struct Content {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

pub async fn content(
    store: &Store,
    case_id: i64,
    id: i64,
    thumbnail: bool,
) -> Result<Option<Content>, StoreError> {
    let row: Option<(String, String, Option<Vec<u8>>)> = crate::with_pool!(store, pool => {
        sqlx::query_as(if thumbnail {
            "SELECT name, content_type, thumbnail FROM attachments WHERE case_id = $1 AND id = $2"
        } else {
            "SELECT name, content_type, data FROM attachments WHERE case_id = $1 AND id = $2"
        })
        .bind(case_id)
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(name, content_type, data)| {
        let content_type = if thumbnail {
            "image/jpeg".to_string()
        } else {
            content_type
        };
        data.map(|data| Content {
            name,
            content_type,
            data,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() + 2) as u16;
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    fn tiny_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new(&mut out))
            .expect("encode");
        out
    }

    /// A JPEG with an EXIF segment carrying a GPS marker, a comment, and a trailer.
    fn jpeg_with_exif() -> Vec<u8> {
        let plain = tiny_jpeg();
        let mut with = plain[..2].to_vec();
        with.extend(segment(0xE1, b"Exif\0\0GPSLatitude -33.4489 SECRETGPS"));
        with.extend(segment(0xFE, b"camera owner Juana"));
        with.extend_from_slice(&plain[2..]);
        with.extend_from_slice(b"TRAILER-MOTION-PHOTO");
        with
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn kinds_are_judged_by_content() {
        assert_eq!(Kind::sniff(&tiny_jpeg()), Some(Kind::Jpeg));
        assert_eq!(Kind::sniff(b"%PDF-1.7\n..."), Some(Kind::Pdf));
        assert_eq!(Kind::sniff(b"MZ\x90\0 windows program"), None);
        assert_eq!(Kind::sniff(b""), None);
    }

    #[test]
    fn jpeg_loses_exif_comments_and_trailer_but_still_decodes() {
        let dirty = jpeg_with_exif();
        assert!(contains(&dirty, b"SECRETGPS"));
        let p = prepare(Some("bache.jpg"), &dirty).expect("accepted");
        assert_eq!(p.kind, Kind::Jpeg);
        assert!(!contains(&p.data, b"SECRETGPS"));
        assert!(!contains(&p.data, b"Juana"));
        assert!(!contains(&p.data, b"TRAILER"));
        assert!(p.data.ends_with(&[0xFF, 0xD9]));
        image::load_from_memory(&p.data).expect("the stripped photo decodes");
        assert!(p.thumbnail.is_some());
    }

    #[test]
    fn png_loses_text_and_exif_chunks() {
        let img = image::RgbImage::from_pixel(4, 4, image::Rgb([0, 90, 0]));
        let mut png = Vec::new();
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
            .expect("encode");
        // Insert a tEXt chunk after IHDR (8 + 25 bytes).
        let mut text = Vec::new();
        let data = b"Comment\0SECRETGPS";
        text.extend_from_slice(&(data.len() as u32).to_be_bytes());
        text.extend_from_slice(b"tEXt");
        text.extend_from_slice(data);
        text.extend_from_slice(&[0, 0, 0, 0]);
        let mut dirty = png[..33].to_vec();
        dirty.extend(text);
        dirty.extend_from_slice(&png[33..]);
        let p = prepare(Some("x.png"), &dirty).expect("accepted");
        assert!(!contains(&p.data, b"SECRETGPS"));
        image::load_from_memory(&p.data).expect("decodes");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            prepare(Some("a.jpg"), b"MZ\x90\0").expect_err("refused"),
            Refusal::WrongType
        );
        assert_eq!(prepare(None, b"").expect_err("refused"), Refusal::Empty);
        let mut big = b"%PDF-1.4\n".to_vec();
        big.resize(MAX_BYTES + 1, b' ');
        assert_eq!(prepare(None, &big).expect_err("refused"), Refusal::TooLarge);
        // A JPEG signature on garbage.
        assert_eq!(
            prepare(None, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]).expect_err("refused"),
            Refusal::Damaged
        );
    }

    #[test]
    fn names_end_in_the_real_type() {
        assert_eq!(
            file_name(Some("C:\\fotos\\bache.jpg"), Kind::Pdf),
            "bache.pdf"
        );
        assert_eq!(file_name(Some("../../etc/passwd"), Kind::Png), "passwd.png");
        assert_eq!(file_name(None, Kind::Jpeg), "adjunto.jpg");
        assert_eq!(file_name(Some(".jpg"), Kind::Jpeg), "adjunto.jpg");
    }
}
