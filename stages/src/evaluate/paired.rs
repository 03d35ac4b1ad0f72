//! Paired evidence: the candidate and the serving model judged on the very same samples, with
//! measures that still move when both are right. Per sample, the Brier score (squared error of
//! the probability vector) and the log-loss of the true label compare how sure each model is;
//! their mean differences get seeded bootstrap bounds at `evaluate.confidence`, a sign test
//! counts the samples each model scores better on, and McNemar's exact test counts the samples
//! only one of them gets right. Promote decides on the Brier difference: bounded per sample, so
//! one confident mistake cannot outweigh several samples turned right, as it does in log-loss;
//! its bound, or where a few samples carry the mean and keep the bound wide, the sign test.

use serde::{Deserialize, Serialize};

use model::eval::Outcome;
use model::rng::SplitMix;

/// How evaluate measures uncertainty (`evaluate:` in params.yaml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateParams {
    /// One-sided confidence of each bound on a paired difference.
    pub confidence: f64,
    /// Bootstrap resamples of the per-sample differences.
    pub resamples: usize,
    /// Seed of the bootstrap's generator: the same inputs give the same bounds.
    pub seed: u64,
}

impl Default for EvaluateParams {
    fn default() -> Self {
        Self { confidence: 0.95, resamples: 2000, seed: 0 }
    }
}

/// Candidate against serving model on one set of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub samples: usize,
    /// Mean log-loss of the true label (nats per sample).
    pub candidate_log_loss: f64,
    pub serving_log_loss: f64,
    /// Mean of candidate minus serving log-loss per sample: below zero, the candidate is better.
    pub log_loss_diff: f64,
    /// One-sided bootstrap bounds of `log_loss_diff` at `confidence`: the difference is above
    /// the first and below the second, each at that confidence.
    pub log_loss_diff_bounds: [f64; 2],
    /// Mean Brier score (squared error of the probability vector, 0 to 2).
    pub candidate_brier: f64,
    pub serving_brier: f64,
    /// Mean of candidate minus serving Brier score per sample: below zero, the candidate is better.
    pub brier_diff: f64,
    /// One-sided bootstrap bounds of `brier_diff` at `confidence`, as for log-loss.
    pub brier_diff_bounds: [f64; 2],
    /// Samples on which the candidate's Brier score is lower (better) and higher than the
    /// serving model's, by more than rounding; and the sign test's one-sided p-value that the
    /// candidate is better this often by chance. Robust where a few samples carry most of the
    /// mean difference and the bootstrap bound stays wide.
    #[serde(default)]
    pub brier_better: u64,
    #[serde(default)]
    pub brier_worse: u64,
    #[serde(default = "one")]
    pub brier_sign_p: f64,
    /// Samples only the candidate gets right, and only the serving model.
    pub candidate_only_right: u64,
    pub serving_only_right: u64,
    /// McNemar's exact two-sided p-value on those disagreements.
    pub mcnemar_p: f64,
    pub confidence: f64,
    pub resamples: usize,
}

fn one() -> f64 {
    1.0
}

/// Per-sample Brier differences smaller than this are ties.
const BRIER_TIE: f64 = 1e-6;

/// The smallest probability a log-loss is taken of, so one certain mistake costs about 16
/// nats instead of infinity.
const MIN_PROBABILITY: f64 = 1e-7;

