//! The intent catalog kept in `intents/`: topics, the municipality profile, synonyms, the
//! botonera and one file of intents per area. Loading validates everything and names the file
//! and line of each problem, so a broken catalog never replaces a working one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::text;

pub const TOPICS_FILE: &str = "topics.tsv";
pub const PROFILE_FILE: &str = "municipio.toml";
pub const MENU_FILE: &str = "botonera.toml";
pub const SYNONYMS_FILE: &str = "sinonimos.toml";
pub const OUT_OF_SCOPE_FILE: &str = "fuera_de_ambito.toml";
pub const MIN_EXAMPLES: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("catalog rejected:\n{}", .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
pub struct CatalogError(pub Vec<Finding>);

#[derive(Clone, Debug)]
pub struct Topic {
    pub id: String,
    pub department: Option<String>,
    pub menu_path: Option<String>,
    pub description: String,
    /// The name residents and staff read (Spanish), e.g. "Alumbrado público".
    pub label: Option<String>,
    /// Whether a case can be about it. Chat-only topics (greetings, opening hours, tracking,
    /// "quiero que me contacten") are not offered on the filing forms.
    pub case: bool,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct Intent {
    pub id: String,
    /// Short resident-facing name, used on buttons when the bot offers alternatives.
    pub title: String,
    pub topic: String,
    pub department: Option<String>,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub answer: String,
    pub links: Vec<Link>,
    pub buttons: Vec<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub file: String,
    pub line: usize,
}

impl Intent {
    /// Seasonal intents (the March circulation-permit campaign) answer only in their window.
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| day >= f) && self.valid_to.is_none_or(|t| day <= t)
    }
}

/// What a botonera button does when clicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ButtonAction {
    /// Shows its children with a short text.
    Submenu(String),
    /// Answers with an intent, deterministically.
    Intent(String),
}

#[derive(Clone, Debug)]
pub struct MenuButton {
    pub id: String,
    pub label: String,
    pub parent: Option<String>,
    pub action: ButtonAction,
    pub children: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Botonera {
    pub greeting: String,
    pub fallback: String,
    pub suggest: String,
    pub roots: Vec<String>,
    pub buttons: HashMap<String, MenuButton>,
    /// Buttons offered with every fallback: menu, contact request, OIRS form.
    pub fallback_buttons: Vec<String>,
}

impl Botonera {
    pub fn get(&self, id: &str) -> Option<&MenuButton> {
        self.buttons.get(id)
    }
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub values: BTreeMap<String, String>,
}

impl Profile {
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }
}

/// How the municipality addresses residents: the profile's `trato`, "usted" (the default) or
/// "tu". Answers, menu texts and the widget all speak it; `intents check` flags answers
/// written in the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    Usted,
    Tu,
}

impl Register {
    pub fn of(profile: &Profile) -> Self {
        match profile.get("trato") {
            "tu" | "tú" => Register::Tu,
            _ => Register::Usted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Register::Usted => "usted",
            Register::Tu => "tu",
        }
    }

    /// Words that belong to the other register, as they would appear in a text of this one.
    fn foreign_words(self) -> &'static [&'static str] {
        match self {
            Register::Usted => &[
                // Only words that cannot be read otherwise once accents are folded ("estás"
                // would be "estas", "these"; "ingresa" also says "se ingresa").
                "tu",
                "tus",
                "te",
                "contigo",
                "puedes",
                "tienes",
                "quieres",
                "necesitas",
                "debes",
                "eres",
                "avisanos",
                "escribenos",
                "llamanos",
                "inscribete",
                "acercate",
                "dirigete",
            ],
            Register::Tu => &["usted"],
        }
    }

    /// The first word of `text` that belongs to the other register.
    pub fn foreign_word(self, text: &str) -> Option<String> {
        text::words(text)
            .into_iter()
            .find(|w| self.foreign_words().contains(&w.as_str()))
    }
}

#[derive(Clone, Debug)]
pub struct Catalog {
    pub dir: PathBuf,
    pub topics: Vec<Topic>,
    pub profile: Profile,
    pub synonyms: text::Synonyms,
    pub botonera: Botonera,
    pub intents: Vec<Intent>,
    /// Messages the municipality does not answer (sports, recipes, trivia…). Matching one of
    /// these better than any intent makes the bot fall back instead of guessing.
    pub out_of_scope: Vec<String>,
}

impl Catalog {
    pub fn register(&self) -> Register {
        Register::of(&self.profile)
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// Position of an intent in `intents` (the matcher's numbering).
    pub fn ordinal(&self, id: &str) -> Option<usize> {
        self.intents.iter().position(|i| i.id == id)
    }

    pub fn topic_ids(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|t| t.id.as_str())
    }

