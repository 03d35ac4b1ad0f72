//! Evaluation: accuracy, per-class precision and recall, and the confusion matrix, and each
//! sample's outcome (predicted class, the probability given to the true one, Brier score) for
//! paired comparisons of two models.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::predict::Classifier;

/// How a model did on a labelled set. `confusion[true][predicted]` counts images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub samples: usize,
    pub accuracy: f64,
    /// Per class, in the task's order.
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    /// Builds the figures of `classes` classes from (true, predicted) label pairs.
    pub fn from_pairs(classes: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (t, p) in pairs {
            confusion[t][p] += 1;
        }
        let samples: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
        let ratio = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let precision =
            (0..classes).map(|c| ratio(confusion[c][c], (0..classes).map(|t| confusion[t][c]).sum())).collect();
        let recall = (0..classes).map(|c| ratio(confusion[c][c], confusion[c].iter().sum())).collect();
        Self { samples: samples as usize, accuracy: ratio(correct, samples), precision, recall, confusion }
    }
}

/// How a model did on one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub predicted: usize,
    pub correct: bool,
    /// The probability the model gave the true label.
    pub p_true: f32,
    /// The probability of the predicted class.
    pub confidence: f32,
    /// Squared error of the probability vector against the one-hot true label.
    pub brier: f32,
}

/// Evaluates `classifier` on normalised inputs `xs` `[N, C*H*W]` with labels `ys` `[N]`, in batches.
pub fn evaluate(classifier: &Classifier, xs: &Tensor, ys: &[usize]) -> Evaluation {
    let classes = classifier.task().class_count();
    Evaluation::from_pairs(classes, ys.iter().zip(outcomes(classifier, xs, ys)).map(|(&t, o)| (t, o.predicted)))
}

/// Each sample's outcome, in the order of `ys`, from one forward pass in batches.
pub fn outcomes(classifier: &Classifier, xs: &Tensor, ys: &[usize]) -> Vec<Outcome> {
    (0..ys.len() as i64)
        .step_by(1024)
        .flat_map(|start| {
            let n = 1024.min(ys.len() as i64 - start);
            let probs = classifier.logits(&xs.narrow(0, start, n)).softmax(-1, Kind::Float).to_device(tch::Device::Cpu);
            let classes = probs.size()[1] as usize;
            let probs: Vec<f32> = Vec::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
            let labels = &ys[start as usize..(start + n) as usize];
            probs
                .chunks_exact(classes)
                .zip(labels)
                .map(|(p, &label)| {
                    let predicted = p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best });
                    let brier = p.iter().enumerate().map(|(i, v)| (v - f32::from(i == label)).powi(2)).sum();
                    Outcome {
                        predicted,
                        correct: predicted == label,
                        p_true: p[label],
                        confidence: p[predicted],
                        brier,
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
