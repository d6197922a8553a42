//! The OpenAPI document as served: utoipa's generated paths and schemas, plus what utoipa
//! cannot derive from one handler's signature.
//!
//! - Statuses every route of a kind answers, added where the annotation does not list them: a
//!   bearer route answers 401 and 403, a JSON body 400/413/415/422 (the extractor), a typed
//!   path or query parameter 422, a public route 429 (the per-IP limit), a route that reads the
//!   store 503.
//! - The values this deployment accepts where they live in the catalog or the database (chat
//!   buttons, case types, topics, departments), so the document names exactly what the
//!   validators accept.
//!
//! Text rules are spelled with explicit character classes: "blank" means Unicode White_Space
//! (what `str::trim` removes), not a regex engine's `\s`, whose reach differs between engines.

use serde_json::{json, Value};

/// Characters `str::trim` removes (Unicode White_Space), for use inside a regex class.
pub const WS: &str = r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// The letters and digits a taught text needs one of: ASCII and Latin-1/Latin Extended
/// letters (no × or ÷), as `review::has_word` reads them.
pub const WORD: &str = r"0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F";

/// A string with something other than white space in it (`!s.trim().is_empty()`).
pub fn nonblank() -> String {
    format!("[^{WS}]")
}

/// At least `min` characters once trimmed.
pub fn trimmed_at_least(min: usize) -> String {
    let inner = min.saturating_sub(2);
    format!(r"^[{WS}]*[^{WS}][\s\S]{{{inner},}}[^{WS}][{WS}]*$")
}

/// What `Email::parse` accepts once trimmed: no white space or control characters, one `@`
/// with something before it and a dotted domain after it.
fn email_core() -> String {
    let x = r"\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
    format!(r"[^@{x}]+@([^@.{x}]+\.)+[^@.{x}]+")
}

/// An e-mail address as `Email::parse` reads it, or (with `blank`) a blank string.
pub fn email_pattern(blank: Blank) -> String {
    let core = email_core();
    match blank {
        Blank::Empty => format!(r"^([{WS}]*{core}[{WS}]*)?$"),
        Blank::WhiteSpace => format!(r"^[{WS}]*({core}[{WS}]*)?$"),
    }
}

/// A Chilean phone number as `Phone::parse` reads it (9 digits, or 11 starting with 56; the
/// national number starts with 2–9; separators ` +-().`), or a blank string.
pub fn phone_pattern() -> String {
    let sep = r"[ +\-().]*";
    format!(r"^[{WS}]*({sep}(5{sep}6{sep})?[2-9]({sep}[0-9]){{8}}{sep}[{WS}]*)?$")
}

/// The characters of a RUT (`12.345.678-5`, `12345678-5`, `123456785`). The check digit is
/// beyond a pattern: the `rut` format says it must be right.
pub fn rut_pattern() -> String {
    format!(r"^[{WS}]*[0-9.]+-?[0-9kK.]*[{WS}]*$")
}

/// Which blank strings a field takes as "not given".
#[derive(Clone, Copy)]
pub enum Blank {
    /// Only the empty string.
    Empty,
    /// Any string that trims to nothing.
    WhiteSpace,
}

/// Values that live in the catalog or the store, listed in the document as enums.
#[derive(Default)]
pub struct Live {
    pub buttons: Vec<String>,
    pub case_types: Vec<String>,
    pub topics: Vec<String>,
    pub departments: Vec<String>,
    /// Intent ids (files and the review's new intents).
    pub intents: Vec<String>,
}

/// The document with the common statuses and, when known, the live values.
pub fn document(mut doc: Value, live: Option<&Live>) -> Value {
    add_security_scheme(&mut doc);
    add_text_rules(&mut doc);
    merge_flattened(&mut doc, "StaffCaseIn");
    add_common_responses(&mut doc);
    if let Some(live) = live {
        add_live_values(&mut doc, live);
    }
    doc
}

/// utoipa spells a `#[serde(flatten)]` as `allOf`, and two closed objects in an `allOf` admit
/// nothing; the body is one closed object with the fields of both.
fn merge_flattened(doc: &mut Value, name: &str) {
    let schemas = &doc["components"]["schemas"];
    let Some(parts) = schemas[name]["allOf"].as_array().cloned() else {
        return;
    };
    let mut properties = serde_json::Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts {
        let part = match part["$ref"].as_str() {
            Some(r) => schemas[r.rsplit('/').next().unwrap_or_default()].clone(),
            None => part,
        };
        if let Some(p) = part["properties"].as_object() {
            properties.extend(p.clone());
        }
        if let Some(r) = part["required"].as_array() {
            required.extend(r.iter().cloned());
        }
    }
    doc["components"]["schemas"][name] = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
}

