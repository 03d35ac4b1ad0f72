//! Which remote to use and its options, read as DVC reads them: the system, global, repo
//! (`.dvc/config`) and local (`.dvc/config.local`) files, each later one overriding keys of
//! the earlier ones; `core.remote` names the default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RemoteError;
use super::ini::Ini;

/// One remote's settings after merging every config level.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    pub name: String,
    pub url: String,
    /// Every option but `url`, with the folder of the file that set it: DVC reads relative
    /// paths (`credentialpath`, `configpath`) from there.
    pub options: BTreeMap<String, (String, PathBuf)>,
}

impl RemoteConfig {
    /// The value of an option, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(|(v, _)| v.as_str())
    }

    /// A path option, relative paths taken from the folder of the file that set it.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.options.get(key).map(|(v, base)| base.join(v))
    }
}

/// The config files, lowest precedence first.
fn files(root: &Path) -> Vec<PathBuf> {
    let env_dir = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let system = env_dir("DVC_SYSTEM_CONFIG_DIR").unwrap_or_else(|| {
        let dirs = std::env::var("XDG_CONFIG_DIRS").ok().filter(|v| !v.is_empty());
        let first = dirs.as_deref().and_then(|d| d.split(':').next()).unwrap_or("/etc/xdg");
        Path::new(first).join("dvc")
    });
    let global = env_dir("DVC_GLOBAL_CONFIG_DIR").or_else(|| {
        env_dir("XDG_CONFIG_HOME").or_else(|| env_dir("HOME").map(|h| h.join(".config"))).map(|c| c.join("dvc"))
    });
    let dvc = root.join(".dvc");
    [
        Some(system.join("config")),
        global.map(|g| g.join("config")),
        Some(dvc.join("config")),
        Some(dvc.join("config.local")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The remote called `name`, or the default one (`core.remote`).
pub fn remote(root: &Path, name: Option<&str>) -> Result<RemoteConfig, RemoteError> {
    let loaded = files(root).into_iter().map(|f| Ini::load(&f).map(|ini| (f, ini))).collect::<Result<Vec<_>, _>>()?;
    let repo_config = root.join(".dvc").join("config");
    let name = match name {
        Some(n) => n.to_owned(),
        None => loaded
            .iter()
            .rev()
            .find_map(|(_, ini)| ini.get("core", "remote"))
            .ok_or(RemoteError::NoRemote { config: repo_config.clone() })?
            .to_owned(),
    };
    let section = format!("remote \"{name}\"");
    let mut options = BTreeMap::new();
    let mut found = false;
    for (file, ini) in &loaded {
        let Some(entries) = ini.section(&section) else { continue };
        found = true;
        let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        for e in entries {
            options.insert(e.key.clone(), (e.value.clone(), base.clone()));
        }
    }
    if !found {
        return Err(RemoteError::UnknownRemote { name, config: repo_config });
    }
    let (url, _) = options.remove("url").ok_or_else(|| RemoteError::NoUrl { remote: name.clone() })?;
    Ok(RemoteConfig { name, url, options })
}
