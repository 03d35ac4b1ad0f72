//! Where the stages' outputs live, relative to the repo root: the one list that the stages'
//! argument defaults, `pipeline ci` and the server's status route use. `dvc.yaml` passes these
//! same paths (`stages/tests/it/paths.rs` checks that it does).

pub const MANIFEST: &str = "artifacts/ingest/manifest.parquet";
pub const VALIDATE: &str = "artifacts/validate";
pub const CLEAN: &str = "artifacts/validate/clean.parquet";
pub const AUGMENTED: &str = "artifacts/augment/augmented.parquet";
pub const CANDIDATE: &str = "artifacts/finetune/candidate";
pub const TRAIN_LOG: &str = "artifacts/finetune/train_log.csv";
pub const METRICS: &str = "artifacts/evaluate/metrics.json";
/// Next to `METRICS`: evaluate writes it into the metrics file's folder.
pub const EVALUATION: &str = "artifacts/evaluate/evaluation.json";
pub const PLOTS: &str = "artifacts/evaluate/plots";
pub const DECISION: &str = "artifacts/promote/decision.json";
