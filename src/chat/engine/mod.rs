//! The conversation rules: greeting, button clicks, understanding free text in the light of
//! the conversation, and the honest fallback. Plain functions over the catalog and the
//! matcher; no HTTP, no database.

use std::path::Path;

use chrono::NaiveDate;

use super::catalog::{self, ButtonAction, Catalog, CatalogError, Finding, Intent, Register};
use super::classifier::TrainOptions;
use super::conversation::{self, Conversation, Cues, Reading};
use super::features::Analyzed;
use super::matcher::{Matcher, Ranking};
use super::overlay::{self, Overlay, Taught};
use super::{text, Alternative, Decision, Filing, Match, MenuNode, Reply, ReplyButton, ReplyLink};
use std::collections::HashMap;

mod diagnostics;
mod filing;

pub use filing::oirs_url;

/// Button id that shows the initial menu again.
pub const MENU_BUTTON: &str = "menu";
/// Prefix of button ids that pick one of the alternatives offered when unsure.
pub const INTENT_BUTTON_PREFIX: &str = "intent:";
/// The botonera buttons that open a filing, and the case type each one files.
const FILING_BUTTONS: &[(&str, &str)] = &[
    ("hacer_reclamo", "reclamo"),
    ("hacer_solicitud", "solicitud"),
    ("sugerencias_felicitaciones", "sugerencia"),
    ("quiero_que_me_contacten", "consulta"),
];
/// Topics whose intents only say "I want to file something"; the case is about the topic of
/// the conversation when there is one.
const GENERIC_TOPICS: &[&str] = &["reclamo", "solicitud", "sugerencia", "contactar_me"];
/// The generic intents' topics that file a case.
const FILING_TOPICS: &[&str] = &["reclamo", "solicitud", "sugerencia"];
/// The case type of requests about one's personal data.
const DATA_RIGHTS_TYPE: &str = "datos_personales";
/// Topics that are a case type of their own.
const TYPED_TOPICS: &[&str] = &["datos_personales", "transparencia"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Probability of the best topic at or above which the bot answers.
    pub answer: f32,
    /// Probability below which the bot does not even offer choices: it falls back.
    pub suggest: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            answer: 0.65,
            suggest: 0.20,
        }
    }
}

pub struct Engine {
    /// The catalog with the review's overlay merged in (new intents, taught examples).
    pub catalog: Catalog,
    /// The catalog as the files have it: what the classifier was trained on.
    pub files: std::sync::Arc<Catalog>,
    /// Texts taught in the catalog review, normalised: answered (or fallen back on) as taught,
    /// before the classifier is asked.
    taught: HashMap<String, Taught>,
    pub matcher: Matcher,
    pub thresholds: Thresholds,
    cues: Cues,
    /// The stems of each intent's title: the words that name it.
    title_stems: Vec<std::collections::HashSet<String>>,
}

/// A reply with what analytics needs to know about it.
pub struct Turn {
    pub reply: Reply,
    pub matched: Match,
    /// For a click: the button and its parent in the botonera.
    pub button_id: Option<String>,
    pub parent_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownButton;

/// What a message says a case would be about, beside a generic "quiero reclamar" intent.
#[derive(Clone, Debug, Default)]
struct Subject {
    /// A specific topic ("aseo_retiro").
    specific: Option<String>,
    /// Whether it names anything beyond the wish to file.
    named: bool,
}

/// The probability of a topic: the sum over its intents (the permit and its March campaign
/// are one subject to the resident).
#[derive(Clone, Debug)]
struct TopicScore {
    topic: String,
    /// The topic's most likely intent.
    intent: usize,
    probability: f32,
}

impl Engine {
    pub fn new(catalog: Catalog, thresholds: Thresholds) -> Result<Self, CatalogError> {
        Self::with_options(catalog, thresholds, &TrainOptions::default())
    }

