//! Configuration: the config file (TOML), named profiles (one per store),
//! `SAGASCOPE_*` environment overrides, and the effective settings the
//! command line and the TUI run with.
//!
//! Precedence, highest first: command-line flags, environment variables,
//! the selected profile, the file's top level, built-in defaults — except
//! read-only mode, where the most restrictive source wins (see
//! [`Settings::permit`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{codec::Compression, default_store_url, redact, StoreUrl};

mod runtime;

pub use runtime::{demo_dir, InvalidLockTtl};

/// What can go wrong loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (a file named explicitly must exist).
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or has an unknown key or a value of
    /// the wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, store URLs in it redacted.
        message: String,
    },
    /// The selected profile (`--profile`, `SAGASCOPE_PROFILE` or
    /// `default_profile`) is not in the file.
    #[error("unknown profile {name:?}; profiles in {path}: {known}")]
    UnknownProfile {
        /// The profile asked for.
        name: String,
        /// The config file, or `(no config file)`.
        path: String,
        /// The profiles the file defines, comma-separated (`none` when it has none).
        known: String,
    },
    /// A setting has a value sagascope does not accept.
    #[error("invalid value {value:?} for {name}: {reason}")]
    InvalidValue {
        /// The setting: a key (`compression`) or an environment variable
        /// (`SAGASCOPE_READONLY`).
        name: String,
        /// The value as given.
        value: String,
        /// What is accepted, e.g. `expected none, zstd or gzip`.
        reason: String,
    },
}

/// One named store and how to use it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Store URL (`sqlite:///…`, `postgres://…`, `redis://…`, `s3://…`,
    /// `file:///…`, `memory://`).
    pub store: Option<String>,
    /// Refuse every write through this profile.
    pub readonly: Option<bool>,
    /// Compression for writes in key-value stores: `none`, `zstd`, `gzip`.
    pub compression: Option<String>,
    /// Who replays started through this profile are attributed to.
    pub identity: Option<String>,
}

/// The config file as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Profile used when `--profile` is not given.
    pub default_profile: Option<String>,
    /// Top-level store, readonly, compression and identity (same meaning as
    /// in a profile; a profile's values win).
    #[serde(flatten)]
    pub base: Profile,
    /// Named profiles (`[profiles.NAME]` tables), selected with `--profile`.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// The `[tui]` table.
    #[serde(default)]
    pub tui: TuiConfig,
    /// The `[engine]` table.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The `[log]` table.
    #[serde(default)]
    pub log: LogConfig,
    /// `[compliance]`: sensitive fields, encryption keys, retention, erasure.
    #[serde(default)]
    pub compliance: crate::compliance::ComplianceConfig,
}

/// Terminal UI settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuiConfig {
    /// `dark` (default), `light`, `high-contrast`, or a path to a theme file.
    pub theme: Option<String>,
    /// Key overrides: command name → key (e.g. `"timeline.next" = "n"`).
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Show timestamps in local time instead of UTC.
    pub local_time: Option<bool>,
    /// Seconds between looks for new sagas and snapshots (default 1, 10
    /// on S3; 0 turns live updates off).
    pub live_interval_secs: Option<f64>,
}

/// Where saga definitions (for `run` and real replays) come from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Definition files (TOML).
    #[serde(default)]
    pub definitions: Vec<PathBuf>,
    /// Folders whose `*.toml` files are definitions.
    #[serde(default)]
    pub definitions_dirs: Vec<PathBuf>,
    /// Seconds a replay lock lasts without renewal (a killed process's lock
    /// expires after this).
    pub lock_ttl_secs: Option<u64>,
}

