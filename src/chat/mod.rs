//! Asistente virtual: the intent catalog, the matcher, the botonera and the conversation.

pub mod catalog;
pub mod engine;
pub mod eval;
pub mod matcher;
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
    /// True when the bot did not understand and offered a way out.
    pub fallback: bool,
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

    /// Loads the catalog from `dir` and swaps it in; on any problem the running catalog
    /// stays and the findings are returned.
    pub async fn reload(
        &self,
        dir: std::path::PathBuf,
        thresholds: engine::Thresholds,
    ) -> Result<Arc<Engine>, catalog::CatalogError> {
        let built = tokio::task::spawn_blocking(move || Engine::load(&dir, thresholds))
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