    /// An engine whose classifier is trained with `options` (for tuning them).
    pub fn with_options(
        catalog: Catalog,
        thresholds: Thresholds,
        options: &TrainOptions,
    ) -> Result<Self, CatalogError> {
        let matcher = Matcher::build_with(&catalog, options).map_err(|e| {
            CatalogError(vec![Finding {
                file: catalog.dir.display().to_string(),
                line: None,
                message: format!("cannot build the search index: {e}"),
            }])
        })?;
        Ok(Self::assemble(
            std::sync::Arc::new(catalog.clone()),
            catalog,
            matcher,
            thresholds,
            HashMap::new(),
        ))
    }

    fn assemble(
        files: std::sync::Arc<Catalog>,
        catalog: Catalog,
        matcher: Matcher,
        thresholds: Thresholds,
        taught: HashMap<String, Taught>,
    ) -> Self {
        let cues = Cues::new(matcher.pipeline());
        let title_stems = catalog
            .intents
            .iter()
            .map(|i| {
                matcher
                    .pipeline()
                    .analyze(&i.title)
                    .stems
                    .into_iter()
                    .collect()
            })
            .collect();
        Self {
            catalog,
            files,
            taught,
            matcher,
            thresholds,
            cues,
            title_stems,
        }
    }

    /// This engine's files with `overlay` merged in (the review's new intents and taught
    /// examples) instead of the overlay it has: the classifier is reused as it is, only the
    /// index and the taught texts change. Overlay entries that no longer fit the files (an
    /// intent or placeholder gone) are left out and returned as findings.
    pub fn with_overlay(&self, overlay: &Overlay) -> Result<(Self, Vec<Finding>), CatalogError> {
        let applied = overlay::apply(&self.files, overlay);
        let matcher = self
            .matcher
            .with_index(&applied.index_catalog)
            .map_err(|e| {
                CatalogError(vec![Finding {
                    file: self.files.dir.display().to_string(),
                    line: None,
                    message: format!("cannot build the search index: {e}"),
                }])
            })?;
        let engine = Self::assemble(
            self.files.clone(),
            applied.catalog,
            matcher,
            self.thresholds,
            applied.taught,
        );
        Ok((engine, applied.findings))
    }

    /// What a text was taught in the review, if it was.
    pub fn taught(&self, text: &str) -> Option<&Taught> {
        self.taught.get(&overlay::normalize(text))
    }

    pub fn load(dir: &Path, thresholds: Thresholds) -> Result<Self, CatalogError> {
        Self::new(catalog::load(dir)?, thresholds)
    }

    /// The files in `dir` with the review's overlay merged in; overlay entries that no
    /// longer fit the files are left out (and logged), as the files are what is deployed.
    pub fn load_with(
        dir: &Path,
        thresholds: Thresholds,
        overlay: &Overlay,
    ) -> Result<Self, CatalogError> {
        let files = Self::load(dir, thresholds)?;
        if overlay == &Overlay::default() {
            return Ok(files);
        }
        let (engine, findings) = files.with_overlay(overlay)?;
        for f in findings {
            tracing::warn!(finding = %f, "catalog overlay entry left out");
        }
        Ok(engine)
    }

    fn button(&self, id: &str) -> Option<ReplyButton> {
        if id == MENU_BUTTON {
            return Some(ReplyButton {
                id: MENU_BUTTON.into(),
                label: "Menú principal".into(),
            });
        }
        self.catalog.botonera.get(id).map(|b| ReplyButton {
            id: b.id.clone(),
            label: b.label.clone(),
        })
    }

    fn buttons(&self, ids: &[String]) -> Vec<ReplyButton> {
        ids.iter().filter_map(|id| self.button(id)).collect()
    }

    pub fn greeting(&self) -> Reply {
        Reply {
            text: self.catalog.botonera.greeting.clone(),
            buttons: self.buttons(&self.catalog.botonera.roots),
            ..Reply::default()
        }
    }