    pub fn topic(&self, id: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.id == id)
    }

    /// The name people read for a topic: its label in `topics.tsv`, else the title of its
    /// first intent, else the id made readable.
    pub fn topic_label(&self, topic: &str) -> String {
        self.topic(topic)
            .and_then(|t| t.label.clone())
            .or_else(|| {
                self.intents
                    .iter()
                    .find(|i| i.topic == topic)
                    .map(|i| i.title.clone())
            })
            .unwrap_or_else(|| topic.replace('_', " "))
    }

    /// Intent id → title: what people read for an intent (reports, review).
    pub fn intent_titles(&self) -> BTreeMap<String, String> {
        self.intents
            .iter()
            .map(|i| (i.id.clone(), i.title.clone()))
            .collect()
    }

    /// The topics a case can be about.
    pub fn case_topic_ids(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|t| t.case)
            .map(|t| t.id.as_str())
            .collect()
    }

    /// Whether a case can be filed about `topic`.
    pub fn is_case_topic(&self, topic: &str) -> bool {
        self.topic(topic).is_some_and(|t| t.case)
    }
}

// ---- file formats ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    values: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SynonymsFile {
    synonyms: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfScopeFile {
    examples: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuFile {
    greeting: String,
    fallback: String,
    suggest: String,
    fallback_buttons: Vec<String>,
    button: Vec<Spanned<ButtonDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ButtonDef {
    id: String,
    label: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    children: Vec<Spanned<ButtonDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentsFile {
    intent: Vec<Spanned<IntentDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentDef {
    id: String,
    title: String,
    topic: String,
    #[serde(default)]
    department: Option<String>,
    examples: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    answer: String,
    #[serde(default)]
    links: Vec<LinkDef>,
    #[serde(default)]
    buttons: Vec<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkDef {
    label: String,
    url: String,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

struct Loader {
    findings: Vec<Finding>,
    profile: Profile,
}

impl Loader {
    fn register(&self) -> Register {
        Register::of(&self.profile)
    }

    fn error(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.findings.push(Finding {
            file: file.to_string(),
            line,
            message: message.into(),
        });
    }

    fn read(&mut self, dir: &Path, name: &str) -> Option<String> {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(name, None, format!("cannot read: {e}"));
                None
            }
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&mut self, name: &str, src: &str) -> Option<T> {
        match toml::from_str::<T>(src) {
            Ok(v) => Some(v),
            Err(e) => {
                let line = e.span().map(|s| line_of(src, s.start));
                self.error(name, line, e.message().to_string());
                None
            }
        }
    }

    /// Replaces `{{key}}` with the municipality profile's value; unknown keys are findings.
    fn fill(&mut self, file: &str, line: usize, s: &str) -> String {
        let (out, problems) = fill_placeholders(&self.profile, s);
        for p in problems {
            self.error(file, Some(line), p);
        }
        out
    }
}

/// Replaces `{{key}}` with the municipality profile's value; returns the text and a problem
/// for each unknown key or unclosed placeholder.
pub fn fill_placeholders(profile: &Profile, s: &str) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                match profile.values.get(key) {
                    Some(v) => out.push_str(v),
                    None => problems.push(format!(
                        "unknown placeholder {{{{{key}}}}} (add it to {PROFILE_FILE})"
                    )),
                }
                rest = &after[end + 2..];
            }
            None => {
                problems.push("unclosed placeholder {{".to_string());
                rest = "";
            }
        }
    }
    out.push_str(rest);
    (out, problems)
}

fn parse_topics(src: &str, loader: &mut Loader) -> Vec<Topic> {
    let mut topics = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if i == 0 || line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 || cols[0].trim().is_empty() {
            loader.error(
                TOPICS_FILE,
                Some(i + 1),
                "expected tab-separated columns: topic, department, menu, description[, label, case]",
            );
            continue;
        }
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let case = match cols.get(5).map(|c| c.trim()) {
            None | Some("") => false,
            Some("si") => true,
            Some(other) => {
                loader.error(
                    TOPICS_FILE,
                    Some(i + 1),
                    format!("case: {other:?} must be \"si\" or empty"),
                );
                false
            }
        };
        topics.push(Topic {
            id: cols[0].trim().to_string(),
            department: opt(cols[1]),
            menu_path: opt(cols[2]),
            description: cols[3].trim().to_string(),
            label: cols.get(4).and_then(|c| opt(c)),
            case,
        });
    }
    topics
}

