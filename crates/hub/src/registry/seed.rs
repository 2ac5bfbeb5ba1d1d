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
    pub(crate) async fn seed(&self, settings: &Settings) -> Result<(), AdminError> {
        for rp in &settings.relying_parties {
            self.seed_one(rp.clone()).await?;
        }
        for idp in &settings.identity_providers {
            self.seed_one(idp.clone()).await?;
        }
        Ok(())
    }

    async fn seed_one<S: Registration>(&self, settings: S) -> Result<(), AdminError> {
        let configured = serde_json::to_value(&settings).unwrap_or_default();
        let written = match self.find::<S>(settings.id()).await? {
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
