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

// Every public item of the library is documented (CI's clippy denies
// warnings). The `cli` and `tui` front ends are the binary's own modules,
// public so tests and benchmarks can drive them, not an API to embed.
#![warn(missing_docs)]

pub mod bundle;
#[cfg(feature = "cli")]
#[allow(missing_docs)]
pub mod cli;
pub mod compliance;
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
#[allow(missing_docs)]
pub mod tui;
