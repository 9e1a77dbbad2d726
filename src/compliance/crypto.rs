//! Field encryption: AES-256-GCM per value, data keys wrapped by master
//! keys (file, environment variable, AWS KMS).
//!
//! Formats (stable; sagaz reads them as ordinary JSON):
//! - an encrypted value: `{"$enc": "aes-256-gcm", "kid": "<data key id>",
//!   "iv": "<base64, 12 bytes>", "ct": "<base64 ciphertext and tag>"}`,
//!   the plaintext being the value's JSON; associated data
//!   `sagascope-field/1\0<saga id>\0<path>\0<data key id>`;
//! - the data keys a snapshot's values use, in its extra field
//!   `sagascope_keys`: `{"<data key id>": {"master": "<master key id>",
//!   "wrapped": "<base64>"}}`; data key ids are `dk-` and 16 hex digits.
//!
//! A replay log's `context_override` is protected the same way, its saga id
//! being the log's `original_saga_id` and its data keys in the log's own
//! extra field `sagascope_keys`.
//!
//! A local master key ([`LocalKey`]) wraps a data key as `<12-byte nonce>
//! <ciphertext and tag>` (AES-256-GCM, associated data
//! `sagascope-dek/1\0<data key id>`), so a wrapped key moved to another data
//! key id does not open.
//!
//! What a key rotation builds on ([`Encryptor::rewrap_snapshot`],
//! [`Encryptor::reencrypt_snapshot`], [`masters_of`], [`needs_encryption`]):
//! re-wrapping changes only `sagascope_keys` (a data key keeps its id, so
//! the values stay as they are); re-encrypting decrypts every value and
//! encrypts it again under this process's data key of the target master.
//! Both are idempotent, so a run killed midway is finished by running it
//! again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::paths::{self, PathSeg};
use super::{ComplianceError, EncryptionConfig, MasterKeyConfig, PathPattern};
use crate::model::{ReplayLog, Snapshot};

/// The value of `$enc` in an encrypted value.
pub const ALGORITHM: &str = "aes-256-gcm";
/// The extra field holding the data keys a record's values use.
pub const KEYS_FIELD: &str = "sagascope_keys";
/// What the associated data of a value starts with.
const FIELD_AAD: &str = "sagascope-field/1";
/// What the associated data of a wrapped data key starts with.
const DEK_AAD: &str = "sagascope-dek/1";
const NONCE_LEN: usize = 12;

/// A key that wraps and unwraps data keys: a local 32-byte key (file or
/// environment variable) or an AWS KMS key.
#[async_trait]
pub trait MasterKey: Send + Sync + std::fmt::Debug {
    /// The id the config gives it (`[compliance.encryption.keys.<id>]`).
    fn id(&self) -> &str;
    /// Wraps a data key; `dek_id` is bound to the result.
    async fn wrap(&self, dek: &[u8; 32], dek_id: &str) -> Result<Vec<u8>, ComplianceError>;
    /// Unwraps what [`MasterKey::wrap`] made for `dek_id`; an error naming
    /// this key's id when it does not open it.
    async fn unwrap(&self, wrapped: &[u8], dek_id: &str) -> Result<[u8; 32], ComplianceError>;
}

/// A master key held locally: 32 bytes read from a file or an environment
/// variable, written as 64 hex digits or base64 (`openssl rand -hex 32`).
pub struct LocalKey {
    id: String,
    /// Where it was read from, for messages (never the key).
    source: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Where the key is, never the key.
        f.debug_struct("LocalKey")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl LocalKey {
    /// Reads the key of id `id` from the file at `path`.
    pub fn from_file(id: &str, path: &Path) -> Result<Self, ComplianceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ComplianceError::Key {
            key_id: id.to_string(),
            message: format!(
                "cannot read the key file {}: {e} (write 32 random bytes there as hex: \
                 `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            ),
        })?;
        Self::from_text(id, &text, format!("file {}", path.display()))
    }