/// Logging (to a file, never the terminal the TUI draws on).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log file; default `<data dir>/sagascope.log`.
    pub file: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug`, `trace` (or an `EnvFilter` string).
    pub level: Option<String>,
}

/// What the command line asked for, before the file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: the file to read instead of `SAGASCOPE_CONFIG` or the default
    /// path; it must exist.
    pub config_file: Option<PathBuf>,
    /// `--profile`: the profile to use, over `SAGASCOPE_PROFILE` and
    /// `default_profile`.
    pub profile: Option<String>,
    /// `--store`: a store URL that wins over every other source.
    pub store: Option<String>,
    /// `--readonly`: refuse every write. `false` does not turn off read-only
    /// mode set elsewhere.
    pub readonly: bool,
}

/// The settings in force.
#[derive(Clone)]
pub struct Settings {
    /// The file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The profile in use; `None` when no profile was selected.
    pub profile: Option<String>,
    /// The store URL in force (the embedded SQLite default when nothing set one).
    pub store: StoreUrl,
    /// Where the store URL came from (flag, env, profile, default).
    pub store_source: &'static str,
    /// Whether writes are refused (see [`Settings::permit`]); set when any source
    /// says so.
    pub readonly: bool,
    /// What set read-only mode (`--readonly`, `SAGASCOPE_READONLY`, a
    /// profile, the config file), for messages.
    pub readonly_source: Option<String>,
    /// Compression for writes in key-value stores (`SAGASCOPE_COMPRESSION`,
    /// the profile's, the file's); `None` when none is configured, so the
    /// store URL's `compression` parameter or the backend's default (sagaz's)
    /// applies.
    pub compression: Option<Compression>,
    /// Who replays are attributed to (`initiated_by`): `SAGASCOPE_IDENTITY`, the
    /// profile's or the file's `identity`, else [`os_user`].
    pub identity: String,
    /// The config file as parsed (empty when none was read).
    pub file: FileConfig,
    /// Set to reveal masked values (`--reveal --reason`): stores opened
    /// from these settings reveal, each saga's reveal audited.
    pub reveal: Option<std::sync::Arc<crate::compliance::RevealAudit>>,
}

/// What an operation does to the store, as read-only mode sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// Only reads (browsing, time travel, diffs, exports to a file).
    Read,
    /// A dry run: executes nothing, but records itself in the replay log
    /// (as sagaz does), so it writes.
    DryRun,
    /// Runs steps or writes snapshots, the replay log, indexes or locks.
    Write,
}

impl StoreAccess {
    fn why_refused(self) -> &'static str {
        match self {
            StoreAccess::DryRun => "writes to the store (a dry run is recorded in the replay log)",
            _ => "writes to the store",
        }
    }
}

/// Read-only mode refused an operation before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "read-only mode (set by {set_by}): {action} {why}; nothing was done",
    why = .access.why_refused()
)]
pub struct ReadOnlyRefusal {
    /// What was refused (`replay run`, `the dry run`…).
    pub action: String,
    /// Whether it was a write or a dry run (reads are never refused).
    pub access: StoreAccess,
    /// What set read-only mode.
    pub set_by: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("config_file", &self.config_file)
            .field("profile", &self.profile)
            .field("store", &self.store)
            .field("readonly", &self.readonly)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The default config file: `<XDG config dir>/sagascope/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "sagascope", "sagascope")
        .map(|d| d.config_dir().join("config.toml"))
}

/// The data directory (embedded store, logs).
pub fn data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "sagascope", "sagascope")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Parses a compression name.
pub fn parse_compression(s: &str) -> Result<Compression, ConfigError> {
    match s.to_ascii_lowercase().as_str() {
        "none" | "off" | "plain" => Ok(Compression::None),
        "zstd" => Ok(Compression::zstd()),
        "gzip" | "gz" => Ok(Compression::gzip()),
        _ => Err(ConfigError::InvalidValue {
            name: "compression".into(),
            value: s.into(),
            reason: "expected none, zstd or gzip".into(),
        }),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_bool(name: &str) -> Result<Option<bool>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::InvalidValue {
                name: name.into(),
                value: v,
                reason: "expected true or false".into(),
            }),
        },
    }
}

/// Reads a config file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses config text (`path` is for messages).
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        // toml's message may quote the offending line, which may hold a
        // password: redact URLs in it.
        message: redact_urls_in(&e.to_string()),
    })
}

