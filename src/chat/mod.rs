//! Asistente virtual: the intent catalog, the matcher, the botonera and the conversation.

pub mod bm25;
pub mod catalog;
pub mod classifier;
pub mod conversation;
pub mod engine;
pub mod eval;
pub mod features;
pub mod feedback;
pub mod matcher;
pub mod overlay;
pub mod routes;
pub mod session;
pub mod text;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use engine::Engine;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reply {
    pub text: String,
    pub buttons: Vec<ReplyButton>,
    pub links: Vec<ReplyLink>,
    /// Present when the reply offers to file an OIRS case: what the case would be, from the
    /// conversation. The widget's form starts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filing: Option<Filing>,
}

/// The case a reply offers to file: its type and the topic the conversation is about (null
/// only when the conversation named none; the resident then chooses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Filing {
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: Option<String>,
    /// For a request about one's personal data: the right the words ask for ("borren mis
    /// datos" → supresion), when they name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
}

/// What a reply does with the message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Answers `intent`.
    Answer,
    /// Asks the resident to choose among the alternatives.
    Clarify,
    /// Did not understand and offered a way out.
    #[default]
    Fallback,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Clarify => "clarify",
            Self::Fallback => "fallback",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplyButton {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplyLink {
    pub label: String,
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Match {
    pub intent: Option<String>,
    pub topic: Option<String>,
    pub confidence: f32,
    /// True exactly when `decision` is `fallback`.
    pub fallback: bool,
    pub decision: Decision,
    pub alternatives: Vec<Alternative>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alternative {
    pub intent: String,
    pub topic: String,
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(no_recursion)]
pub struct MenuNode {
    pub id: String,
    pub label: String,
    pub children: Vec<MenuNode>,
}

/// The engine in service. A reload builds a new one off to the side and swaps the pointer,
/// so requests in flight finish with the engine they started with.
#[derive(Clone)]
pub struct ChatService {
    current: Arc<RwLock<Arc<Engine>>>,
}

impl ChatService {
    pub fn new(engine: Engine) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(engine))),
        }
    }

    pub fn engine(&self) -> Arc<Engine> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, engine: Engine) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(engine);
    }

    /// Loads the catalog from `dir`, merges the review's `overlay` and swaps it in; on any
    /// problem with the files the running catalog stays and the findings are returned.
    pub async fn reload(
        &self,
        dir: std::path::PathBuf,
        thresholds: engine::Thresholds,
        overlay: overlay::Overlay,
    ) -> Result<Arc<Engine>, catalog::CatalogError> {
        let built =
            tokio::task::spawn_blocking(move || Engine::load_with(&dir, thresholds, &overlay))
                .await
                .map_err(|e| {
                    catalog::CatalogError(vec![catalog::Finding {
                        file: "-".into(),
                        line: None,
                        message: format!("reload task failed: {e}"),
                    }])
                })??;
        self.replace(built);
        Ok(self.engine())
    }
}
