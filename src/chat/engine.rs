//! The conversation rules: greeting, button clicks, understanding free text, and the honest
//! fallback. Plain functions over the catalog and the matcher; no HTTP, no database.

use std::path::Path;

use chrono::NaiveDate;

use super::catalog::{self, ButtonAction, Catalog, CatalogError, Finding, Intent};
use super::matcher::{Matcher, Ranking};
use super::{text, Alternative, Match, MenuNode, Reply, ReplyButton, ReplyLink};

/// Button id that shows the initial menu again.
pub const MENU_BUTTON: &str = "menu";
/// Prefix of button ids that pick one of the alternatives offered when unsure.
pub const INTENT_BUTTON_PREFIX: &str = "intent:";

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub answer: f32,
    pub suggest: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            answer: 0.55,
            suggest: 0.40,
        }
    }
}

pub struct Engine {
    pub catalog: Catalog,
    pub matcher: Matcher,
    pub thresholds: Thresholds,
}

/// A button click the engine understood: the reply plus what analytics needs to know.
pub struct Click {
    pub reply: Reply,
    pub matched: Match,
    pub button_id: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownButton;

impl Engine {
    pub fn new(catalog: Catalog, thresholds: Thresholds) -> Result<Self, CatalogError> {
        let matcher = Matcher::build(&catalog).map_err(|e| {
            CatalogError(vec![Finding {
                file: catalog.dir.display().to_string(),
                line: None,
                message: format!("cannot build the search index: {e}"),
            }])
        })?;
        Ok(Self {
            catalog,
            matcher,
            thresholds,
        })
    }

    pub fn load(dir: &Path, thresholds: Thresholds) -> Result<Self, CatalogError> {
        Self::new(catalog::load(dir)?, thresholds)
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
            links: Vec::new(),
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

    fn answer(&self, intent: &Intent) -> Reply {
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
        }
    }

    fn certain(intent: &Intent) -> Match {
        Match {
            intent: Some(intent.id.clone()),
            topic: Some(intent.topic.clone()),
            confidence: 1.0,
            fallback: false,
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
            links: Vec::new(),
        }
    }

    fn intent_by_topic(&self, topic: &str, today: NaiveDate) -> Option<&Intent> {
        self.catalog
            .intents
            .iter()
            .find(|i| i.topic == topic && i.valid_on(today))
    }

    /// Handles a click on a botonera button, an alternative or the menu button.
    pub fn click(&self, id: &str, today: NaiveDate) -> Result<Click, UnknownButton> {
        if id == MENU_BUTTON {
            return Ok(Click {
                reply: self.greeting(),
                matched: Match::default(),
                button_id: id.into(),
                parent_id: None,
            });
        }
        if let Some(intent_id) = id.strip_prefix(INTENT_BUTTON_PREFIX) {
            let intent = self
                .catalog
                .intent(intent_id)
                .filter(|i| i.valid_on(today))
                .ok_or(UnknownButton)?;
            return Ok(Click {
                reply: self.answer(intent),
                matched: Self::certain(intent),
                button_id: id.into(),
                parent_id: None,
            });
        }
        let b = self.catalog.botonera.get(id).ok_or(UnknownButton)?;
        let (reply, matched) = match &b.action {
            ButtonAction::Submenu(text) => (
                Reply {
                    text: text.clone(),
                    buttons: {
                        let mut v = self.buttons(&b.children);
                        v.extend(self.button(MENU_BUTTON));
                        v
                    },
                    links: Vec::new(),
                },
                Match::default(),
            ),
            ButtonAction::Intent(intent_id) => match self.catalog.intent(intent_id) {
                Some(intent) => (self.answer(intent), Self::certain(intent)),
                None => return Err(UnknownButton),
            },
        };
        Ok(Click {
            reply,
            matched,
            button_id: b.id.clone(),
            parent_id: b.parent.clone(),
        })
    }

