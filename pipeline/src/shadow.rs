//! Shadow evaluation's figures and gate. A model server runs the registry's `shadow` version
//! beside the serving one and counts, in [`ShadowStats`], what it did (`GET /models`);
//! `pipeline models promote-shadow` reads them and promotes the shadow only when [`ShadowGate`]
//! passes: enough predictions, enough agreement with the serving model, and on feedback to
//! shadowed requests, right at least as often as the serving model.

use serde::{Deserialize, Serialize};

/// What the shadow model did for one version on one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowStats {
    pub version: String,
    pub predictions: u64,
    pub agreements: u64,
    /// `agreements / predictions`.
    pub agreement: Option<f64>,
    /// Predictions that failed (a panic or non-finite output).
    pub errors: u64,
    /// Requests not shadowed because the shadow model's queue was full.
    pub dropped: u64,
    /// Feedback on shadowed requests: which model gave the right class.
    pub feedback: FeedbackWins,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackWins {
    pub both: u64,
    pub serving_only: u64,
    pub shadow_only: u64,
    pub neither: u64,
}

impl FeedbackWins {
    pub fn total(&self) -> u64 {
        self.both + self.serving_only + self.shadow_only + self.neither
    }
}

/// What promoting a shadow requires.
#[derive(Debug, Clone, Copy, PartialEq, clap::Args)]
pub struct ShadowGate {
    /// Shadow predictions needed.
    #[arg(long, default_value_t = 500)]
    pub min_predictions: u64,
    /// Least share of them in the serving model's class.
    #[arg(long, default_value_t = 0.9)]
    pub min_agreement: f64,
    /// Feedback on shadowed requests needed (on it the shadow must be right at least as often
    /// as the serving model).
    #[arg(long, default_value_t = 0)]
    pub min_feedback: u64,
}

impl ShadowGate {
    /// Whether `stats` pass, and each reason with its numbers.
    pub fn judge(&self, stats: &ShadowStats) -> (bool, Vec<String>) {
        let mut passed = true;
        let mut reasons = Vec::new();
        let mut check = |ok: bool, why: String| {
            passed &= ok;
            reasons.push(why);
        };
        check(
            stats.predictions >= self.min_predictions,
            format!("{} shadow predictions; {} required", stats.predictions, self.min_predictions),
        );
        let agreement = stats.agreement.unwrap_or(0.0);
        check(
            agreement >= self.min_agreement,
            format!(
                "agreement with the serving model {:.1}%; {:.1}% required",
                100.0 * agreement,
                100.0 * self.min_agreement
            ),
        );
        check(stats.errors == 0, format!("{} failed shadow predictions; none allowed", stats.errors));
        let f = &stats.feedback;
        check(
            f.total() >= self.min_feedback,
            format!("{} feedback on shadowed requests; {} required", f.total(), self.min_feedback),
        );
        check(
            f.shadow_only >= f.serving_only,
            format!(
                "on that feedback the shadow alone was right {} times, the serving model alone {}",
                f.shadow_only, f.serving_only
            ),
        );
        (passed, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(predictions: u64, agreements: u64, shadow_only: u64, serving_only: u64) -> ShadowStats {
        ShadowStats {
            version: "model_20260101T000000Z".into(),
            predictions,
            agreements,
            agreement: Some(agreements as f64 / predictions.max(1) as f64),
            feedback: FeedbackWins { both: 20, serving_only, shadow_only, neither: 1 },
            ..ShadowStats::default()
        }
    }

    #[test]
    fn the_gate_needs_enough_predictions_agreement_and_no_loss_on_feedback() {
        let gate = ShadowGate { min_predictions: 100, min_agreement: 0.9, min_feedback: 10 };
        assert!(gate.judge(&stats(120, 115, 3, 1)).0);
        assert!(!gate.judge(&stats(80, 80, 3, 1)).0, "too few predictions");
        assert!(!gate.judge(&stats(120, 100, 3, 1)).0, "too little agreement");
        let (passed, reasons) = gate.judge(&stats(120, 115, 1, 3));
        assert!(!passed);
        assert!(reasons.last().unwrap().contains("shadow alone was right 1 times, the serving model alone 3"));
        assert!(!ShadowGate { min_feedback: 100, ..gate }.judge(&stats(120, 115, 3, 1)).0, "too little feedback");
        let errors = ShadowStats { errors: 1, ..stats(120, 115, 3, 1) };
        assert!(!gate.judge(&errors).0);
    }
}