    /// Reads the key of id `id` from the environment variable `var`.
    pub fn from_env(id: &str, var: &str) -> Result<Self, ComplianceError> {
        let text = std::env::var(var).map_err(|e| ComplianceError::Key {
            key_id: id.to_string(),
            message: match e {
                std::env::VarError::NotPresent => format!(
                    "the environment variable {var} is not set (export {var}=$(openssl rand \
                     -hex 32))"
                ),
                std::env::VarError::NotUnicode(_) => {
                    format!("the environment variable {var} is not text")
                }
            },
        })?;
        Self::from_text(id, &text, format!("environment variable {var}"))
    }

    /// The key written as 64 hex digits or base64 in `text`; `source` says
    /// where it came from, for messages.
    pub fn from_text(id: &str, text: &str, source: String) -> Result<Self, ComplianceError> {
        let bytes = parse_key_text(text.trim()).map_err(|what| ComplianceError::Key {
            key_id: id.to_string(),
            message: format!(
                "the {source} holds {what}; a master key is 32 bytes written as 64 hex digits \
                 or base64 (`openssl rand -hex 32`)"
            ),
        })?;
        Ok(Self::from_bytes(id, &bytes, source))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(id: &str, key: &[u8; 32], source: String) -> Self {
        LocalKey {
            id: id.to_string(),
            source,
            cipher: Aes256Gcm::new(key.into()),
        }
    }
}

/// 32 bytes from 64 hex digits or base64; otherwise what the text holds.
fn parse_key_text(t: &str) -> Result<[u8; 32], String> {
    if t.is_empty() {
        return Err("nothing".into());
    }
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| "bad hex")?;
        }
        return Ok(out);
    }
    let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok());
    match decoded {
        Some(b) => <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
            if t.bytes().all(|c| c.is_ascii_hexdigit()) {
                format!("{} hex digits", t.len())
            } else {
                format!("{} bytes (base64)", b.len())
            }
        }),
        None if t.bytes().all(|c| c.is_ascii_hexdigit()) => Err(format!("{} hex digits", t.len())),
        None => Err(format!(
            "{} characters that are neither hex nor base64",
            t.chars().count()
        )),
    }
}

#[async_trait]
impl MasterKey for LocalKey {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, dek: &[u8; 32], dek_id: &str) -> Result<Vec<u8>, ComplianceError> {
        let nonce = random_nonce();
        let aad = format!("{DEK_AAD}\0{dek_id}");
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: dek,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ComplianceError::Key {
                key_id: self.id.clone(),
                message: format!("could not wrap data key {dek_id}"),
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    async fn unwrap(&self, wrapped: &[u8], dek_id: &str) -> Result<[u8; 32], ComplianceError> {
        let fail = |why: &str| ComplianceError::Key {
            key_id: self.id.clone(),
            message: format!(
                "does not open data key {dek_id}{why}: wrong key? (the key in the {} is not \
                 the one the data was encrypted under)",
                self.source
            ),
        };
        if wrapped.len() <= NONCE_LEN {
            return Err(fail(" (the wrapped key is truncated)"));
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| fail(" (truncated)"))?;
        let aad = format!("{DEK_AAD}\0{dek_id}");
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| fail(""))?;
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| fail(" (not a 32-byte key)"))
    }
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut n);
    n
}

/// An unwrapped data key's cache key: its master key id and wrapped bytes.
type OpenedKey = (String, Vec<u8>);

/// A data key of this process: generated once per master, wrapped once.
struct DataKey {
    id: String,
    master: String,
    wrapped: Vec<u8>,
    cipher: Aes256Gcm,
}