fn flatten_menu(
    loader: &mut Loader,
    src: &str,
    defs: Vec<Spanned<ButtonDef>>,
    parent: Option<&str>,
    out: &mut HashMap<String, MenuButton>,
    order: &mut Vec<(String, usize)>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for spanned in defs {
        let line = line_of(src, spanned.span().start);
        let def = spanned.into_inner();
        let children = flatten_menu(loader, src, def.children, Some(&def.id), out, order);
        let action = match (def.intent, children.is_empty()) {
            (Some(intent), true) => ButtonAction::Intent(intent),
            (None, false) => ButtonAction::Submenu(loader.fill(
                MENU_FILE,
                line,
                def.text.as_deref().unwrap_or("¿Qué necesitas?"),
            )),
            (Some(_), false) => {
                loader.error(
                    MENU_FILE,
                    Some(line),
                    format!("button {}: has both an intent and children", def.id),
                );
                continue;
            }
            (None, true) => {
                loader.error(
                    MENU_FILE,
                    Some(line),
                    format!("button {}: needs an intent or children", def.id),
                );
                continue;
            }
        };
        if out.contains_key(&def.id) {
            loader.error(
                MENU_FILE,
                Some(line),
                format!("duplicate button id {}", def.id),
            );
            continue;
        }
        let label = loader.fill(MENU_FILE, line, &def.label);
        order.push((def.id.clone(), line));
        ids.push(def.id.clone());
        out.insert(
            def.id.clone(),
            MenuButton {
                id: def.id,
                label,
                parent: parent.map(String::from),
                action,
                children,
            },
        );
    }
    ids
}

fn parse_date(
    loader: &mut Loader,
    file: &str,
    line: usize,
    field: &str,
    v: Option<String>,
) -> Option<NaiveDate> {
    let v = v?;
    match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            loader.error(
                file,
                Some(line),
                format!("{field}: {v:?} is not a date like 2026-03-31"),
            );
            None
        }
    }
}

/// Loads and validates the catalog in `dir`. Any finding rejects it.
pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
    let (catalog, findings) = load_with_findings(dir);
    match catalog {
        Some(c) if findings.is_empty() => Ok(c),
        _ => Err(CatalogError(findings)),
    }
}