    pub fn menu(&self) -> Vec<MenuNode> {
        fn node(engine: &Engine, id: &str) -> Option<MenuNode> {
            let b = engine.catalog.botonera.get(id)?;
            Some(MenuNode {
                id: b.id.clone(),
                label: b.label.clone(),
                children: b.children.iter().filter_map(|c| node(engine, c)).collect(),
            })
        }
        self.catalog
            .botonera
            .roots
            .iter()
            .filter_map(|r| node(self, r))
            .collect()
    }

    fn answer_reply(&self, intent: &Intent) -> Reply {
        let mut buttons = self.buttons(&intent.buttons);
        if !intent.buttons.iter().any(|b| b == MENU_BUTTON) {
            buttons.extend(self.button(MENU_BUTTON));
        }
        Reply {
            text: intent.answer.clone(),
            buttons,
            links: intent
                .links
                .iter()
                .map(|l| ReplyLink {
                    label: l.label.clone(),
                    url: l.url.clone(),
                })
                .collect(),
            filing: None,
        }
    }

    fn certain(intent: &Intent) -> Match {
        Match {
            intent: Some(intent.id.clone()),
            topic: Some(intent.topic.clone()),
            confidence: 1.0,
            fallback: false,
            decision: Decision::Answer,
            alternatives: Vec::new(),
        }
    }

    fn fallback_reply(&self, text: String) -> Reply {
        let mut ids = self.catalog.botonera.fallback_buttons.clone();
        if !ids.iter().any(|b| b == MENU_BUTTON) {
            ids.insert(0, MENU_BUTTON.into());
        }
        Reply {
            text,
            buttons: self.buttons(&ids),
            ..Reply::default()
        }
    }

    fn intent_by_topic(&self, topic: &str, today: NaiveDate) -> Option<&Intent> {
        self.catalog
            .intents
            .iter()
            .find(|i| i.topic == topic && i.valid_on(today))
    }

    /// Handles a click on a botonera button, an alternative or the menu button.
    pub fn click(
        &self,
        id: &str,
        conv: &mut Conversation,
        today: NaiveDate,
    ) -> Result<Turn, UnknownButton> {
        if id == MENU_BUTTON {
            conv.choices.clear();
            return Ok(Turn {
                reply: self.greeting(),
                matched: Match::default_for_menu(),
                button_id: Some(id.into()),
                parent_id: None,
            });
        }
        if let Some(intent_id) = id.strip_prefix(INTENT_BUTTON_PREFIX) {
            let intent = self
                .catalog
                .intent(intent_id)
                .filter(|i| i.valid_on(today))
                .ok_or(UnknownButton)?;
            let mut reply = self.answer_reply(intent);
            self.remember_answer(conv, intent);
            self.offer_filing(&mut reply, conv, intent, None, Subject::default());
            return Ok(Turn {
                reply,
                matched: Self::certain(intent),
                button_id: Some(id.into()),
                parent_id: None,
            });
        }
        let b = self.catalog.botonera.get(id).ok_or(UnknownButton)?;
        let (reply, matched) = match &b.action {
            ButtonAction::Submenu(text) => {
                conv.choices.clear();
                let mut buttons = self.buttons(&b.children);
                buttons.extend(self.button(MENU_BUTTON));
                let reply = Reply {
                    text: text.clone(),
                    buttons,
                    ..Reply::default()
                };
                (reply, Match::default_for_menu())
            }
            ButtonAction::Intent(intent_id) => {
                let intent = self.catalog.intent(intent_id).ok_or(UnknownButton)?;
                let mut reply = self.answer_reply(intent);
                // A filing button says what to file; the conversation says what about.
                let case_type = FILING_BUTTONS
                    .iter()
                    .find(|(b, _)| *b == id)
                    .map(|(_, t)| *t);
                self.remember_answer(conv, intent);
                self.offer_filing(&mut reply, conv, intent, case_type, Subject::default());
                (reply, Self::certain(intent))
            }
        };
        Ok(Turn {
            reply,
            matched,
            button_id: Some(b.id.clone()),
            parent_id: b.parent.clone(),
        })
    }