/// Compares the two models' outcomes on the same samples, in the same order.
pub fn compare(candidate: &[Outcome], serving: &[Outcome], p: &EvaluateParams) -> Paired {
    assert_eq!(candidate.len(), serving.len(), "paired outcomes come from the same samples");
    let n = candidate.len();
    let loss = |o: &Outcome| -(o.p_true as f64).max(MIN_PROBABILITY).ln();
    let diffs: Vec<f64> = candidate.iter().zip(serving).map(|(c, s)| loss(c) - loss(s)).collect();
    let brier_diffs: Vec<f64> = candidate.iter().zip(serving).map(|(c, s)| (c.brier - s.brier) as f64).collect();
    let [log_loss_diff_bounds, brier_diff_bounds] = bootstrap_bounds([&diffs, &brier_diffs], p);
    let mean = |v: &mut dyn Iterator<Item = f64>| if n == 0 { 0.0 } else { v.sum::<f64>() / n as f64 };
    let count = |f: &dyn Fn(&Outcome, &Outcome) -> bool| candidate.iter().zip(serving).filter(|(c, s)| f(c, s)).count();
    let brier_better = brier_diffs.iter().filter(|d| **d < -BRIER_TIE).count() as u64;
    let brier_worse = brier_diffs.iter().filter(|d| **d > BRIER_TIE).count() as u64;
    let candidate_only_right = count(&|c, s| c.correct && !s.correct) as u64;
    let serving_only_right = count(&|c, s| !c.correct && s.correct) as u64;
    Paired {
        samples: n,
        candidate_log_loss: mean(&mut candidate.iter().map(loss)),
        serving_log_loss: mean(&mut serving.iter().map(loss)),
        log_loss_diff: mean(&mut diffs.iter().copied()),
        log_loss_diff_bounds,
        candidate_brier: mean(&mut candidate.iter().map(|o| o.brier as f64)),
        serving_brier: mean(&mut serving.iter().map(|o| o.brier as f64)),
        brier_diff: mean(&mut brier_diffs.iter().copied()),
        brier_diff_bounds,
        brier_better,
        brier_worse,
        brier_sign_p: sign_p(brier_better, brier_worse),
        candidate_only_right,
        serving_only_right,
        mcnemar_p: mcnemar_p(candidate_only_right, serving_only_right),
        confidence: p.confidence,
        resamples: p.resamples,
    }
}

/// For each series of paired differences, the `1 - confidence` and `confidence` quantiles of
/// its mean over seeded resamples with replacement (the percentile bootstrap); every series is
/// resampled with the same indices.
fn bootstrap_bounds<const K: usize>(series: [&[f64]; K], p: &EvaluateParams) -> [[f64; 2]; K] {
    let n = series[0].len();
    if n == 0 || p.resamples == 0 {
        return [[0.0, 0.0]; K];
    }
    let mut rng = SplitMix::new(p.seed);
    let mut means: [Vec<f64>; K] = std::array::from_fn(|_| Vec::with_capacity(p.resamples));
    for _ in 0..p.resamples {
        let mut sums = [0.0; K];
        for _ in 0..n {
            let i = (rng.next_u64() % n as u64) as usize;
            sums.iter_mut().zip(&series).for_each(|(sum, s)| *sum += s[i]);
        }
        means.iter_mut().zip(sums).for_each(|(m, sum)| m.push(sum / n as f64));
    }
    means.map(|mut m| {
        m.sort_by(f64::total_cmp);
        let at = |q: f64| m[((q * (m.len() - 1) as f64).round() as usize).min(m.len() - 1)];
        [at(1.0 - p.confidence), at(p.confidence)]
    })
}

/// The sign test's one-sided p-value of `better` against `worse`: P(X >= better) for
/// X ~ Binomial(better + worse, 1/2), which is P(X <= worse).
pub fn sign_p(better: u64, worse: u64) -> f64 {
    if better == 0 {
        return 1.0;
    }
    half_binomial_cdf(better + worse, worse)
}

/// McNemar's exact test: the two-sided binomial p-value of `b` against `c` disagreements
/// under "either model is as likely to be the one that is right".
pub fn mcnemar_p(b: u64, c: u64) -> f64 {
    if b + c == 0 {
        return 1.0;
    }
    (2.0 * half_binomial_cdf(b + c, b.min(c))).min(1.0)
}

