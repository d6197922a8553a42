//! Offering to file an OIRS case from the chat: which case type and topic the conversation
//! calls for, and the buttons and `/oirs` links that open the form on it.

use chrono::NaiveDate;

use super::{
    Engine, Subject, FILING_BUTTONS, GENERIC_TOPICS, GUESS_LEAD, MENU_BUTTON, SUGGESTION_MIN,
    TYPED_TOPICS,
};
use crate::chat::catalog::Intent;
use crate::chat::conversation::{Conversation, Reading};
use crate::chat::matcher::Ranking;
use crate::chat::{Filing, Reply, ReplyLink};

impl Engine {
    /// When the reply offers to file a case (an OIRS button or link), or the resident's words
    /// call for one (a complaint, a request, a compliment), says what case: the type the
    /// words or the button chose, and the topic of the conversation. The OIRS links are
    /// rewritten to open the form on it.
    pub(super) fn offer_filing(
        &self,
        reply: &mut Reply,
        conv: &Conversation,
        intent: &Intent,
        wanted: Option<&str>,
        subject: Subject,
    ) {
        let offers = |reply: &Reply| {
            reply
                .buttons
                .iter()
                .any(|b| FILING_BUTTONS.iter().any(|(id, _)| *id == b.id))
                || reply.links.iter().any(|l| l.url.starts_with("/oirs"))
        };
        if !offers(reply) {
            let Some(wanted) = wanted else { return };
            self.add_filing_button(reply, wanted);
            if !offers(reply) {
                return;
            }
        }
        let link_type = reply
            .links
            .iter()
            .find(|l| l.url.starts_with("/oirs"))
            .and_then(|l| query_param(&l.url, "tipo"));
        let topic = intent.topic.as_str();
        let case_type = if TYPED_TOPICS.contains(&topic) {
            topic.to_string()
        } else if topic == "sugerencia" {
            match wanted {
                Some("felicitacion") => "felicitacion".to_string(),
                _ => "sugerencia".to_string(),
            }
        } else {
            wanted
                .map(String::from)
                .or(link_type)
                .unwrap_or_else(|| "solicitud".into())
        };
        let case_topic = if TYPED_TOPICS.contains(&topic) {
            Some(topic.to_string())
        } else if case_type == "felicitacion" {
            // Compliments go to the OIRS, which passes them on.
            Some("sugerencia".to_string())
        } else if GENERIC_TOPICS.contains(&topic) {
            // A complaint about the municipality itself (staff, attention) is its own subject;
            // "quiero poner un reclamo" alone names none, and the resident will choose.
            subject
                .specific
                .or_else(|| conv.case_topic.clone())
                .or_else(|| {
                    (subject.named && self.catalog.is_case_topic(topic)).then(|| topic.to_string())
                })
        } else if self.catalog.is_case_topic(topic) {
            Some(topic.to_string())
        } else {
            conv.case_topic.clone()
        };
        Self::attach_filing(
            reply,
            Filing {
                case_type,
                topic: case_topic,
                right: None,
            },
        );
    }

    /// The case topic a message not understood well enough to answer is clearly about: the
    /// most likely specific case topic, when it is worth suggesting and no other case topic
    /// comes near it. The form shows it to confirm or change.
    pub(super) fn clear_case_topic(&self, ranking: &Ranking, reading: &Reading) -> Option<String> {
        let mut topics = self.topics(ranking);
        self.merge_filing_with_subject(&mut topics, reading);
        let mut cases = topics.iter().filter(|t| {
            self.catalog.is_case_topic(&t.topic) && !GENERIC_TOPICS.contains(&t.topic.as_str())
        });
        let first = cases.next()?;
        let second = cases.next().map(|t| t.probability).unwrap_or(0.0);
        (first.probability >= self.thresholds.suggest && second < first.probability * GUESS_LEAD)
            .then(|| first.topic.clone())
    }