/// Encrypts and decrypts sensitive values.
///
/// Holds every configured master key, and the master new values go under
/// (the config's `key`). One data key per master per process, made the
/// first time it is needed; unwrapped data keys are cached, so a master key
/// (a KMS call) is asked once per data key.
pub struct Encryptor {
    masters: BTreeMap<String, Arc<dyn MasterKey>>,
    current: Option<String>,
    /// This process's data key per master id.
    own: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<DataKey>>>>>,
    /// Unwrapped data keys by (master id, wrapped bytes).
    opened: Mutex<HashMap<OpenedKey, Arc<Aes256Gcm>>>,
    /// Re-wrapped data keys by (data key id, target master id).
    rewrapped: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Master keys say where they are; data keys are never shown.
        f.debug_struct("Encryptor")
            .field("current", &self.current)
            .field("masters", &self.masters.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What to do with one `$enc` leaf found by a walk.
enum Opened {
    /// Its master key is configured and opened its data key.
    Key(Arc<Aes256Gcm>),
    /// Its master key is not configured here: left as it is.
    NotConfigured,
}

impl Encryptor {
    /// `None` when no key is configured. Opens every key file and variable
    /// and connects to KMS for every `kms://` key, so a missing or bad key
    /// is an error now, naming its id.
    pub async fn from_config(cfg: &EncryptionConfig) -> Result<Option<Self>, ComplianceError> {
        if cfg.keys.is_empty() && cfg.key.is_none() {
            return Ok(None);
        }
        let mut masters: Vec<Arc<dyn MasterKey>> = Vec::new();
        for (id, k) in &cfg.keys {
            masters.push(open_master(id, k).await?);
        }
        if let Some(cur) = &cfg.key {
            if !cfg.keys.contains_key(cur) {
                return Err(ComplianceError::Config(format!(
                    "encryption.key = {cur:?} names no key; add [compliance.encryption.keys.{cur}] \
                     with file = \"…\", env = \"…\" or kms = \"kms://…\" (configured: {})",
                    list_or_none(cfg.keys.keys())
                )));
            }
        }
        Ok(Some(Self::new(masters, cfg.key.clone())?))
    }

    /// An encryptor over `masters`, new values going under `current`.
    pub fn new(
        masters: Vec<Arc<dyn MasterKey>>,
        current: Option<String>,
    ) -> Result<Self, ComplianceError> {
        let masters: BTreeMap<String, Arc<dyn MasterKey>> = masters
            .into_iter()
            .map(|m| (m.id().to_string(), m))
            .collect();
        if let Some(cur) = &current {
            if !masters.contains_key(cur) {
                return Err(ComplianceError::Config(format!(
                    "encryption.key = {cur:?} names no configured key"
                )));
            }
        }
        Ok(Encryptor {
            masters,
            current,
            own: Mutex::default(),
            opened: Mutex::default(),
            rewrapped: Mutex::default(),
        })
    }

    /// The id of the master key new values are encrypted under; `None`:
    /// values are written in clear.
    pub fn current_master(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The ids of every configured master key.
    pub fn master_ids(&self) -> impl Iterator<Item = &str> {
        self.masters.keys().map(String::as_str)
    }

    /// The configured master key `id`.
    pub fn master(&self, id: &str) -> Option<&Arc<dyn MasterKey>> {
        self.masters.get(id)
    }

    fn master_or_err(&self, id: &str, what: &str) -> Result<&Arc<dyn MasterKey>, ComplianceError> {
        self.masters.get(id).ok_or_else(|| ComplianceError::Key {
            key_id: id.to_string(),
            message: format!(
                "{what}, but no master key of that id is configured (add \
                 [compliance.encryption.keys.{id}]; configured: {})",
                list_or_none(self.masters.keys())
            ),
        })
    }

    /// This process's data key under master `master`, made and wrapped the
    /// first time.
    async fn own_key(&self, master: &str) -> Result<Arc<DataKey>, ComplianceError> {
        let m = self
            .master_or_err(master, "new values are to be encrypted under it")?
            .clone();
        let cell = {
            let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
            own.entry(master.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let mut key = [0u8; 32];
            OsRng.fill_bytes(&mut key);
            let mut idb = [0u8; 8];
            OsRng.fill_bytes(&mut idb);
            let id = format!("dk-{:016x}", u64::from_be_bytes(idb));
            let wrapped = m.wrap(&key, &id).await?;
            let cipher = Aes256Gcm::new((&key).into());
            self.remember_opened(master, &wrapped, Arc::new(cipher.clone()));
            Ok(Arc::new(DataKey {
                id,
                master: master.to_string(),
                wrapped,
                cipher,
            }))
        })
        .await
        .cloned()
    }

    fn remember_opened(&self, master: &str, wrapped: &[u8], c: Arc<Aes256Gcm>) {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((master.to_string(), wrapped.to_vec()), c);
    }

    /// Unwraps data key `dek_id` (cached): its master key must be
    /// configured.
    async fn open_key(
        &self,
        dek_id: &str,
        entry: &KeyEntry,
    ) -> Result<Option<Arc<Aes256Gcm>>, ComplianceError> {
        let Some(m) = self.masters.get(&entry.master) else {
            return Ok(None);
        };
        let cache_key = (entry.master.clone(), entry.wrapped.clone());
        if let Some(c) = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            return Ok(Some(c.clone()));
        }
        let key = m.unwrap(&entry.wrapped, dek_id).await?;
        let c = Arc::new(Aes256Gcm::new((&key).into()));
        self.remember_opened(&entry.master, &entry.wrapped, c.clone());
        Ok(Some(c))
    }

    /// Encrypts every value `patterns` cover that is not encrypted yet
    /// (values already `{"$enc": …}` or `{"$erased": …}` are left), under
    /// this process's data key of the current master, which is added to
    /// `extra.sagascope_keys`. Without a current master, nothing changes.
    pub async fn encrypt_snapshot<'p>(
        &self,
        s: &mut Snapshot,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
    ) -> Result<(), ComplianceError> {
        let Some(cur) = self.current.clone() else {
            return Ok(());
        };
        self.encrypt_fields(&s.saga_id, &mut s.context, &mut s.extra, patterns, &cur)
            .await
    }

    /// Decrypts every ciphertext whose master key is configured; leaves the
    /// others (shown as 🔒). A master key that does not open its data key is
    /// an error naming the key id; a value that does not decrypt (moved from
    /// another field or saga, or altered) is an error naming the saga and
    /// the path. `extra` is left as it is.
    pub async fn decrypt_snapshot(&self, s: &mut Snapshot) -> Result<(), ComplianceError> {
        self.decrypt_fields(&s.saga_id, &mut s.context, &s.extra)
            .await
            .map_err(|e| in_record(e, &format!("snapshot {}", s.snapshot_id)))
    }

    /// Re-wraps every data key `s` lists under master `to` (values are
    /// untouched: a data key keeps its id). The old master of each must be
    /// configured. Idempotent.
    pub async fn rewrap_snapshot(&self, s: &mut Snapshot, to: &str) -> Result<(), ComplianceError> {
        self.rewrap_keys(&mut s.extra, to)
            .await
            .map_err(|e| in_record(e, &format!("snapshot {}", s.snapshot_id)))
    }

    /// Decrypts every value of `s` and encrypts those `patterns` cover
    /// under this process's data key of the current master (a key made by
    /// this process, so no value stays under an older data key); the data
    /// keys no longer used leave `extra.sagascope_keys`. Without a current
    /// master the values are left in clear.
    pub async fn reencrypt_snapshot<'p>(
        &self,
        s: &mut Snapshot,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
    ) -> Result<(), ComplianceError> {
        match self.current.clone() {
            Some(cur) => self.reencrypt_snapshot_under(s, patterns, &cur).await,
            None => {
                self.decrypt_all(&s.saga_id, &mut s.context, &s.extra)
                    .await
                    .map_err(|e| in_record(e, &format!("snapshot {}", s.snapshot_id)))?;
                prune_keys(&s.context, &mut s.extra);
                Ok(())
            }
        }
    }

