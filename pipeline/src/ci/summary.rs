//! `pipeline ci summary`: the retrain's job summary in Markdown — the metrics table and the
//! decision with its reasons — from `artifacts/evaluate/metrics.json` and
//! `artifacts/promote/decision.json`.

use crate::paths;
use std::path::Path;

use super::CiError;
use crate::release::Decision;

pub fn summary(repo: &Path) -> Result<String, CiError> {
    let read = |rel: &str| -> Result<serde_json::Value, CiError> {
        let path = repo.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| CiError::Io { path: path.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| CiError::Workflow { path, what: e.to_string() })
    };
    let metrics = read(paths::METRICS)?;
    let decision: Decision = serde_json::from_value(read(paths::DECISION)?)
        .map_err(|e| CiError::Workflow { path: repo.join(paths::DECISION), what: e.to_string() })?;
    let mut out = match (&decision.candidate, decision.promoted) {
        (Some(v), true) => format!("## Retrain: promoted `{v}` (was `{}`)\n\n", decision.serving_before),
        _ => format!("## Retrain: rejected, `{}` keeps serving\n\n", decision.serving_before),
    };
    out.push_str("| metric | candidate | serving |\n| --- | ---: | ---: |\n");
    let rows = [
        ("base_test_accuracy", "base test accuracy"),
        ("feedback_accuracy", "held-back feedback accuracy"),
        ("earlier_feedback_accuracy", "feedback held back by earlier retrains"),
        ("min_class_recall", "lowest class recall"),
    ];
    for (key, name) in rows {
        let cell = |side: &str| metrics[side][key].as_f64().map_or("n/a".to_string(), |v| format!("{:.2}%", 100.0 * v));
        out.push_str(&format!("| {name} | {} | {} |\n", cell("candidate"), cell("serving")));
    }
    out.push_str(&format!(
        "\nHeld-back feedback: {} samples; base test: {} images; sub_sets: {:?}\n\n**Why:**\n",
        metrics["feedback_holdout_samples"], metrics["base_test_samples"], decision.sub_sets
    ));
    for reason in &decision.reasons {
        out.push_str(&format!("- {reason}\n"));
    }
    Ok(out)
}