/// Redacts every URL-looking word in a message.
pub fn redact_urls_in(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(|w| {
            let trimmed = w.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
            if trimmed.contains("://") {
                format!("{}{}", redact(trimmed), &w[trimmed.len()..])
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// The OS user, for attributing replays when no identity is configured:
/// the login variables first, then (on Unix) the account of the effective
/// user id, which cron jobs, systemd units and containers have even when
/// they set no `$USER`.
pub fn os_user() -> String {
    env("USER")
        .or_else(|| env("USERNAME"))
        .or_else(|| env("LOGNAME"))
        .or_else(account_name)
        .unwrap_or_else(|| "unknown".into())
}

/// The name of the effective user's account, or `uid:N` when the user has
/// no entry in the user database (common in containers).
#[cfg(unix)]
#[allow(unsafe_code)]
fn account_name() -> Option<String> {
    // SAFETY: geteuid cannot fail. getpwuid_r writes only into `pwd` and
    // `buf`, both owned here and sized as passed; `pw_name` points into
    // `buf` and is read before `buf` is dropped.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return Some(format!("uid:{uid}"));
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(not(unix))]
fn account_name() -> Option<String> {
    None
}

impl Settings {
    /// Loads the file (the given one, `SAGASCOPE_CONFIG`, or the default path
    /// if it exists), applies the profile, the environment and the flags.
    pub fn load(o: &Overrides) -> Result<Self, ConfigError> {
        let explicit = o
            .config_file
            .clone()
            .or_else(|| env("SAGASCOPE_CONFIG").map(PathBuf::from));
        let (config_file, file) = match explicit {
            Some(p) => {
                let f = read_file(&p)?;
                (Some(p), f)
            }
            None => match default_config_path().filter(|p| p.exists()) {
                Some(p) => {
                    let f = read_file(&p)?;
                    (Some(p), f)
                }
                None => (None, FileConfig::default()),
            },
        };
        Self::resolve(config_file, file, o)
    }

    /// Applies profile, environment and flags to a parsed file.
    pub fn resolve(
        config_file: Option<PathBuf>,
        file: FileConfig,
        o: &Overrides,
    ) -> Result<Self, ConfigError> {
        let profile_name = o
            .profile
            .clone()
            .or_else(|| env("SAGASCOPE_PROFILE"))
            .or_else(|| file.default_profile.clone());
        let profile = match &profile_name {
            None => Profile::default(),
            Some(name) => {
                file.profiles
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ConfigError::UnknownProfile {
                        name: name.clone(),
                        path: config_file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "(no config file)".into()),
                        known: if file.profiles.is_empty() {
                            "none".into()
                        } else {
                            file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        },
                    })?
            }
        };
        let (store, store_source) = if let Some(s) = &o.store {
            (StoreUrl::new(s.clone()), "--store")
        } else if let Some(s) = env("SAGASCOPE_STORE") {
            (StoreUrl::new(s), "SAGASCOPE_STORE")
        } else if let Some(s) = &profile.store {
            (StoreUrl::new(s.clone()), "profile")
        } else if let Some(s) = &file.base.store {
            (StoreUrl::new(s.clone()), "config file")
        } else {
            (default_store_url(), "default")
        };
        // The most restrictive source wins: `readonly = true` anywhere
        // (flag, environment, selected profile, the file's top level)
        // cannot be turned off by another source saying false.
        let env_readonly = env_bool("SAGASCOPE_READONLY")?;
        let readonly_source = [
            (o.readonly, "--readonly".to_string()),
            (env_readonly == Some(true), "SAGASCOPE_READONLY".to_string()),
            (
                profile.readonly == Some(true),
                format!("profile {:?}", profile_name.as_deref().unwrap_or_default()),
            ),
            (
                file.base.readonly == Some(true),
                "`readonly = true` in the config file".to_string(),
            ),
        ]
        .into_iter()
        .find_map(|(set, source)| set.then_some(source));
        let readonly = readonly_source.is_some();
        let compression = env("SAGASCOPE_COMPRESSION")
            .or_else(|| profile.compression.clone())
            .or_else(|| file.base.compression.clone())
            .map(|c| parse_compression(&c))
            .transpose()?;
        let identity = env("SAGASCOPE_IDENTITY")
            .or_else(|| profile.identity.clone())
            .or_else(|| file.base.identity.clone())
            .unwrap_or_else(os_user);
        Ok(Settings {
            config_file,
            profile: profile_name,
            store,
            store_source,
            readonly,
            readonly_source,
            compression,
            identity,
            file,
            reveal: None,
        })
    }

    /// Whether an operation may run: read-only mode refuses every write,
    /// dry runs included (they write the replay log), before anything
    /// runs. The command line and the TUI both ask here, so they refuse
    /// the same things with the same message.
    pub fn permit(&self, access: StoreAccess, action: &str) -> Result<(), ReadOnlyRefusal> {
        match (&self.readonly_source, access) {
            (None, _) | (Some(_), StoreAccess::Read) => Ok(()),
            (Some(source), access) => Err(ReadOnlyRefusal {
                action: action.to_string(),
                access,
                set_by: source.clone(),
            }),
        }
    }

    /// Whether a missing SQLite file or store folder is an error rather
    /// than created: for commands that only read, unless the store is the
    /// embedded default (nothing was mistyped; a first run starts empty).
    pub fn store_must_exist(&self, access: StoreAccess) -> bool {
        access == StoreAccess::Read && self.store_source != "default"
    }

    /// The effective configuration as TOML, every store URL redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut file = self.file.clone();
        let red = |p: &mut Profile| {
            if let Some(s) = &p.store {
                p.store = Some(redact(s));
            }
        };
        red(&mut file.base);
        for p in file.profiles.values_mut() {
            red(p);
        }
        let mut out = String::new();
        out.push_str("# Effective settings (secrets redacted)\n");
        out.push_str(&format!(
            "# config file: {}\n",
            self.config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ));
        out.push_str(&format!(
            "# profile:     {}\n",
            self.profile.as_deref().unwrap_or("none")
        ));
        out.push_str(&format!(
            "# store:       {} (from {})\n",
            self.store.redacted(),
            self.store_source
        ));
        out.push_str(&format!(
            "# readonly:    {}{}\n",
            self.readonly,
            self.readonly_source
                .as_ref()
                .map(|s| format!(" (from {s})"))
                .unwrap_or_default()
        ));
        out.push_str(&format!("# identity:    {}\n\n", self.identity));
        out.push_str(&toml::to_string_pretty(&file).unwrap_or_default());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_parses() {
        let text = include_str!("../../config.example.toml");
        let f = parse(text, Path::new("config.example.toml")).unwrap();
        assert!(!f.profiles.is_empty());
    }

    #[test]
    fn flag_beats_profile_beats_top_level() {
        let f = parse(
            r#"
            default_profile = "prod"
            store = "sqlite:///tmp/top.db"
            identity = "top"
            [profiles.prod]
            store = "postgres://app:hunter2@db/sagas"
            readonly = true
            "#,
            Path::new("x"),
        )
        .unwrap();
        let s = Settings::resolve(None, f.clone(), &Overrides::default()).unwrap();
        assert_eq!(s.store.expose(), "postgres://app:hunter2@db/sagas");
        assert!(s.readonly);
        assert_eq!(s.identity, "top");
        let shown = s.to_redacted_toml() + &format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let s = Settings::resolve(
            None,
            f.clone(),
            &Overrides {
                store: Some("memory://".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.store.expose(), "memory://");
        let err = Settings::resolve(
            None,
            f,
            &Overrides {
                profile: Some("nope".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("prod"), "{err}");
    }

    #[test]
    fn readonly_from_any_source_cannot_be_turned_off_by_another() {
        let f = parse(
            r#"
            readonly = true
            [profiles.rw]
            store = "memory://"
            readonly = false
            [profiles.ro]
            store = "memory://"
            readonly = true
            "#,
            Path::new("x"),
        )
        .unwrap();
        // The file's top level says true; a profile saying false loses.
        let s = Settings::resolve(
            None,
            f.clone(),
            &Overrides {
                profile: Some("rw".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert!(s.readonly);
        let refused = s.permit(StoreAccess::Write, "`run`").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "read-only mode (set by `readonly = true` in the config file): `run` writes to the store; nothing was done"
        );
        assert!(s.permit(StoreAccess::DryRun, "x").is_err());
        assert!(s.permit(StoreAccess::Read, "x").is_ok());
        let mut base_rw = f.clone();
        base_rw.base.readonly = Some(false);
        let s = Settings::resolve(
            None,
            base_rw.clone(),
            &Overrides {
                profile: Some("ro".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.readonly_source.as_deref(), Some("profile \"ro\""));
        let s = Settings::resolve(
            None,
            base_rw,
            &Overrides {
                profile: Some("rw".into()),
                readonly: true,
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.readonly_source.as_deref(), Some("--readonly"));
    }

    #[test]
    fn parse_errors_do_not_leak_passwords() {
        let e = parse(
            "store = \"postgres://u:hunter2@h/db\"\nbogus = 1\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