    /// [`Encryptor::reencrypt_snapshot`] under master `to` rather than the
    /// current one.
    pub async fn reencrypt_snapshot_under<'p>(
        &self,
        s: &mut Snapshot,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
        to: &str,
    ) -> Result<(), ComplianceError> {
        let rec = format!("snapshot {}", s.snapshot_id);
        self.decrypt_all(&s.saga_id, &mut s.context, &s.extra)
            .await
            .map_err(|e| in_record(e, &rec))?;
        self.encrypt_fields(&s.saga_id, &mut s.context, &mut s.extra, patterns, to)
            .await
    }

    /// Encrypts the leaves of a replay log's `context_override` that
    /// `patterns` cover (associated data: the log's `original_saga_id`),
    /// the data key going into the log's extra `sagascope_keys`.
    pub async fn encrypt_replay<'p>(
        &self,
        log: &mut ReplayLog,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
    ) -> Result<(), ComplianceError> {
        let Some(cur) = self.current.clone() else {
            return Ok(());
        };
        let Some(Value::Object(ov)) = &mut log.context_override else {
            return Ok(());
        };
        self.encrypt_fields(&log.original_saga_id, ov, &mut log.extra, patterns, &cur)
            .await
    }

    /// Decrypts a replay log's `context_override`, as
    /// [`Encryptor::decrypt_snapshot`] does a snapshot's context.
    pub async fn decrypt_replay(&self, log: &mut ReplayLog) -> Result<(), ComplianceError> {
        let Some(Value::Object(ov)) = &mut log.context_override else {
            return Ok(());
        };
        self.decrypt_fields(&log.original_saga_id, ov, &log.extra)
            .await
            .map_err(|e| in_record(e, &format!("replay {}", log.replay_id)))
    }

    /// Re-wraps a replay log's data keys under master `to`.
    pub async fn rewrap_replay(
        &self,
        log: &mut ReplayLog,
        to: &str,
    ) -> Result<(), ComplianceError> {
        self.rewrap_keys(&mut log.extra, to)
            .await
            .map_err(|e| in_record(e, &format!("replay {}", log.replay_id)))
    }

    /// Re-encrypts a replay log's override under the current master (see
    /// [`Encryptor::reencrypt_snapshot`]).
    pub async fn reencrypt_replay<'p>(
        &self,
        log: &mut ReplayLog,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
    ) -> Result<(), ComplianceError> {
        let rec = format!("replay {}", log.replay_id);
        let Some(Value::Object(ov)) = &mut log.context_override else {
            return Ok(());
        };
        self.decrypt_all(&log.original_saga_id, ov, &log.extra)
            .await
            .map_err(|e| in_record(e, &rec))?;
        match self.current.clone() {
            Some(cur) => {
                self.encrypt_fields(&log.original_saga_id, ov, &mut log.extra, patterns, &cur)
                    .await
            }
            None => {
                prune_keys(ov, &mut log.extra);
                Ok(())
            }
        }
    }

    /// Encrypts the clear leaves of `ctx` that `patterns` cover under this
    /// process's data key of master `master`, recording it in `extra`;
    /// drops from `extra` the data keys no value uses any more.
    pub async fn encrypt_fields<'p>(
        &self,
        saga_id: &str,
        ctx: &mut Map<String, Value>,
        extra: &mut Map<String, Value>,
        patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
        master: &str,
    ) -> Result<(), ComplianceError> {
        if needs_encryption_in(ctx, patterns.clone()) {
            let dk = self.own_key(master).await?;
            let mut failed = None;
            paths::visit_matching_mut(ctx, patterns, &mut |path, v| {
                if failed.is_some() || paths::is_opaque(v) {
                    return;
                }
                match seal(&dk, saga_id, path, v) {
                    Ok(sealed) => *v = sealed,
                    Err(e) => failed = Some(e),
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            let keys = keys_mut(extra);
            keys.insert(
                dk.id.clone(),
                json!({"master": dk.master, "wrapped": STANDARD.encode(&dk.wrapped)}),
            );
        }
        prune_keys(ctx, extra);
        Ok(())
    }

    /// Decrypts the `$enc` leaves of `ctx` whose master key is configured
    /// (see [`Encryptor::decrypt_snapshot`]).
    pub async fn decrypt_fields(
        &self,
        saga_id: &str,
        ctx: &mut Map<String, Value>,
        extra: &Map<String, Value>,
    ) -> Result<(), ComplianceError> {
        self.decrypt_inner(saga_id, ctx, extra, false).await
    }

    /// Decrypts every `$enc` leaf; one whose master key is not configured
    /// is an error (a re-encryption must not leave it behind).
    async fn decrypt_all(
        &self,
        saga_id: &str,
        ctx: &mut Map<String, Value>,
        extra: &Map<String, Value>,
    ) -> Result<(), ComplianceError> {
        self.decrypt_inner(saga_id, ctx, extra, true).await
    }

    async fn decrypt_inner(
        &self,
        saga_id: &str,
        ctx: &mut Map<String, Value>,
        extra: &Map<String, Value>,
        require_all: bool,
    ) -> Result<(), ComplianceError> {
        let used = data_key_ids(ctx);
        if used.is_empty() {
            return Ok(());
        }
        let entries = key_entries(extra)?;
        let mut keys: HashMap<String, Opened> = HashMap::new();
        for kid in used {
            let Some(entry) = entries.get(&kid) else {
                return Err(ComplianceError::Key {
                    key_id: kid.clone(),
                    message: format!(
                        "saga {saga_id} has values encrypted under data key {kid}, which its \
                         {KEYS_FIELD} field does not list (the value was copied from another \
                         record, or the field was removed)"
                    ),
                });
            };
            let opened = match self.open_key(&kid, entry).await? {
                Some(c) => Opened::Key(c),
                None if require_all => {
                    return Err(ComplianceError::Key {
                        key_id: entry.master.clone(),
                        message: format!(
                            "saga {saga_id} has values under data key {kid} of master key {}, \
                             which is not configured here; configure it to decrypt them",
                            entry.master
                        ),
                    })
                }
                None => Opened::NotConfigured,
            };
            keys.insert(kid, opened);
        }
        let mut failed = None;
        paths::visit_leaves_mut(ctx, &mut |path, v| {
            if failed.is_some() {
                return;
            }
            let Some(kid) = enc_kid(v) else { return };
            match keys.get(kid) {
                Some(Opened::Key(c)) => match open(c, saga_id, path, v) {
                    Ok(plain) => *v = plain,
                    Err(e) => failed = Some(e),
                },
                Some(Opened::NotConfigured) | None => {}
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Re-wraps every data key listed in `extra` under master `to`.
    pub async fn rewrap_keys(
        &self,
        extra: &mut Map<String, Value>,
        to: &str,
    ) -> Result<(), ComplianceError> {
        let target = self
            .master_or_err(to, "data keys are to be re-wrapped under it")?
            .clone();
        let entries = key_entries(extra)?;
        let mut out = Map::new();
        for (kid, entry) in entries {
            if entry.master == to {
                out.insert(kid, entry.to_json());
                continue;
            }
            let cached = self
                .rewrapped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(kid.clone(), to.to_string()))
                .cloned();
            let wrapped = match cached {
                Some(w) => w,
                None => {
                    let from = self.master_or_err(
                        &entry.master,
                        &format!("data key {kid} is wrapped under it"),
                    )?;
                    let key = from.unwrap(&entry.wrapped, &kid).await?;
                    let w = target.wrap(&key, &kid).await?;
                    self.remember_opened(to, &w, Arc::new(Aes256Gcm::new((&key).into())));
                    self.rewrapped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert((kid.clone(), to.to_string()), w.clone());
                    w
                }
            };
            let e = KeyEntry {
                master: to.to_string(),
                wrapped,
            };
            out.insert(kid, e.to_json());
        }
        if !out.is_empty() {
            extra.insert(KEYS_FIELD.into(), Value::Object(out));
        }
        Ok(())
    }
}

/// Opens the master key `id` as configured.
async fn open_master(id: &str, k: &MasterKeyConfig) -> Result<Arc<dyn MasterKey>, ComplianceError> {
    match (&k.file, &k.env, &k.kms) {
        (Some(path), None, None) => Ok(Arc::new(LocalKey::from_file(id, path)?)),
        (None, Some(var), None) => Ok(Arc::new(LocalKey::from_env(id, var)?)),
        (None, None, Some(url)) => open_kms(id, url).await,
        _ => Err(ComplianceError::Config(format!(
            "[compliance.encryption.keys.{id}] needs exactly one of file = \"/path\", env = \
             \"VAR\" or kms = \"kms://key-id\""
        ))),
    }
}

#[cfg(feature = "kms")]
async fn open_kms(id: &str, url: &str) -> Result<Arc<dyn MasterKey>, ComplianceError> {
    Ok(Arc::new(super::kms::KmsKey::connect(id, url).await?))
}

#[cfg(not(feature = "kms"))]
async fn open_kms(id: &str, url: &str) -> Result<Arc<dyn MasterKey>, ComplianceError> {
    Err(ComplianceError::Key {
        key_id: id.to_string(),
        message: format!(
            "{url} is an AWS KMS key, and this build has no KMS support (build with the `kms` \
             feature)"
        ),
    })
}

fn list_or_none<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = ids.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Says which record an error is about, for errors that do not already.
fn in_record(e: ComplianceError, record: &str) -> ComplianceError {
    match e {
        ComplianceError::Key { key_id, message } => ComplianceError::Key {
            key_id,
            message: format!("{message} (reading {record})"),
        },
        other => other,
    }
}

/// One entry of `sagascope_keys`.
struct KeyEntry {
    master: String,
    wrapped: Vec<u8>,
}

impl KeyEntry {
    fn to_json(&self) -> Value {
        json!({"master": self.master, "wrapped": STANDARD.encode(&self.wrapped)})
    }
}

/// The entries of `extra.sagascope_keys` by data key id.
fn key_entries(extra: &Map<String, Value>) -> Result<BTreeMap<String, KeyEntry>, ComplianceError> {
    let mut out = BTreeMap::new();
    let Some(keys) = extra.get(KEYS_FIELD) else {
        return Ok(out);
    };
    let Value::Object(keys) = keys else {
        return Err(ComplianceError::Refused(format!(
            "the {KEYS_FIELD} field is not an object"
        )));
    };
    for (kid, e) in keys {
        let bad = |what: &str| ComplianceError::Key {
            key_id: kid.clone(),
            message: format!("its entry in {KEYS_FIELD} {what}"),
        };
        let master = e
            .get("master")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("has no master key id"))?;
        let wrapped = e
            .get("wrapped")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("has no wrapped key"))?;
        let wrapped = STANDARD
            .decode(wrapped)
            .map_err(|_| bad("has a wrapped key that is not base64"))?;
        out.insert(
            kid.clone(),
            KeyEntry {
                master: master.to_string(),
                wrapped,
            },
        );
    }
    Ok(out)
}

fn keys_mut(extra: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = extra
        .entry(KEYS_FIELD)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Drops from `extra.sagascope_keys` the data keys no value of `ctx` uses
/// (and the field itself once empty).
fn prune_keys(ctx: &Map<String, Value>, extra: &mut Map<String, Value>) {
    let Some(Value::Object(keys)) = extra.get_mut(KEYS_FIELD) else {
        return;
    };
    let used = data_key_ids(ctx);
    keys.retain(|kid, _| used.contains(kid));
    if keys.is_empty() {
        extra.shift_remove(KEYS_FIELD);
    }
}

/// The data key id of an encrypted value.
fn enc_kid(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.contains_key("$enc") => m.get("kid").and_then(Value::as_str),
        _ => None,
    }
}

/// Calls `f` on every leaf of `ctx` with its path, read-only (the same
/// leaves as [`paths::visit_leaves_mut`]).
fn visit_leaves(ctx: &Map<String, Value>, f: &mut dyn FnMut(&[PathSeg], &Value)) {
    fn walk(v: &Value, path: &mut Vec<PathSeg>, f: &mut dyn FnMut(&[PathSeg], &Value)) {
        if paths::is_opaque(v) {
            return f(path, v);
        }
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    path.push(PathSeg::Key(k.clone()));
                    walk(c, path, f);
                    path.pop();
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, c) in a.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    walk(c, path, f);
                    path.pop();
                }
            }
            _ => f(path, v),
        }
    }
    let mut path = Vec::new();
    for (k, v) in ctx {
        path.push(PathSeg::Key(k.clone()));
        walk(v, &mut path, f);
        path.pop();
    }
}