fn add_security_scheme(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "The token of `POST /api/v1/auth/login`. The console's session cookie \
                        works too (with `X-CSRF-Token` on changes)."
    });
}

/// Operations that never read the store (so never answer 503).
const STORELESS: &[&str] = &[
    "healthz",
    "metrics",
    "openapi",
    "menu",
    "list_rights",
    "list_topics",
];

/// Paths behind the per-client-IP rate limit (the public routers).
fn rate_limited(path: &str) -> bool {
    path == "/api/v1/auth/login"
        || path.starts_with("/api/v1/chat/")
        || path.starts_with("/api/v1/oirs/")
}

fn add_common_responses(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let mut add: Vec<(&str, &str)> = Vec::new();
            if op
                .get("security")
                .is_some_and(|s| !s.as_array().is_some_and(|a| a.is_empty()))
            {
                add.push(("401", "no valid session: missing, unknown or expired token"));
                add.push(("403", "the user's role may not do this (or a cookie session without its X-CSRF-Token)"));
            }
            if op.get("requestBody").is_some() {
                add.push(("400", "the body is not valid JSON"));
                add.push(("413", "the body is larger than allowed"));
                add.push((
                    "415",
                    "the body is not declared as JSON (Content-Type: application/json)",
                ));
                add.push((
                    "422",
                    "a field is missing, of the wrong type or not acceptable; `field` names it",
                ));
            }
            if typed_parameters(op) {
                add.push((
                    "422",
                    "a parameter is of the wrong type or not acceptable; `field` names it",
                ));
            }
            if rate_limited(path) {
                add.push(("429", "too many requests from this client; see Retry-After"));
            }
            let id = op["operationId"].as_str().unwrap_or_default();
            if !STORELESS.contains(&id) {
                add.push(("503", "the database is not available; try again shortly"));
            }
            let responses = &mut op["responses"];
            for (status, description) in add {
                if responses.get(status).is_none() {
                    responses[status] = error_response(description);
                }
            }
        }
    }
}

/// Whether a path or query parameter is anything but free text (so its parsing can fail).
fn typed_parameters(op: &Value) -> bool {
    op["parameters"].as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            let in_ = p["in"].as_str().unwrap_or_default();
            let schema = &p["schema"];
            let free_text = schema["type"] == "string"
                || schema["type"] == json!(["string", "null"]) && schema.get("format").is_none();
            (in_ == "path" || in_ == "query")
                && (!free_text
                    || schema.get("pattern").is_some()
                    || schema.get("enum").is_some()
                    || schema.get("format").is_some())
        })
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn schema_mut<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    &mut doc["components"]["schemas"][name]
}

fn property_mut<'a>(doc: &'a mut Value, schema: &str, prop: &str) -> &'a mut Value {
    &mut schema_mut(doc, schema)["properties"][prop]
}

