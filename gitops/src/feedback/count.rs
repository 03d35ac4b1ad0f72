//! `new_data/count.json`: a summary that is always derivable from the files.
//!
//! `current_count` and `sub_set_count` keep the seed's names and the Python peer's meaning:
//! new samples go to `sub_set_{sub_set_count}`, which holds `current_count` counted samples,
//! and `sub_set_count` sub_sets before it are sealed. `epoch` is not state: it names the
//! sequence of writes that made the files (each batch chains its writes onto it; a rescan, git
//! sync or repair starts a fresh one), so a process whose in-memory dedup cache is at another
//! epoch drops the cache, whoever changed the files, git's checkouts included.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::layout::SubSetScan;

fn by_label<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ByLabel {
        Names(BTreeMap<String, u64>),
        Digits(Vec<u64>),
    }
    Ok(match ByLabel::deserialize(deserializer)? {
        ByLabel::Names(map) => map,
        ByLabel::Digits(counts) => {
            counts.into_iter().enumerate().filter(|(_, n)| *n > 0).map(|(d, n)| (d.to_string(), n)).collect()
        }
    })
}

/// The contents of `count.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountFile {
    /// Counted samples in the open sub_set.
    pub current_count: u32,
    /// Index of the open sub_set, which is also the number of sealed sub_sets.
    pub sub_set_count: u32,
    /// `feedback.threshold` when this file was written.
    pub threshold: u32,
    /// Sealed sub_sets that no model was trained on yet, oldest first.
    pub pending_retrain: Vec<u32>,
    pub totals: Totals,
    #[serde(default)]
    pub epoch: String,
}

/// Totals over every sub_set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Counted samples (kind correct or wrong).
    pub counted: u64,
    /// Unsure samples (stored, never counted).
    pub unsure: u64,
    /// Counted samples per class name (read also from the array of ten digit counts that
    /// `count.json` held before classes had names).
    #[serde(deserialize_with = "by_label")]
    pub by_label: BTreeMap<String, u64>,
}

impl Totals {
    pub(crate) fn absorb(&mut self, scan: &SubSetScan) {
        for (label, n) in &scan.by_label {
            *self.by_label.entry(label.clone()).or_default() += u64::from(*n);
        }
        self.counted += u64::from(scan.counted());
        self.unsure += u64::from(scan.unsure);
    }
}

impl CountFile {
    /// Builds the summary from the sealed sub_sets' totals and the open sub_set's scan.
    pub(crate) fn derive(
        sealed: &Totals,
        pending_retrain: Vec<u32>,
        open_index: u32,
        open: &SubSetScan,
        threshold: u32,
        epoch: String,
    ) -> Self {
        let mut totals = sealed.clone();
        totals.absorb(open);
        Self { current_count: open.counted(), sub_set_count: open_index, threshold, pending_retrain, totals, epoch }
    }

    /// Equal in every field that describes the files (everything but `epoch`).
    pub fn same_state(&self, other: &Self) -> bool {
        Self { epoch: String::new(), ..self.clone() } == Self { epoch: String::new(), ..other.clone() }
    }
}

/// A fresh random-enough epoch token.
pub(crate) fn new_epoch() -> String {
    crate::fsutil::unique_name("")
}
