//! GeoReport v2's two formats from one description of each answer: a list of flat records
//! (ordered fields), written as a JSON array of objects or as XML with the specification's
//! element names (`<services><service>…`, `<service_requests><request>…`,
//! `<errors><error>…`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The format a GeoReport path asks for with its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `services.json` → (`services`, Json); `None` for another extension.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (stem, ext) = file.rsplit_once('.')?;
        let format = match ext {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => return None,
        };
        (!stem.is_empty()).then_some((stem, format))
    }
}

/// One record: field names in the specification's order, with JSON values (strings, numbers,
/// booleans or null; never nested).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(pub Vec<(&'static str, Value)>);

impl Record {
    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.0.push((name, value.into()));
        self
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
}

/// `records` as `<root><item>…</item>…</root>`.
pub fn xml(root: &str, item: &str, records: &[Record]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    out.push_str(&format!("<{root}>"));
    for r in records {
        out.push_str(&format!("<{item}>"));
        for (name, value) in &r.0 {
            let text = match value {
                Value::Null => String::new(),
                Value::String(s) => escape(s),
                other => escape(&other.to_string()),
            };
            out.push_str(&format!("<{name}>{text}</{name}>"));
        }
        out.push_str(&format!("</{item}>"));
    }
    out.push_str(&format!("</{root}>"));
    out
}

/// Text content and attribute-safe: the five XML entities, and characters XML 1.0 cannot
/// carry (control characters other than tab and newlines) dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// An answer in the requested format: a JSON array, or XML under `root`/`item`.
pub fn answer(
    status: StatusCode,
    format: Format,
    root: &str,
    item: &str,
    records: &[Record],
) -> Response {
    match format {
        Format::Json => (
            status,
            axum::Json(Value::Array(records.iter().map(Record::to_json).collect())),
        )
            .into_response(),
        Format::Xml => (
            status,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml(root, item, records),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_their_format() {
        assert_eq!(
            Format::split("services.json"),
            Some(("services", Format::Json))
        );
        assert_eq!(
            Format::split("OIRS-2026-000001.xml"),
            Some(("OIRS-2026-000001", Format::Xml))
        );
        assert_eq!(Format::split("services.html"), None);
        assert_eq!(Format::split("services"), None);
        assert_eq!(Format::split(".json"), None);
    }

    #[test]
    fn records_render_in_both_formats() {
        let r = Record::default()
            .field("service_code", "alumbrado_publico")
            .field("description", "Poste <caído> & \"roto\"\u{1}")
            .field("lat", -36.5)
            .field("metadata", false)
            .field("media_url", Value::Null);
        assert_eq!(
            xml("services", "service", std::slice::from_ref(&r)),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service>\
             <service_code>alumbrado_publico</service_code>\
             <description>Poste &lt;caído&gt; &amp; &quot;roto&quot;</description>\
             <lat>-36.5</lat><metadata>false</metadata><media_url></media_url>\
             </service></services>"
        );
        assert_eq!(
            r.to_json(),
            json!({"service_code": "alumbrado_publico", "description": "Poste <caído> & \"roto\"\u{1}",
                   "lat": -36.5, "metadata": false, "media_url": null})
        );
        assert_eq!(
            xml("errors", "error", &[]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><errors></errors>"
        );
    }
}
