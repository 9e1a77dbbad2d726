//! The saga definitions known to a process, by saga name: definition files
//! and folders from the configuration or the command line, plus any
//! registered from Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::definition::SagaDefinition;
use super::file::{load_definition_file, DefinitionError};

/// Definitions by saga name.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    by_name: BTreeMap<String, Arc<SagaDefinition>>,
}

impl Definitions {
    /// No definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a definition.
    pub fn insert(&mut self, def: SagaDefinition) {
        self.by_name.insert(def.name.clone(), Arc::new(def));
    }

    /// The definition of the saga with this name, if known.
    pub fn get(&self, name: &str) -> Option<Arc<SagaDefinition>> {
        self.by_name.get(name).cloned()
    }

    /// Known saga names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// Whether no definition is known.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Loads files and every `*.toml` in the folders. Two files defining
    /// the same saga is an error (which one runs must never be a guess).
    pub fn load(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Self, DefinitionError> {
        let mut all: Vec<PathBuf> = files.to_vec();
        for d in dirs {
            all.extend(toml_files_in(d)?);
        }
        let mut defs = Definitions::new();
        for path in all {
            defs.add_file(&path)?;
        }
        Ok(defs)
    }

    /// Loads one file, refusing a name already defined by another file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), DefinitionError> {
        let def = load_definition_file(path)?;
        if let Some(prev) = self.by_name.get(&def.name) {
            let prev_src = prev
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if prev.source.as_deref() != Some(path) {
                return Err(DefinitionError::Duplicate {
                    name: def.name.clone(),
                    first: prev_src,
                    second: path.display().to_string(),
                });
            }
        }
        self.insert(def);
        Ok(())
    }

    /// Adds the definitions of a folder that fill gaps only (names already
    /// known keep their definition). Used for the demo's folder.
    pub fn add_fallback_dir(&mut self, dir: &Path) -> Result<(), DefinitionError> {
        for path in toml_files_in(dir)? {
            let def = load_definition_file(&path)?;
            if !self.by_name.contains_key(&def.name) {
                self.insert(def);
            }
        }
        Ok(())
    }
}

fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>, DefinitionError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DefinitionError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    v.sort();
    Ok(v)
}