/// P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n cannot underflow.
fn half_binomial_cdf(n: u64, k: u64) -> f64 {
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0f64;
    let mut tail = 0.0f64;
    for i in 0..=k.min(n) {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    tail.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(p_true: f32, correct: bool) -> Outcome {
        Outcome {
            predicted: 0,
            correct,
            p_true,
            confidence: p_true.max(1.0 - p_true),
            brier: (1.0 - p_true).powi(2) * 2.0,
        }
    }

    #[test]
    fn mcnemar_matches_the_binomial_by_hand() {
        assert_eq!(mcnemar_p(0, 0), 1.0);
        assert!((mcnemar_p(10, 0) - 2.0 * 0.5f64.powi(10)).abs() < 1e-12);
        assert!((mcnemar_p(3, 3) - 1.0).abs() < 1e-12);
        // 2 * P(X <= 1), n = 6: 2 * 7/64.
        assert!((mcnemar_p(1, 5) - 14.0 / 64.0).abs() < 1e-12);
        assert_eq!(mcnemar_p(4, 6), mcnemar_p(6, 4));
        assert!(mcnemar_p(5000, 5200) > 0.0 && mcnemar_p(5000, 5200) < 0.06, "large n stays finite");
    }

    #[test]
    fn the_sign_test_is_the_one_sided_binomial_tail() {
        assert_eq!(sign_p(0, 0), 1.0);
        assert_eq!(sign_p(0, 5), 1.0);
        // P(X >= 18), n = 20: (1 + 20 + 190) / 2^20.
        assert!((sign_p(18, 2) - 211.0 / 1_048_576.0).abs() < 1e-12);
        assert!((sign_p(5, 5) - 0.623_046_875).abs() < 1e-9);
        assert!(sign_p(3, 0) > 0.1, "three alone prove nothing");
    }

    #[test]
    fn a_candidate_surer_where_both_are_right_is_better_with_confidence() {
        let serving: Vec<Outcome> = (0..40).map(|i| outcome(0.6 + 0.005 * i as f32, true)).collect();
        let candidate: Vec<Outcome> = serving.iter().map(|o| outcome(o.p_true + 0.3, true)).collect();
        let paired = compare(&candidate, &serving, &EvaluateParams::default());
        assert_eq!((paired.candidate_only_right, paired.serving_only_right, paired.mcnemar_p), (0, 0, 1.0));
        assert!(paired.log_loss_diff < 0.0);
        let [low, high] = paired.log_loss_diff_bounds;
        assert!(low <= paired.log_loss_diff && paired.log_loss_diff <= high && high < 0.0, "{paired:?}");
        assert!(paired.candidate_brier < paired.serving_brier);
        assert!(paired.brier_diff < 0.0 && paired.brier_diff_bounds[1] < 0.0, "{paired:?}");
        // Seeded: the same inputs give the same bounds.
        assert_eq!(compare(&candidate, &serving, &EvaluateParams::default()), paired);
    }

    #[test]
    fn one_confident_mistake_outweighs_turned_samples_in_log_loss_but_not_in_brier() {
        // What a ten-sample retrain held back (5 samples): the candidate turns two right and is
        // surer of the truth on two more, but one it still gets wrong it now calls far more
        // confidently. Per-sample (p_true, Brier) for candidate and serving model:
        let o = |p: f32, b: f32, correct: bool| Outcome {
            predicted: 0,
            correct,
            p_true: p,
            confidence: p.max(1.0 - p),
            brier: b,
        };
        let candidate = [
            o(0.0575, 1.774, false),
            o(0.811, 0.044, true),
            o(1.5e-5, 1.870, false),
            o(3.5e-5, 1.298, false),
            o(0.892, 0.019, true),
        ];
        let serving = [
            o(0.0111, 1.904, false),
            o(0.231, 0.732, false),
            o(2.6e-6, 1.990, false),
            o(3.0e-4, 1.294, false),
            o(0.198, 0.947, false),
        ];
        let paired = compare(&candidate, &serving, &EvaluateParams::default());
        assert!(paired.log_loss_diff < 0.0 && paired.log_loss_diff_bounds[1] > 0.0, "{paired:?}");
        assert!(paired.brier_diff_bounds[1] < 0.0, "{paired:?}");
    }

    #[test]
    fn mixed_evidence_gives_bounds_on_both_sides_of_zero() {
        let serving: Vec<Outcome> = (0..30).map(|_| outcome(0.7, true)).collect();
        let candidate: Vec<Outcome> = (0..30).map(|i| outcome(if i % 2 == 0 { 0.9 } else { 0.588 }, true)).collect();
        let paired = compare(&candidate, &serving, &EvaluateParams::default());
        for [low, high] in [paired.log_loss_diff_bounds, paired.brier_diff_bounds] {
            assert!(low < 0.0 && high > 0.0, "[{low}, {high}]");
        }
        assert_eq!(compare(&[], &[], &EvaluateParams::default()).log_loss_diff_bounds, [0.0, 0.0]);
    }
}