/// Loads what can be loaded and lists every problem found (for `ventanilla intents check`).
pub fn load_with_findings(dir: &Path) -> (Option<Catalog>, Vec<Finding>) {
    let mut loader = Loader {
        findings: Vec::new(),
        profile: Profile {
            values: BTreeMap::new(),
        },
    };

    let topics = match loader.read(dir, TOPICS_FILE) {
        Some(src) => parse_topics(&src, &mut loader),
        None => Vec::new(),
    };
    let topic_ids: HashSet<String> = topics.iter().map(|t| t.id.clone()).collect();

    if let Some(src) = loader.read(dir, PROFILE_FILE) {
        if let Some(p) = loader.parse::<ProfileFile>(PROFILE_FILE, &src) {
            loader.profile.values = p.values;
        }
    }

    let synonyms = match loader.read(dir, SYNONYMS_FILE) {
        Some(src) => loader
            .parse::<SynonymsFile>(SYNONYMS_FILE, &src)
            .map(|s| text::Synonyms::new(s.synonyms))
            .unwrap_or_default(),
        None => text::Synonyms::default(),
    };

    // Intent files: every *.toml that is not one of the fixed files, in name order.
    let mut intent_files: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| {
                n.ends_with(".toml")
                    && ![PROFILE_FILE, MENU_FILE, SYNONYMS_FILE, OUT_OF_SCOPE_FILE]
                        .contains(&n.as_str())
            })
            .collect(),
        Err(e) => {
            loader.error(
                &dir.display().to_string(),
                None,
                format!("cannot list the catalog folder: {e}"),
            );
            Vec::new()
        }
    };
    intent_files.sort();

    let mut intents: Vec<Intent> = Vec::new();
    let mut seen_ids: HashMap<String, (String, usize)> = HashMap::new();
    let mut seen_examples: HashMap<String, String> = HashMap::new();
    for file in &intent_files {
        let Some(src) = loader.read(dir, file) else {
            continue;
        };
        let Some(parsed) = loader.parse::<IntentsFile>(file, &src) else {
            continue;
        };
        for spanned in parsed.intent {
            let line = line_of(&src, spanned.span().start);
            let def = spanned.into_inner();
            if let Some((f, l)) = seen_ids.get(&def.id) {
                loader.error(
                    file,
                    Some(line),
                    format!("duplicate intent id {} (first at {f}:{l})", def.id),
                );
                continue;
            }
            seen_ids.insert(def.id.clone(), (file.clone(), line));
            if !topic_ids.contains(&def.topic) {
                loader.error(
                    file,
                    Some(line),
                    format!("intent {}: unknown topic {:?}", def.id, def.topic),
                );
            }
            if def.answer.trim().is_empty() {
                loader.error(
                    file,
                    Some(line),
                    format!("intent {}: missing answer", def.id),
                );
            }
            if def.examples.len() < MIN_EXAMPLES {
                loader.error(
                    file,
                    Some(line),
                    format!(
                        "intent {}: {} examples, at least {MIN_EXAMPLES} needed",
                        def.id,
                        def.examples.len()
                    ),
                );
            }
            for ex in &def.examples {
                let key = text::words(ex).join(" ");
                if let Some(other) = seen_examples.get(&key) {
                    if other != &def.id {
                        loader.error(
                            file,
                            Some(line),
                            format!("example {ex:?} is in both {other} and {}", def.id),
                        );
                    }
                } else {
                    seen_examples.insert(key, def.id.clone());
                }
            }
            let answer = loader.fill(file, line, &def.answer);
            let register = loader.register();
            if let Some(w) = register.foreign_word(&answer) {
                loader.error(
                    file,
                    Some(line),
                    format!(
                        "intent {}: the answer says {w:?}, but the profile's trato is {:?}",
                        def.id,
                        register.as_str()
                    ),
                );
            }
            let links = def
                .links
                .iter()
                .map(|l| Link {
                    label: loader.fill(file, line, &l.label),
                    url: loader.fill(file, line, &l.url),
                })
                .collect();
            let valid_from = parse_date(&mut loader, file, line, "valid_from", def.valid_from);
            let valid_to = parse_date(&mut loader, file, line, "valid_to", def.valid_to);
            let title = loader.fill(file, line, &def.title);
            intents.push(Intent {
                id: def.id,
                title,
                topic: def.topic,
                department: def.department,
                examples: def.examples,
                keywords: def.keywords,
                answer,
                links,
                buttons: def.buttons,
                valid_from,
                valid_to,
                file: file.clone(),
                line,
            });
        }
    }

    let botonera = loader.read(dir, MENU_FILE).and_then(|src| {
        let menu = loader.parse::<MenuFile>(MENU_FILE, &src)?;
        let mut buttons = HashMap::new();
        let mut order = Vec::new();
        let roots = flatten_menu(
            &mut loader,
            &src,
            menu.button,
            None,
            &mut buttons,
            &mut order,
        );
        for (id, line) in &order {
            if let Some(ButtonAction::Intent(intent)) = buttons.get(id).map(|b| &b.action) {
                if !seen_ids.contains_key(intent) {
                    let msg = format!("button {id}: unknown intent {intent}");
                    loader.error(MENU_FILE, Some(*line), msg);
                }
            }
        }
        for b in &menu.fallback_buttons {
            if !buttons.contains_key(b) && b != "menu" {
                loader.error(
                    MENU_FILE,
                    None,
                    format!("fallback_buttons: unknown button {b}"),
                );
            }
        }
        let greeting = loader.fill(MENU_FILE, 1, &menu.greeting);
        let register = loader.register();
        for (name, t) in [
            ("greeting", &menu.greeting),
            ("fallback", &menu.fallback),
            ("suggest", &menu.suggest),
        ] {
            if let Some(w) = register.foreign_word(t) {
                let msg = format!(
                    "{name} says {w:?}, but the profile's trato is {:?}",
                    register.as_str()
                );
                loader.error(MENU_FILE, None, msg);
            }
        }
        let fallback = loader.fill(MENU_FILE, 1, &menu.fallback);
        let suggest = loader.fill(MENU_FILE, 1, &menu.suggest);
        Some(Botonera {
            greeting,
            fallback,
            suggest,
            roots,
            buttons,
            fallback_buttons: menu.fallback_buttons,
        })
    });

    if let Some(menu) = &botonera {
        for intent in &intents {
            for b in &intent.buttons {
                if !menu.buttons.contains_key(b) && b != "menu" {
                    let msg = format!("intent {}: unknown follow-up button {b}", intent.id);
                    loader.error(&intent.file, Some(intent.line), msg);
                }
            }
        }
    }

    let out_of_scope = match std::fs::read_to_string(dir.join(OUT_OF_SCOPE_FILE)) {
        Ok(src) => loader
            .parse::<OutOfScopeFile>(OUT_OF_SCOPE_FILE, &src)
            .map(|f| f.examples)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    for ex in &out_of_scope {
        if let Some(other) = seen_examples.get(&text::words(ex).join(" ")) {
            let msg = format!("example {ex:?} is also in intent {other}");
            loader.error(OUT_OF_SCOPE_FILE, None, msg);
        }
    }

    let covered: HashSet<&str> = intents.iter().map(|i| i.topic.as_str()).collect();
    for t in &topics {
        if !covered.contains(t.id.as_str()) {
            loader.error(TOPICS_FILE, None, format!("topic {} has no intent", t.id));
        }
    }

    let findings = loader.findings;
    let catalog = botonera.map(|botonera| Catalog {
        dir: dir.to_path_buf(),
        topics,
        profile: loader.profile,
        synonyms,
        botonera,
        intents,
        out_of_scope,
    });
    (catalog, findings)
}