fn set(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

/// Text rules that depend on trimming, which utoipa's attributes cannot spell.
fn add_text_rules(doc: &mut Value) {
    let nonblank = nonblank();
    for (schema, prop) in [
        ("MessageIn", "text"),
        ("DepartmentIn", "name"),
        ("HolidayIn", "name"),
    ] {
        set(property_mut(doc, schema, prop), "pattern", json!(nonblank));
    }
    // A taught text needs a letter or digit (the review's validator: `has_word`).
    set(
        property_mut(doc, "ExampleIn", "text"),
        "pattern",
        json!(format!("[{WORD}]")),
    );
    set(
        property_mut(doc, "IntentIn", "answer"),
        "pattern",
        json!(nonblank),
    );
    set(
        property_mut(doc, "IntentIn", "title"),
        "pattern",
        json!(trimmed_at_least(3)),
    );
    let email = property_mut(doc, "DepartmentIn", "email");
    set(email, "pattern", json!(email_pattern(Blank::Empty)));
    set(email, "maxLength", json!(254));

    // Filing: every per-field rule; the rules across fields are in the descriptions.
    for schema in ["CaseIn", "Rectification"] {
        let email = property_mut(doc, schema, "email");
        set(email, "pattern", json!(email_pattern(Blank::WhiteSpace)));
        set(email, "maxLength", json!(254));
        set(
            property_mut(doc, schema, "phone"),
            "pattern",
            json!(phone_pattern()),
        );
    }
    let rut = property_mut(doc, "CaseIn", "rut");
    set(
        rut,
        "pattern",
        json!(format!(r"^[{WS}]*([0-9.]+-?[0-9kK.]*[{WS}]*)?$")),
    );
    let desc = property_mut(doc, "CaseIn", "description");
    set(desc, "pattern", json!(trimmed_at_least(10)));
    let name = property_mut(doc, "CaseIn", "name");
    set(name, "pattern", json!(trimmed_at_least(2)));
    let name = property_mut(doc, "Rectification", "name");
    set(name, "pattern", json!(trimmed_at_least(2)));
    // A rectification changes at least one field (null is "leave it as it is").
    let given =
        |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
    set(
        schema_mut(doc, "Rectification"),
        "anyOf",
        json!([
            given("name"),
            given("email"),
            given("phone"),
            given("address")
        ]),
    );

    // A rating names the resident by the tracking code or the RUT (either).
    set(
        schema_mut(doc, "SatisfactionIn"),
        "anyOf",
        json!([
            {"required": ["code"], "properties": {"code": {"type": "string"}}},
            {"required": ["rut"], "properties": {"rut": {"type": "string"}}}
        ]),
    );

    let username = property_mut(doc, "UserIn", "username");
    set(
        username,
        "pattern",
        json!(format!(r"^[{WS}]*[a-z0-9._\-]{{2,64}}[{WS}]*$")),
    );

    // Path parameters whose handlers check their shape.
    let slug = json!({"type": "string", "pattern": "^[a-z0-9_]{1,64}$"});
    let rut = json!({"type": "string", "format": "rut", "pattern": rut_pattern(),
                     "examples": ["12.345.678-5"]});
    // What `idempotency` accepts: visible ASCII (a header value), not blank, 200 at most.
    let idempotency_key = json!({"type": "string", "maxLength": 200,
                                 "pattern": r"^[\t\x20-\x7E]*[\x21-\x7E][\t\x20-\x7E]*$"});
    let date =
        json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"});
    let month = json!({"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"});
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params.iter_mut() {
                let key = (p["in"].as_str().unwrap_or_default(), path.as_str());
                let schema = match (key, p["name"].as_str().unwrap_or_default()) {
                    (("header", _), "Idempotency-Key") => &idempotency_key,
                    (("path", _), "rut") => &rut,
                    (
                        (
                            "path",
                            "/api/v1/admin/departments/{id}" | "/api/v1/admin/case-types/{id}",
                        ),
                        "id",
                    ) => &slug,
                    (("path", "/api/v1/admin/holidays/{date}"), "date") => &date,
                    (("path", "/api/v1/reports/monthly/{month}"), "month") => &month,
                    _ => continue,
                };
                p["schema"] = schema.clone();
            }
        }
    }
}

fn enum_of(values: &[String], extra: &[&str]) -> Value {
    let mut all: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    all.extend(values.iter().cloned());
    all.dedup();
    json!(all)
}

/// The accepted values of fields that name catalog or store entries.
fn add_live_values(doc: &mut Value, live: &Live) {
    // A message is text or a button, never both and never neither.
    let mut buttons = enum_of(&live.buttons, &[]);
    let text = property_mut(doc, "MessageIn", "text").clone();
    let mut text_only = text;
    set(&mut text_only, "type", json!("string"));
    let button_only = json!({"type": "string", "enum": buttons.clone()});
    if let Some(values) = buttons.as_array_mut() {
        values.push(Value::Null);
    }
    let msg = schema_mut(doc, "MessageIn");
    set(&mut msg["properties"]["button"], "enum", buttons);
    set(
        msg,
        "oneOf",
        json!([
            {"required": ["text"], "properties": {"text": text_only, "button": {"type": "null"}}},
            {"required": ["button"], "properties": {"button": button_only, "text": {"type": "null"}}}
        ]),
    );

    // Catalog review: an example's intent, a new intent's topic and buttons.
    let mut intents = enum_of(&live.intents, &[]);
    if let Some(values) = intents.as_array_mut() {
        values.push(Value::Null);
    }
    set(property_mut(doc, "ExampleIn", "intent"), "enum", intents);
    set(
        property_mut(doc, "IntentIn", "topic"),
        "enum",
        enum_of(&live.topics, &[]),
    );
    let menu: Vec<String> = live
        .buttons
        .iter()
        .filter(|b| !b.starts_with(crate::chat::engine::INTENT_BUTTON_PREFIX))
        .cloned()
        .collect();
    set(
        &mut property_mut(doc, "IntentIn", "buttons")["items"],
        "enum",
        enum_of(&menu, &[]),
    );

    let rule = schema_mut(doc, "RoutingRule");
    set(
        &mut rule["properties"]["case_type"],
        "enum",
        enum_of(&live.case_types, &["*"]),
    );
    set(
        &mut rule["properties"]["topic"],
        "enum",
        enum_of(&live.topics, &["*"]),
    );
    set(
        &mut rule["properties"]["department"],
        "enum",
        enum_of(&live.departments, &[]),
    );
}