/// The data key ids the `$enc` values of `ctx` use.
fn data_key_ids(ctx: &Map<String, Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    visit_leaves(ctx, &mut |_, v| {
        if let Some(kid) = enc_kid(v) {
            out.insert(kid.to_string());
        }
    });
    out
}

fn needs_encryption_in<'p>(
    ctx: &Map<String, Value>,
    patterns: impl Iterator<Item = &'p PathPattern> + Clone,
) -> bool {
    let mut found = false;
    visit_leaves(ctx, &mut |path, v| {
        found = found || (!paths::is_opaque(v) && patterns.clone().any(|p| p.covers(path)));
    });
    found
}

/// Whether `s` has a value `patterns` cover still in clear (what `encrypt`
/// has left to do).
pub fn needs_encryption<'p>(
    s: &Snapshot,
    patterns: impl Iterator<Item = &'p PathPattern> + Clone,
) -> bool {
    needs_encryption_in(&s.context, patterns)
}

/// The master key ids of the data keys `s`'s encrypted values use (what a
/// rotation has left to do: a snapshot done has only the target).
pub fn masters_of(s: &Snapshot) -> BTreeSet<String> {
    masters_in(&s.context, &s.extra)
}

/// [`masters_of`] for a replay log's override.
pub fn replay_masters_of(log: &ReplayLog) -> BTreeSet<String> {
    match &log.context_override {
        Some(Value::Object(ov)) => masters_in(ov, &log.extra),
        _ => BTreeSet::new(),
    }
}