    /// Understands a message of a new conversation (the evaluation's view of a single line).
    pub fn understand(&self, message: &str, today: NaiveDate) -> (Reply, Match) {
        let turn = self.respond(message, &mut Conversation::default(), today);
        (turn.reply, turn.matched)
    }

    /// Understands a free-text message in the light of the conversation, or says honestly
    /// that it did not; updates the conversation.
    pub fn respond(&self, message: &str, conv: &mut Conversation, today: NaiveDate) -> Turn {
        let analyzed = self.matcher.pipeline().analyze(message);
        let reading = self.cues.read(&analyzed.stems, analyzed.words.len());
        let (mut reply, matched) = self.interpret(message, &analyzed, &reading, conv, today);
        // A request about one's personal data says which right, when the words name one.
        if let Some(f) = reply.filing.clone() {
            if f.case_type == DATA_RIGHTS_TYPE && reading.right.is_some() {
                Self::attach_filing(
                    &mut reply,
                    Filing {
                        right: reading.right.map(String::from),
                        ..f
                    },
                );
            }
        }
        match matched.decision {
            Decision::Fallback => {
                conv.misses += 1;
                if conv.misses >= 2 {
                    reply.text.push_str(match self.catalog.register() {
                        Register::Usted => {
                            "\n\nParece que no estoy logrando ayudarle. Si prefiere, deje sus datos \
                             en «Quiero que me contacten» y una persona del municipio le responderá."
                        }
                        Register::Tu => {
                            "\n\nParece que no estoy logrando ayudarte. Si prefieres, deja tus datos \
                             en «Quiero que me contacten» y una persona del municipio te responderá."
                        }
                    });
                }
            }
            Decision::Answer => conv.misses = 0,
            Decision::Clarify => {}
        }
        Turn {
            reply,
            matched,
            button_id: None,
            parent_id: None,
        }
    }

