//! Drift: how far live predictions have moved from the ones a model was evaluated on.
//!
//! A model's [`Reference`] is built when it is trained or evaluated, from its held-out test set,
//! and kept in its sidecar. It describes a few *signals* of every sample ([`signal_names`]): the
//! confidence (top probability) and statistics of the network's input: the mean and spread of
//! an image's values, or each number feature of a row. The model server collects the same
//! signals for a window of live predictions and [`Reference::compare`]s them: the population
//! stability index (PSI) over the reference's deciles, and the Kolmogorov-Smirnov statistic
//! against the reference's percentiles. Both are computed here, torch-free, so the stages that
//! write a reference and the server that reads it cannot disagree on what a signal is.

use serde::{Deserialize, Serialize};

use crate::table::FeatureKind;
use crate::task::Task;

/// Bins of the PSI: the reference's deciles.
const BINS: usize = 10;
/// The share an empty bin counts as, so that PSI stays finite.
const EMPTY_SHARE: f64 = 1e-4;

/// The signals of a model's held-out predictions, and its per-class confidence, as the sidecar
/// keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Samples the reference was built from.
    pub samples: usize,
    pub signals: Vec<SignalReference>,
    /// Per class, the model's mean probability for the test samples of that class: confident
    /// learning's thresholds, which the label review (`feedback::review`) uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// `None` for a class without test samples.
    pub class_thresholds: Vec<Option<f64>>,
}

/// One signal's distribution in the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalReference {
    pub name: String,
    /// Upper edges of the PSI bins (the deciles, repeated values merged); the last bin has no
    /// upper edge.
    pub edges: Vec<f64>,
    /// The reference's share of samples in each bin (`edges.len() + 1` of them).
    pub shares: Vec<f64>,
    /// The 0th to 100th percentiles, for the KS statistic.
    pub percentiles: Vec<f64>,
}

/// One signal of a window against the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalDrift {
    pub name: String,
    pub psi: f64,
    pub ks: f64,
}

/// The names of the task's signals, in the order [`signals`] gives their values.
pub fn signal_names(task: &Task) -> Vec<String> {
    let mut names = vec!["confidence".to_string()];
    match task.schema() {
        Some(schema) => names.extend(
            schema
                .features
                .iter()
                .filter(|f| matches!(f.kind, FeatureKind::Number { .. }))
                .map(|f| format!("feature:{}", f.name)),
        ),
        None => names.extend(["input_mean".to_string(), "input_std".to_string()]),
    }
    names
}

/// One sample's signals: its confidence, then its input's statistics. `input` is the task's
/// network input as stored (pixels as `u8`, or a tabular row's encoded `f32`s).
pub fn signals(task: &Task, confidence: f32, input: &[u8]) -> Vec<f64> {
    let mut values = vec![f64::from(confidence)];
    match task.schema() {
        Some(schema) => {
            let encoded = input.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            values.extend(
                schema
                    .features
                    .iter()
                    .zip(encoded)
                    .filter(|(f, _)| matches!(f.kind, FeatureKind::Number { .. }))
                    .map(|(_, v)| v),
            );
        }
        None => {
            let n = input.len().max(1) as f64;
            let mean = input.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
            let var = input.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / n;
            values.extend([mean / 255.0, var.sqrt() / 255.0]);
        }
    }
    values
}

impl Reference {
    /// Builds the reference from samples' signals (each as [`signals`] gives them, named by
    /// `names`). `None` when there are no samples.
    pub fn build(names: &[String], samples: &[Vec<f64>]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let signals = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut values: Vec<f64> = samples.iter().map(|s| s[i]).filter(|v| v.is_finite()).collect();
                values.sort_by(f64::total_cmp);
                let mut edges: Vec<f64> = (1..BINS).filter_map(|k| quantile(&values, k as f64 / BINS as f64)).collect();
                edges.dedup();
                let shares = shares(&edges, &values);
                let percentiles = (0..=100).filter_map(|k| quantile(&values, f64::from(k) / 100.0)).collect();
                SignalReference { name: name.clone(), edges, shares, percentiles }
            })
            .collect();
        Some(Self { samples: samples.len(), signals, class_thresholds: Vec::new() })
    }

    /// PSI and KS of each signal of `window` (samples' signals, as [`signals`] gives them)
    /// against the reference. A signal the window lacks values for scores 0.
    pub fn compare(&self, window: &[Vec<f64>]) -> Vec<SignalDrift> {
        self.signals
            .iter()
            .enumerate()
            .map(|(i, reference)| {
                let mut values: Vec<f64> =
                    window.iter().filter_map(|s| s.get(i).copied()).filter(|v| v.is_finite()).collect();
                values.sort_by(f64::total_cmp);
                if values.is_empty() || reference.percentiles.is_empty() {
                    return SignalDrift { name: reference.name.clone(), psi: 0.0, ks: 0.0 };
                }
                let live = shares(&reference.edges, &values);
                let psi = reference
                    .shares
                    .iter()
                    .zip(&live)
                    .map(|(&r, &w)| {
                        let (r, w) = (r.max(EMPTY_SHARE), w.max(EMPTY_SHARE));
                        (w - r) * (w / r).ln()
                    })
                    .sum();
                SignalDrift { name: reference.name.clone(), psi, ks: ks(&reference.percentiles, &values) }
            })
            .collect()
    }
}

