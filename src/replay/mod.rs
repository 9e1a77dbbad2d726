//! Reading history: time travel and context diffs.