    fn interpret(
        &self,
        message: &str,
        analyzed: &Analyzed,
        reading: &Reading,
        conv: &mut Conversation,
        today: NaiveDate,
    ) -> (Reply, Match) {
        let choices = std::mem::take(&mut conv.choices);
        if let Some(folio) = text::find_folio(message) {
            if let Some(intent) = self.intent_by_topic("seguimiento", today) {
                let mut reply = self.answer_reply(intent);
                reply.links.insert(
                    0,
                    ReplyLink {
                        label: format!("Ver el estado de {folio}"),
                        url: format!("/seguimiento?folio={folio}"),
                    },
                );
                return (reply, Self::certain(intent));
            }
        }
        // A clarifying question answered by typing: "2", "la segunda", or the option's words.
        if !choices.is_empty() {
            if let Some(intent) = self.typed_choice(message, analyzed, &choices, today) {
                return self.answer_in_context(intent, Self::certain(intent), conv, reading);
            }
        }
        // Taught in the catalog review: answered (or not) as the municipal team said.
        match self.taught(message) {
            Some(Taught::Intent(id)) => {
                if let Some(intent) = self.catalog.intent(id).filter(|i| i.valid_on(today)) {
                    return self.answer_in_context(intent, Self::certain(intent), conv, reading);
                }
            }
            Some(Taught::OutOfScope) => {
                let mut reply = self.fallback_reply(self.catalog.botonera.fallback.clone());
                self.offer_filing_unsure(&mut reply, conv, reading, None);
                let m = Match {
                    fallback: true,
                    decision: Decision::Fallback,
                    ..Match::default()
                };
                return (reply, m);
            }
            None => {}
        }
        for (set, topic) in [(text::GREETINGS, "saludo"), (text::FAREWELLS, "despedida")] {
            if text::only_words_from(&analyzed.words, set) {
                if let Some(intent) = self.intent_by_topic(topic, today) {
                    return (self.answer_reply(intent), Self::certain(intent));
                }
            }
        }
        let allowed = |ord: usize| self.catalog.intents[ord].valid_on(today);
        // "¿Y cuánto sale?" after an answer is about that answer's subject.
        let last = self.last_answered(conv, reading, &allowed);
        if let Some(intent) = last.filter(|_| reading.follow_up()) {
            let m = self
                .in_context(intent, analyzed, &allowed)
                .unwrap_or_else(|| {
                    let mut m = Self::certain(intent);
                    m.confidence = self.thresholds.answer;
                    m
                });
            return self.answer_in_context(intent, m, conv, reading);
        }
        let ranking = self.matcher.rank_analyzed(analyzed, allowed);
        let (mut reply, m) = self.decide(&ranking, reading);
        // Not understood alone: maybe it is understood after the last answer ("¿y si estoy
        // en Dicom igual puedo?").
        if m.decision != Decision::Answer {
            if let Some(intent) = last {
                if let Some(m) = self.follow_up(intent, analyzed, reading, &allowed) {
                    return self.answer_in_context(intent, m, conv, reading);
                }
            }
        }
        match m.decision {
            Decision::Answer => {
                if let Some(intent) = m.intent.as_deref().and_then(|id| self.catalog.intent(id)) {
                    self.remember_answer(conv, intent);
                    let subject = self.subject(intent, &ranking, reading);
                    self.offer_filing(&mut reply, conv, intent, reading.case_type, subject);
                }
            }
            Decision::Clarify => {
                conv.choices = reply
                    .buttons
                    .iter()
                    .filter_map(|b| b.id.strip_prefix(INTENT_BUTTON_PREFIX))
                    .map(String::from)
                    .collect();
                // A guess the resident is asked to choose against is no guess.
                let guess = self.clear_case_topic(&ranking, reading).filter(|g| {
                    conv.choices
                        .iter()
                        .filter_map(|id| self.catalog.intent(id))
                        .all(|i| &i.topic == g || !self.catalog.is_case_topic(&i.topic))
                });
                self.offer_filing_unsure(&mut reply, conv, reading, guess);
            }
            Decision::Fallback => self.offer_filing_unsure(&mut reply, conv, reading, None),
        }
        (reply, m)
    }

    /// Answers `intent` for a message read in the conversation's light.
    fn answer_in_context(
        &self,
        intent: &Intent,
        matched: Match,
        conv: &mut Conversation,
        reading: &Reading,
    ) -> (Reply, Match) {
        let mut reply = self.answer_reply(intent);
        self.remember_answer(conv, intent);
        self.offer_filing(
            &mut reply,
            conv,
            intent,
            reading.case_type,
            Subject::default(),
        );
        (reply, matched)
    }

