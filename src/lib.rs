//! sagascope: a terminal debugger, headless command line and library for
//! saga snapshots, compatible with what the Python library sagaz writes.
//!
//! Layers depend only downward: [`model`] ← [`store`] ← [`engine`] ← [`replay`];
//! [`bundle`] (portable bundles, import, verified copies) needs only `model`
//! and `store`. The
//! command line (`cli`) and the terminal UI (`tui`) sit on top and hold no
//! logic of their own. The library layers never import clap, ratatui or
//! crossterm: the features `cli` and `tui` (on by default) bring those in,
//! and `default-features = false` builds the library alone.

pub mod bundle;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod engine;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod model;
pub mod replay;
pub mod seed;
pub mod store;
#[cfg(feature = "tui")]
pub mod tui;