/// A calendar date written exactly `YYYY-MM-DD`, as the document's `format: date` says
/// (chrono alone also takes one-digit months and days).
pub fn iso_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shape
        .then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    //! The patterns must say exactly what the validators do: a string the pattern refuses is
    //! one the validator refuses, and the other way round (the contract check sends both).
    use super::*;
    use crate::oirs::domain::{Email, Phone};
    use crate::oirs::Rut;

    fn re(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).expect("pattern compiles")
    }

    const SAMPLES: &[&str] = &[
        "",
        " ",
        "\t\n",
        "\u{a0}",
        "\u{3000}x",
        "\u{1c}",
        "a",
        "ab",
        " ab ",
        "a b",
        "0123456789",
        "  0123456789  ",
        "         a",
        "ana@tome.cl",
        " Ana@Tome.CL ",
        "ana@tome",
        "a b@tome.cl",
        "ana@@tome.cl",
        "ana@tome..cl",
        "@tome.cl",
        "ana@.cl",
        "ana@tome.cl.",
        "(@a.b",
        "ñ@tome.cl",
        "ana@tome.cl\n",
        "ana\u{7f}@tome.cl",
        "+56 9 8765 4321",
        "987654321",
        "(41) 240 6400",
        "56-41-2406400",
        "087654321",
        "12345",
        "+1 555 123 4567",
        "9876 abc 21",
        " 987654321 ",
        "12.345.678-5",
        "12345678-5",
        "123456785",
        "12.345.678-K",
        "1-9",
        "x12345678-5",
    ];

    #[test]
    fn text_rules_match_trim() {
        let nonblank = re(&nonblank());
        let ten = re(&trimmed_at_least(10));
        let two = re(&trimmed_at_least(2));
        for s in SAMPLES {
            let n = s.trim().chars().count();
            assert_eq!(nonblank.is_match(s), n > 0, "nonblank {s:?}");
            assert_eq!(ten.is_match(s), n >= 10, "at least 10 {s:?}");
            assert_eq!(two.is_match(s), n >= 2, "at least 2 {s:?}");
        }
    }

    #[test]
    fn email_and_phone_patterns_match_their_parsers() {
        let email = re(&email_pattern(Blank::WhiteSpace));
        let email_or_empty = re(&email_pattern(Blank::Empty));
        let phone = re(&phone_pattern());
        for s in SAMPLES {
            let blank = s.trim().is_empty();
            assert_eq!(
                email.is_match(s),
                blank || Email::parse(s).is_some(),
                "email {s:?}"
            );
            assert_eq!(
                email_or_empty.is_match(s),
                s.is_empty() || Email::parse(s).is_some(),
                "email or empty {s:?}"
            );
            assert_eq!(
                phone.is_match(s),
                blank || Phone::parse(s.trim()).is_some(),
                "phone {s:?}"
            );
        }
    }

    #[test]
    fn rut_pattern_admits_every_rut() {
        let rut = re(&rut_pattern());
        for s in SAMPLES {
            if Rut::parse(s).is_ok() {
                assert!(rut.is_match(s), "a valid RUT the pattern refuses: {s:?}");
            }
            if !rut.is_match(s) {
                assert!(Rut::parse(s).is_err(), "{s:?}");
            }
        }
    }

    #[test]
    fn dates_are_written_in_full() {
        assert!(iso_date("2026-04-01").is_some());
        for bad in [
            "2026-4-1",
            "2026-04-1",
            "+2026-04-01",
            "2026-02-30",
            "2026/04/01",
            "",
        ] {
            assert!(iso_date(bad).is_none(), "{bad}");
        }
    }
}
