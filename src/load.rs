//! The one loader of the configuration, above both `config` and `compat`:
//! a TOML file is this service's own settings; a YAML file in imaginator
//! 2018's schema turns on the compat profile, and gives both the native
//! settings it implies and the compat front end's part. `IMAGINATOR_*`
//! variables go over either; the result is validated once.

use crate::compat::Compat;
use crate::config::{ConfigError, OriginalSigning, Settings};
use std::path::Path;
use std::sync::Arc;

/// The loaded configuration.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// The compat profile's part, when a YAML file was read.
    pub compat: Option<Arc<Compat>>,
    /// For the start-up log: variables that name no setting, keys of the
    /// original's file this service ignores.
    pub warnings: Vec<String>,
}

/// Loads `file` (or `$IMAGINATOR_CONFIG`) and the environment `env`.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = env.into_iter().collect();
    let Some(path) = crate::config::file_of(file, &env).filter(|p| crate::compat::config::is_yaml(p)) else {
        let (settings, warnings) = Settings::load(file, env)?;
        return Ok(Loaded {
            settings,
            compat: None,
            warnings,
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let loaded = crate::compat::config::load(&text).map_err(|message| ConfigError::File {
        path: path.clone(),
        message,
    })?;
    let signing = OriginalSigning {
        secret: loaded.compat.secret.clone(),
        required: loaded.compat.require_signature,
    };
    let (settings, mut warnings) = Settings::from_tree(toml::Value::Table(loaded.tree), &env, Some(signing))?;
    warnings.extend(loaded.warnings);
    Ok(Loaded {
        settings,
        compat: Some(Arc::new(loaded.compat)),
        warnings,
    })
}

impl Loaded {
    /// `--print-config`: the effective settings as TOML, secrets masked, the
    /// compat profile's part summarised on top.
    pub fn to_toml(&self) -> String {
        let mut text = self.settings.to_toml();
        if let Some(c) = &self.compat {
            text.insert_str(
                0,
                &format!(
                    "# compat profile (imaginator 2018 YAML): {} alias(es), named caches [{}], secret {}, \
                     require_signature = {}\n",
                    c.aliases.len(),
                    c.caches.keys().cloned().collect::<Vec<_>>().join(", "),
                    if c.secret.is_some() { "set" } else { "not set" },
                    c.require_signature
                ),
            );
        }
        text
    }
}
