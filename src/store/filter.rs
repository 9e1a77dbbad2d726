//! The saga filter as a person types it (`status:failed step:charge
//! order…`): the TUI's filter bar and the fuzz targets parse it here.

use crate::model::SagaStatus;

use super::SagaFilter;

impl SagaFilter {
    /// Parses a filter query: `status:a,b` (any of), `step:NAME` (the step
    /// of the newest snapshot), `name:NAME`, `id:PREFIX`; a bare word of hex
    /// digits and dashes is an id prefix (lowercased), any other bare word
    /// a saga name. Later words win; nothing is rejected.
    pub fn parse_query(text: &str) -> SagaFilter {
        let mut f = SagaFilter::default();
        for word in text.split_whitespace() {
            if let Some(s) = word.strip_prefix("status:") {
                for one in s.split(',') {
                    f.statuses.push(SagaStatus::parse(one));
                }
            } else if let Some(s) = word.strip_prefix("step:") {
                f.latest_step = Some(s.to_string());
            } else if let Some(s) = word.strip_prefix("name:") {
                f.name = Some(s.to_string());
            } else if let Some(s) = word.strip_prefix("id:") {
                f.id_prefix = Some(s.to_string());
            } else if word.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                f.id_prefix = Some(word.to_ascii_lowercase());
            } else {
                f.name = Some(word.to_string());
            }
        }
        f
    }
}
