//! The configuration file's part of the registry. At each start the parties it lists
//! are added when missing, and updated when the file changed them, unless an operator
//! has changed them since (then the operator's version stands, and the difference is
//! logged). Several instances starting at once each try; the registry's compare-and-swap
//! lets one win and the others find the work done.

use super::admin::{changed_keys, top_level_keys, AdminError, Change, Registrar};
use super::registration::Registration;
use super::{Entry, Source};
use crate::config::Settings;

/// Who the log names for the configuration's changes.
pub(crate) const CONFIG_ACTOR: &str = "config";

impl Registrar {
    /// Brings the configuration's parties into the registry.
    /// The registry is read once for all of them.
    pub(crate) async fn seed(&self, settings: &Settings) -> Result<(), AdminError> {
        self.seed_all(&settings.relying_parties).await?;
        self.seed_all(&settings.identity_providers).await
    }

    async fn seed_all<S: Registration>(&self, configured: &[S]) -> Result<(), AdminError> {
        let mut stored = self.list::<S>().await?;
        for settings in configured {
            let held = stored
                .iter()
                .position(|e| e.settings.id() == settings.id())
                .map(|i| stored.swap_remove(i));
            self.seed_one(settings.clone(), held).await?;
        }
        Ok(())
    }

    async fn seed_one<S: Registration>(
        &self,
        settings: S,
        stored: Option<Entry<S>>,
    ) -> Result<(), AdminError> {
        let configured = serde_json::to_value(&settings).unwrap_or_default();
        let written = match stored {
            None => {
                let fields = top_level_keys(&settings);
                let entry = Entry::fresh(settings, Source::Config, CONFIG_ACTOR);
                self.write(entry, None, Change::Added, fields, CONFIG_ACTOR)
                    .await
            }
            Some(stored) => {
                let held = serde_json::to_value(&stored.settings).unwrap_or_default();
                if held == configured {
                    return Ok(());
                }
                if stored.source == Source::Admin {
                    tracing::info!(
                        kind = S::KIND.as_str(),
                        id = settings.id(),
                        "configuration differs from the registry, where an operator changed it: the registry's stands"
                    );
                    return Ok(());
                }
                let fields = changed_keys(&held, &configured);
                let expected = stored.revision;
                let entry = Entry {
                    settings,
                    ..stored.touched(CONFIG_ACTOR)
                };
                self.write(entry, Some(expected), Change::Updated, fields, CONFIG_ACTOR)
                    .await
            }
        };
        match written {
            // Another instance seeded it at the same moment.
            Err(AdminError::Conflict(_)) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