    /// Understands a free-text message, or says honestly that it did not.
    pub fn understand(&self, message: &str, today: NaiveDate) -> (Reply, Match) {
        if let Some(folio) = text::find_folio(message) {
            if let Some(intent) = self.intent_by_topic("seguimiento", today) {
                let mut reply = self.answer(intent);
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
        let words = self.matcher.synonyms().expand(message);
        for (set, topic) in [(text::GREETINGS, "saludo"), (text::FAREWELLS, "despedida")] {
            if text::only_words_from(&words, set) {
                if let Some(intent) = self.intent_by_topic(topic, today) {
                    return (self.answer(intent), Self::certain(intent));
                }
            }
        }
        let ranking = self
            .matcher
            .rank(message, |ord| self.catalog.intents[ord].valid_on(today));
        self.decide(&ranking)
    }

    fn distinct_topics(&self, ranking: &Ranking) -> Vec<Alternative> {
        let mut out: Vec<Alternative> = Vec::new();
        for c in &ranking.candidates {
            let intent = &self.catalog.intents[c.intent];
            if out.iter().any(|a| a.topic == intent.topic) {
                continue;
            }
            out.push(Alternative {
                intent: intent.id.clone(),
                topic: intent.topic.clone(),
                confidence: round3(c.confidence),
            });
        }
        out
    }

    fn decide(&self, ranking: &Ranking) -> (Reply, Match) {
        let ranked = self.distinct_topics(ranking);
        let Some(best) = ranked.first() else {
            let m = Match {
                fallback: true,
                ..Match::default()
            };
            return (
                self.fallback_reply(self.catalog.botonera.fallback.clone()),
                m,
            );
        };
        let alternatives: Vec<Alternative> = ranked.iter().skip(1).take(2).cloned().collect();
        let t = self.thresholds;
        // Two intents of different topics tied for first ("permiso": de circulación or de
        // edificación?): asking beats guessing, however confident each looks alone.
        let tied = match ranking.candidates.as_slice() {
            [first, second, ..] => {
                first.lead < AMBIGUOUS_LEAD
                    && self.catalog.intents[first.intent].topic
                        != self.catalog.intents[second.intent].topic
            }
            _ => false,
        };
        if best.confidence >= t.answer && !tied {
            let intent = self
                .catalog
                .intent(&best.intent)
                .expect("ranked intents come from the catalog");
            let m = Match {
                intent: Some(best.intent.clone()),
                topic: Some(best.topic.clone()),
                confidence: best.confidence,
                fallback: false,
                alternatives,
            };
            return (self.answer(intent), m);
        }
        if best.confidence >= t.suggest {
            // Unsure: offer the likely intents as buttons, plus the ways out.
            let mut buttons: Vec<ReplyButton> = ranked
                .iter()
                .take(3)
                .filter(|a| a.confidence >= t.suggest * 0.6)
                .filter_map(|a| {
                    Some(ReplyButton {
                        id: format!("{INTENT_BUTTON_PREFIX}{}", a.intent),
                        label: self.catalog.intent(&a.intent)?.title.clone(),
                    })
                })
                .collect();
            buttons.extend(self.fallback_reply(String::new()).buttons);
            let m = Match {
                intent: Some(best.intent.clone()),
                topic: Some(best.topic.clone()),
                confidence: best.confidence,
                fallback: false,
                alternatives,
            };
            let reply = Reply {
                text: self.catalog.botonera.suggest.clone(),
                buttons,
                links: Vec::new(),
            };
            return (reply, m);
        }
        let m = Match {
            intent: None,
            topic: None,
            confidence: best.confidence,
            fallback: true,
            alternatives: ranked.iter().take(3).cloned().collect(),
        };
        (
            self.fallback_reply(self.catalog.botonera.fallback.clone()),
            m,
        )
    }
}

/// Below this lead over the runner-up of another topic, the bot offers both instead of
/// answering (measured on the dev and held-out sets: only wrong guesses fall under it).
const AMBIGUOUS_LEAD: f32 = 0.025;

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}