    /// A clarifying question or a fallback offers the OIRS form among its ways out: its filing
    /// says the type the words call for ("reclamo…" swaps the request button for the
    /// complaint one) and the topic that is clear, from this message or the conversation.
    pub(super) fn offer_filing_unsure(
        &self,
        reply: &mut Reply,
        conv: &Conversation,
        reading: &Reading,
        guess: Option<String>,
    ) {
        let wanted = reading.case_type;
        if let Some(wanted) = wanted {
            let id = filing_button_for(wanted);
            if !reply.buttons.iter().any(|b| b.id == id) {
                match reply.buttons.iter().position(|b| b.id == "hacer_solicitud") {
                    Some(at) => {
                        if let Some(b) = self.button(id) {
                            reply.buttons[at] = b;
                        }
                    }
                    None => self.add_filing_button(reply, wanted),
                }
            }
        }
        let Some(button_type) = FILING_BUTTONS
            .iter()
            .filter(|(id, _)| *id != "quiero_que_me_contacten")
            .find(|(id, _)| reply.buttons.iter().any(|b| b.id == *id))
            .map(|(_, t)| *t)
        else {
            return;
        };
        let topic = guess.or_else(|| conv.case_topic.clone());
        let case_type = match topic.as_deref() {
            Some(t) if TYPED_TOPICS.contains(&t) => t.to_string(),
            _ => wanted.unwrap_or(button_type).to_string(),
        };
        let topic = match case_type.as_str() {
            "felicitacion" => Some("sugerencia".to_string()),
            _ => topic,
        };
        Self::attach_filing(
            reply,
            Filing {
                case_type,
                topic,
                right: None,
            },
        );
    }

    /// Puts `filing` on the reply and points its OIRS links at the form opened on it.
    pub(super) fn attach_filing(reply: &mut Reply, filing: Filing) {
        for l in reply
            .links
            .iter_mut()
            .filter(|l| l.url.starts_with("/oirs"))
        {
            l.url = oirs_url(&filing);
        }
        // The form one click away: a reply that offers filing through a menu button gets the
        // link that opens the form on what the conversation said.
        if !reply.links.iter().any(|l| l.url.starts_with("/oirs")) {
            reply.links.push(ReplyLink {
                label: filing_link_label(&filing.case_type).into(),
                url: oirs_url(&filing),
            });
        }
        reply.filing = Some(filing);
    }

    /// Adds the botonera button that files a case of `case_type`, before "Menú principal".
    pub(super) fn add_filing_button(&self, reply: &mut Reply, case_type: &str) {
        if let Some(b) = self.button(filing_button_for(case_type)) {
            let at = reply
                .buttons
                .iter()
                .position(|b| b.id == MENU_BUTTON)
                .unwrap_or(reply.buttons.len());
            reply.buttons.insert(at, b);
        }
    }

    /// The topic a case described by `text` is most likely about, when the classifier sees
    /// one plausibly: a suggestion for a resident who wrote a description but chose no topic.
    pub fn suggest_topic(&self, text: &str, today: NaiveDate) -> Option<String> {
        let ranking = self
            .matcher
            .rank(text, |ord| self.catalog.intents[ord].valid_on(today));
        let mut topics = self.topics(&ranking);
        topics.retain(|t| {
            self.catalog.is_case_topic(&t.topic) && !GENERIC_TOPICS.contains(&t.topic.as_str())
        });
        let best = topics.first()?;
        (best.probability >= SUGGESTION_MIN && ranking.out_of_scope < best.probability)
            .then(|| best.topic.clone())
    }
}

/// The botonera button that files a case of `case_type`.
pub(super) fn filing_button_for(case_type: &str) -> &'static str {
    match case_type {
        "reclamo" => "hacer_reclamo",
        "sugerencia" | "felicitacion" => "sugerencias_felicitaciones",
        _ => "hacer_solicitud",
    }
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key && !v.is_empty()).then(|| v.to_string())
    })
}

/// What the link that opens the form says, by case type.
fn filing_link_label(case_type: &str) -> &'static str {
    match case_type {
        "reclamo" => "Ingresar un reclamo",
        "sugerencia" => "Dejar una sugerencia",
        "felicitacion" => "Dejar una felicitación",
        "consulta" => "Dejar una consulta por escrito",
        "transparencia" => "Solicitar información pública",
        "datos_personales" => "Solicitud sobre datos personales",
        _ => "Ingresar una solicitud",
    }
}

/// The `/oirs` link that opens the form on a filing.
pub fn oirs_url(filing: &Filing) -> String {
    let mut url = match &filing.topic {
        Some(t) => format!("/oirs?tipo={}&tema={t}", filing.case_type),
        None => format!("/oirs?tipo={}", filing.case_type),
    };
    if let Some(r) = &filing.right {
        url.push_str("&derecho=");
        url.push_str(r);
    }
    url
}