/// The `q` quantile of sorted `values` (the smallest value with at least that share at or below
/// it).
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    let rank = ((q * values.len() as f64).ceil() as usize).saturating_sub(1).min(last);
    Some(values[rank])
}

/// The share of sorted `values` in each bin of `edges` (a value equal to an edge falls in the
/// bin below it).
fn shares(edges: &[f64], values: &[f64]) -> Vec<f64> {
    let n = values.len().max(1) as f64;
    let mut below = 0;
    let mut out = Vec::with_capacity(edges.len() + 1);
    for edge in edges {
        let upto = values.partition_point(|v| v <= edge);
        out.push((upto - below) as f64 / n);
        below = upto;
    }
    out.push((values.len() - below) as f64 / n);
    out
}

/// The reference's cumulative share at `x`, linear between its percentiles: of the values at
/// or below `x`, or with `below`, of those strictly below it (the two differ where the
/// reference piles up on one value).
fn reference_cdf(percentiles: &[f64], x: f64, below: bool) -> f64 {
    let steps = (percentiles.len() - 1).max(1) as f64;
    let n = percentiles.partition_point(|&p| if below { p < x } else { p <= x });
    match n {
        0 => 0.0,
        n if n == percentiles.len() => 1.0,
        n => {
            let (lo, hi) = (percentiles[n - 1], percentiles[n]);
            ((n - 1) as f64 + (x - lo) / (hi - lo)) / steps
        }
    }
}

/// The largest gap between the window's empirical distribution (sorted `values`) and the
/// reference's, compared on both sides of every distinct value.
fn ks(percentiles: &[f64], values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mut gap = 0.0_f64;
    let mut first = 0;
    while first < values.len() {
        let v = values[first];
        let end = first + values[first..].partition_point(|&w| w <= v);
        gap = gap
            .max((reference_cdf(percentiles, v, true) - first as f64 / n).abs())
            .max((reference_cdf(percentiles, v, false) - end as f64 / n).abs());
        first = end;
    }
    gap
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values: `n` points of a sine-warped ramp from `from` to `to`.
    fn spread(n: usize, from: f64, to: f64, phase: f64) -> Vec<Vec<f64>> {
        (0..n)
            .map(|i| {
                let t = ((i as f64 + phase) * 0.618_034).fract();
                vec![from + (to - from) * t * t]
            })
            .collect()
    }

    #[test]
    fn the_same_population_scores_near_zero_and_a_shifted_one_does_not() {
        let names = vec!["x".to_string()];
        let reference = Reference::build(&names, &spread(2000, 0.0, 1.0, 0.0)).unwrap();
        assert_eq!(reference.signals[0].shares.len(), 10);
        let same = &reference.compare(&spread(500, 0.0, 1.0, 0.3))[0];
        assert!(same.psi < 0.05 && same.ks < 0.08, "{same:?}");
        let shifted = &reference.compare(&spread(500, 0.3, 1.3, 0.3))[0];
        assert!(shifted.psi > 0.5 && shifted.ks > 0.3, "{shifted:?}");
    }

    #[test]
    fn confidences_piled_at_one_keep_finite_scores() {
        let names = vec!["confidence".to_string()];
        let mut samples: Vec<Vec<f64>> = (0..900).map(|_| vec![1.0]).collect();
        samples.extend(spread(100, 0.5, 1.0, 0.0));
        let reference = Reference::build(&names, &samples).unwrap();
        let signal = &reference.signals[0];
        assert!(signal.edges.len() < 9, "repeated deciles merge: {:?}", signal.edges);
        assert!((signal.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let same = &reference.compare(&samples)[0];
        assert!(same.psi < 1e-9 && same.ks < 0.02, "{same:?}");
        let unsure = &reference.compare(&spread(300, 0.3, 0.9, 0.0))[0];
        assert!(unsure.psi > 1.0 && unsure.ks > 0.8, "{unsure:?}");
    }

    #[test]
    fn image_signals_are_the_confidence_and_the_input_mean_and_spread() {
        let task = Task::default();
        assert_eq!(signal_names(&task), ["confidence", "input_mean", "input_std"]);
        let values = signals(&task, 0.75, &[0, 255, 0, 255]);
        assert_eq!(values, [0.75, 0.5, 0.5]);
        assert!(Reference::build(&signal_names(&task), &[]).is_none());
    }

    #[test]
    fn row_signals_are_the_confidence_and_each_number_feature() {
        let schema = serde_yaml::from_str(
            "label: species\nfeatures:\n  - {name: petal_length, type: number}\n  - {name: colour, type: category, values: [red, blue]}\n  - {name: width, type: number}\n",
        )
        .unwrap();
        let task = Task { kind: crate::task::TaskKind::Tabular, table: Some(schema), ..Task::default() };
        assert_eq!(signal_names(&task), ["confidence", "feature:petal_length", "feature:width"]);
        let input: Vec<u8> = [4.5f32, 1.0, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(signals(&task, 0.5, &input), [0.5, 4.5, -2.0]);
    }
}