fn masters_in(ctx: &Map<String, Value>, extra: &Map<String, Value>) -> BTreeSet<String> {
    let used = data_key_ids(ctx);
    let entries = key_entries(extra).unwrap_or_default();
    used.iter()
        .map(|kid| match entries.get(kid) {
            Some(e) => e.master.clone(),
            // A value whose data key is not listed: no master opens it.
            None => String::new(),
        })
        .collect()
}

/// The associated data binding a value to its saga, path and data key.
fn field_aad(saga_id: &str, path: &[PathSeg], kid: &str) -> String {
    format!("{FIELD_AAD}\0{saga_id}\0{}\0{kid}", paths::render(path))
}

fn seal(
    dk: &DataKey,
    saga_id: &str,
    path: &[PathSeg],
    v: &Value,
) -> Result<Value, ComplianceError> {
    let plain = serde_json::to_vec(v).map_err(|e| {
        ComplianceError::Refused(format!(
            "saga {saga_id}: the value at {} cannot be serialized: {e}",
            paths::render(path)
        ))
    })?;
    let nonce = random_nonce();
    let aad = field_aad(saga_id, path, &dk.id);
    let ct = dk
        .cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| ComplianceError::Key {
            key_id: dk.id.clone(),
            message: format!(
                "could not encrypt the value at {} of saga {saga_id}",
                paths::render(path)
            ),
        })?;
    Ok(json!({
        "$enc": ALGORITHM,
        "kid": dk.id,
        "iv": STANDARD.encode(nonce),
        "ct": STANDARD.encode(ct),
    }))
}