    /// The intent answered last, when the message is short enough to follow up on it.
    fn last_answered(
        &self,
        conv: &Conversation,
        reading: &Reading,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Option<&Intent> {
        if !reading.short {
            return None;
        }
        let ord = conv
            .intent
            .as_deref()
            .and_then(|id| self.catalog.ordinal(id))?;
        Some(&self.catalog.intents[ord]).filter(|_| allowed(ord))
    }

    /// The message read together with the last answer's title: the match for `intent`, if
    /// that is what the pair is about.
    fn in_context(
        &self,
        intent: &Intent,
        analyzed: &Analyzed,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Option<Match> {
        let together = format!("{} {}", intent.title, analyzed.words.join(" "));
        let topics = self.topics(&self.matcher.rank(&together, allowed));
        let first = topics.first()?;
        (first.topic == intent.topic && first.probability >= self.thresholds.suggest).then(|| {
            let mut m = Self::certain(intent);
            m.confidence = round3(first.probability);
            m
        })
    }

    /// Whether a short message the bot did not understand alone follows up on `intent`: its
    /// subject words do not point to another topic or out of scope ("una receta de calzones
    /// rotos"), unless it opens like a follow-up ("¿y si…?"), and read together with the last
    /// answer it is about the same topic.
    fn follow_up(
        &self,
        intent: &Intent,
        analyzed: &Analyzed,
        reading: &Reading,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Option<Match> {
        let alone = self.matcher.rank(&reading.subject.join(" "), allowed);
        let best_alone = self.topics(&alone).into_iter().next();
        let p_alone = best_alone.as_ref().map(|t| t.probability).unwrap_or(0.0);
        let continues = matches!(
            analyzed.words.first().map(String::as_str),
            Some("y" | "e" | "pero" | "entonces" | "oye" | "igual")
        );
        // Words the catalog does not know at all leave the question to the context only
        // when the message opens like a follow-up.
        if !continues
            && (alone.known < 0.5 || (best_alone.is_some() && alone.out_of_scope >= p_alone))
        {
            return None;
        }
        if let Some(other) = best_alone {
            if other.topic != intent.topic && other.probability >= self.thresholds.answer {
                return None;
            }
        }
        self.in_context(intent, analyzed, allowed)
    }

    fn typed_choice(
        &self,
        message: &str,
        analyzed: &Analyzed,
        choices: &[String],
        today: NaiveDate,
    ) -> Option<&Intent> {
        let valid = |id: &str| self.catalog.intent(id).filter(|i| i.valid_on(today));
        if let Some(i) = conversation::choice_by_number(&analyzed.words, choices.len()) {
            return valid(&choices[i]);
        }
        // The option's own words: the choice whose title shares the most stems with the
        // message, when exactly one does best.
        let mine: std::collections::HashSet<&String> = analyzed.stems.iter().collect();
        let mut best: Option<(usize, &str)> = None;
        let mut tie = false;
        for id in choices {
            let Some(intent) = valid(id) else { continue };
            let title = self.matcher.pipeline().analyze(&intent.title);
            let shared = title.stems.iter().filter(|s| mine.contains(s)).count();
            match best {
                Some((n, _)) if shared == n => tie = true,
                Some((n, _)) if shared < n => {}
                _ => {
                    best = Some((shared, id));
                    tie = false;
                }
            }
        }
        if let Some((n, id)) = best {
            if n > 0 && !tie {
                return valid(id);
            }
        }
        // Otherwise, the classifier limited to the choices, when it is clear.
        let ranking = self.matcher.rank(message, |ord| {
            choices.contains(&self.catalog.intents[ord].id)
                && self.catalog.intents[ord].valid_on(today)
        });
        let top = ranking.candidates.first()?;
        (top.confidence >= self.thresholds.answer && ranking.out_of_scope < top.confidence)
            .then(|| &self.catalog.intents[top.intent])
    }

    fn remember_answer(&self, conv: &mut Conversation, intent: &Intent) {
        if matches!(intent.topic.as_str(), "saludo" | "despedida") {
            return;
        }
        conv.intent = Some(intent.id.clone());
        if self.catalog.is_case_topic(&intent.topic)
            && !GENERIC_TOPICS.contains(&intent.topic.as_str())
        {
            conv.case_topic = Some(intent.topic.clone());
        }
    }

    /// For a generic intent ("quiero poner un reclamo por…"), what the message says the case
    /// is about: a specific topic the classifier sees plausibly beside the generic intent, or
    /// just that it names something beyond "I want to file a complaint".
    fn subject(&self, intent: &Intent, ranking: &Ranking, reading: &Reading) -> Subject {
        if !GENERIC_TOPICS.contains(&intent.topic.as_str()) || !reading.names_subject {
            return Subject::default();
        }
        let specific = ranking
            .candidates
            .iter()
            .filter(|c| c.confidence >= SUBJECT_MIN)
            .map(|c| &self.catalog.intents[c.intent].topic)
            .find(|t| self.catalog.is_case_topic(t) && !GENERIC_TOPICS.contains(&t.as_str()))
            .cloned();
        Subject {
            specific,
            named: true,
        }
    }

    /// Groups the ranking by topic, best first.
    fn topics(&self, ranking: &Ranking) -> Vec<TopicScore> {
        let mut out: Vec<TopicScore> = Vec::new();
        for c in &ranking.candidates {
            let topic = &self.catalog.intents[c.intent].topic;
            match out.iter_mut().find(|t| &t.topic == topic) {
                Some(t) => t.probability += c.confidence,
                None => out.push(TopicScore {
                    topic: topic.clone(),
                    intent: c.intent,
                    probability: c.confidence,
                }),
            }
        }
        out.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        out
    }

    /// "Quiero reclamar por el hoyo de mi calle": the wish to file (a generic OIRS intent) and
    /// its subject (a service) are one request, not two options to choose from. The subject
    /// takes both probabilities, except for compliments and suggestions, which the OIRS
    /// answers itself.
    fn merge_filing_with_subject(&self, topics: &mut Vec<TopicScore>, reading: &Reading) {
        let generic = |t: &TopicScore| FILING_TOPICS.contains(&t.topic.as_str());
        let specific = |t: &TopicScore| {
            self.catalog.is_case_topic(&t.topic) && !GENERIC_TOPICS.contains(&t.topic.as_str())
        };
        let [a, b, ..] = topics.as_slice() else {
            return;
        };
        let pair = (generic(a) && specific(b)) || (specific(a) && generic(b));
        if !pair || b.probability < a.probability * SUBJECT_SHARE {
            return;
        }
        let praise = matches!(reading.case_type, Some("felicitacion" | "sugerencia"));
        let generic_at = if generic(a) { 0 } else { 1 };
        let drop = if praise { 1 - generic_at } else { generic_at };
        let gone = topics.remove(drop);
        topics[0].probability += gone.probability;
        topics.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    }

    fn decide(&self, ranking: &Ranking, reading: &Reading) -> (Reply, Match) {
        let mut topics = self.topics(ranking);
        self.merge_filing_with_subject(&mut topics, reading);
        let alternative = |t: &TopicScore| Alternative {
            intent: self.catalog.intents[t.intent].id.clone(),
            topic: t.topic.clone(),
            confidence: round3(t.probability),
        };
        let fallback = |confidence: f32, alternatives: Vec<Alternative>| {
            (
                self.fallback_reply(self.catalog.botonera.fallback.clone()),
                Match {
                    confidence: round3(confidence),
                    fallback: true,
                    decision: Decision::Fallback,
                    alternatives,
                    ..Match::default()
                },
            )
        };
        let Some(best) = topics.first() else {
            return fallback(0.0, Vec::new());
        };
        // Words the catalog has never seen make any guess less sure.
        let confidence = best.probability * (KNOWN_FLOOR + (1.0 - KNOWN_FLOOR) * ranking.known);
        let t = self.thresholds;
        if confidence < t.suggest || ranking.out_of_scope >= best.probability * OUT_OF_SCOPE_RATIO {
            return fallback(confidence, topics.iter().take(3).map(alternative).collect());
        }
        let second = topics.get(1).map(|s| s.probability).unwrap_or(0.0);
        let evidence_of = |t: &TopicScore| {
            ranking
                .candidates
                .iter()
                .find(|c| c.intent == t.intent)
                .map(|c| c.evidence)
                .unwrap_or(0.0)
        };
        let evidence = evidence_of(best);
        // One or two words the examples of two topics use alike ("permiso": de circulación or
        // de edificación?): the classifier's preference comes from how many examples each has,
        // not from the message, so the bot asks.
        // Both topics must be named by those words (their titles use them), or it is no tie:
        // "reclamo" alone is a complaint, though tracking examples mention complaints too.
        let named_by_both = |t: &TopicScore| {
            reading.meaningful.iter().all(|s| {
                self.title_stems[best.intent].contains(s) && self.title_stems[t.intent].contains(s)
            })
        };
        let tied = |t: &TopicScore| {
            evidence > 0.0 && evidence_of(t) >= evidence * (1.0 - KEYWORD_TIE) && named_by_both(t)
        };
        let keyword_tie =
            (1..=2).contains(&reading.meaningful.len()) && topics.iter().skip(1).any(tied);
        let close = second >= best.probability * CLOSE_RATIO || keyword_tie;
        let alternatives: Vec<Alternative> =
            topics.iter().skip(1).take(2).map(alternative).collect();
        let intent = &self.catalog.intents[best.intent];
        // The classifier may be sure of a topic whose examples share little with the message
        // (a word it weighs heavily, in another sense): an answer also needs BM25 evidence.
        // A resident who asks to file ("solicito…", "reclamo por…") has said what they want:
        // the subject needs less certainty, as the form shows it to confirm or change.
        let bar = if reading.files {
            t.answer * FILING_ANSWER_SHARE
        } else {
            t.answer
        };
        if confidence >= bar && !close && evidence >= EVIDENCE_MIN {
            let m = Match {
                intent: Some(intent.id.clone()),
                topic: Some(intent.topic.clone()),
                confidence: round3(confidence),
                fallback: false,
                decision: Decision::Answer,
                alternatives,
            };
            return (self.answer_reply(intent), m);
        }
        // Unsure: offer the plausible topics as buttons, plus the ways out.
        let mut buttons: Vec<ReplyButton> = topics
            .iter()
            .filter(|c| c.probability >= best.probability * OFFER_RATIO || (keyword_tie && tied(c)))
            .take(3)
            .map(|c| {
                let i = &self.catalog.intents[c.intent];
                ReplyButton {
                    id: format!("{INTENT_BUTTON_PREFIX}{}", i.id),
                    label: i.title.clone(),
                }
            })
            .collect();
        buttons.extend(self.fallback_reply(String::new()).buttons);
        let m = Match {
            intent: Some(intent.id.clone()),
            topic: Some(intent.topic.clone()),
            confidence: round3(confidence),
            fallback: false,
            decision: Decision::Clarify,
            alternatives,
        };
        let reply = Reply {
            text: self.catalog.botonera.suggest.clone(),
            buttons,
            ..Reply::default()
        };
        (reply, m)
    }
}

impl Match {
    /// The match of a menu click: nothing understood, nothing missed.
    fn default_for_menu() -> Self {
        Match {
            decision: Decision::Answer,
            ..Match::default()
        }
    }
}

// The decision's constants, chosen on the tuning sets (dev, regression, tuning; never on the
// held-out set) with the figures of the README.
/// A second topic at least this share of the best one's probability makes the bot ask.
const CLOSE_RATIO: f32 = 0.6;
/// Topics offered as choices must reach this share of the best one's probability.
const OFFER_RATIO: f32 = 0.25;
/// The confidence of a message whose words the intents never use keeps this share.
const KNOWN_FLOOR: f32 = 0.25;
/// The bot falls back when "out of scope" is at least this many times as likely as the best
/// topic.
const OUT_OF_SCOPE_RATIO: f32 = 1.5;
/// A subject beside a generic filing intent must reach this share of its probability to be
/// taken as what the case is about.
const SUBJECT_SHARE: f32 = 0.2;
/// The probability a topic needs to be suggested for a case description.
const SUGGESTION_MIN: f32 = 0.3;
/// BM25 evidence within this share of the best one's makes a one- or two-word message a tie.
const KEYWORD_TIE: f32 = 0.025;
/// Share of the answer threshold a message that asks to file a case needs.
const FILING_ANSWER_SHARE: f32 = 0.8;
/// BM25 evidence an answer needs.
const EVIDENCE_MIN: f32 = 0.3;
/// The probability a specific subject needs beside a generic intent to be taken as the case's topic.
const SUBJECT_MIN: f32 = 0.08;

/// A guessed case topic for an unsure reply needs the next case topic below this share of it.
const GUESS_LEAD: f32 = 0.5;

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}
