//! Evaluation: accuracy, per-class precision and recall, and the confusion matrix.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::predict::Classifier;

/// How a model did on a labelled set. `confusion[true][predicted]` counts images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub samples: usize,
    pub accuracy: f64,
    pub precision: [f64; 10],
    pub recall: [f64; 10],
    pub confusion: [[u64; 10]; 10],
}

impl Evaluation {
    /// Builds the figures from (true, predicted) label pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u8, u8)>) -> Self {
        let mut confusion = [[0u64; 10]; 10];
        for (t, p) in pairs {
            confusion[t as usize][p as usize] += 1;
        }
        let samples: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..10).map(|c| confusion[c][c]).sum();
        let ratio = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let precision = std::array::from_fn(|c| ratio(confusion[c][c], (0..10).map(|t| confusion[t][c]).sum()));
        let recall = std::array::from_fn(|c| ratio(confusion[c][c], confusion[c].iter().sum()));
        Self { samples: samples as usize, accuracy: ratio(correct, samples), precision, recall, confusion }
    }
}

/// Evaluates `classifier` on normalised pixels `xs` `[N, 784]` with labels `ys` `[N]`, in batches.
pub fn evaluate(classifier: &Classifier, xs: &Tensor, ys: &[u8]) -> Evaluation {
    let predicted: Vec<i64> = (0..ys.len() as i64)
        .step_by(1024)
        .flat_map(|start| {
            let n = 1024.min(ys.len() as i64 - start);
            let out = classifier.logits(&xs.narrow(0, start, n)).argmax(-1, false).to_device(tch::Device::Cpu);
            Vec::<i64>::try_from(out).expect("i64 classes")
        })
        .collect();
    Evaluation::from_pairs(ys.iter().zip(predicted).map(|(&t, p)| (t, p as u8)))
}