fn open(
    c: &Aes256Gcm,
    saga_id: &str,
    path: &[PathSeg],
    v: &Value,
) -> Result<Value, ComplianceError> {
    let at = paths::render(path);
    let refused = |why: &str| {
        ComplianceError::Refused(format!("saga {saga_id}: the encrypted value at {at} {why}"))
    };
    let alg = v.get("$enc").and_then(Value::as_str).unwrap_or_default();
    if alg != ALGORITHM {
        return Err(refused(&format!(
            "uses {alg:?}; this version reads {ALGORITHM:?}"
        )));
    }
    let kid = v.get("kid").and_then(Value::as_str).unwrap_or_default();
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .and_then(|t| STANDARD.decode(t).ok())
            .ok_or_else(|| refused(&format!("has no base64 {name:?}")))
    };
    let iv = field("iv")?;
    let ct = field("ct")?;
    let iv: [u8; NONCE_LEN] = iv
        .try_into()
        .map_err(|_| refused("has an iv that is not 12 bytes"))?;
    let aad = field_aad(saga_id, path, kid);
    let plain = c
        .decrypt(
            &Nonce::from(iv),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            refused(&format!(
                "does not decrypt under its data key {kid}: it was moved there from another \
                 field or saga, or altered"
            ))
        })?;
    serde_json::from_slice(&plain).map_err(|_| refused("decrypts to something that is not JSON"))
}

#[cfg(test)]
mod tests;
