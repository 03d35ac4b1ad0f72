//! Inference: a verified model on a device, answering batches of preprocessed digits.

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn::ModuleT};

use super::artifact::LoadedModel;
use crate::data::PIXELS;

/// One answer: the digit, its probability, and all ten probabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub digit: u8,
    pub confidence: f32,
    pub probabilities: [f32; 10],
}

/// A loaded model ready to classify.
#[derive(Debug)]
pub struct Classifier {
    model: LoadedModel,
    device: Device,
}

impl Classifier {
    pub fn new(model: LoadedModel) -> Self {
        let device = model.vs.device();
        Self { model, device }
    }

    pub fn version(&self) -> &str {
        &self.model.sidecar.version
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    pub fn into_model(self) -> LoadedModel {
        self.model
    }

    /// Logits `[N, 10]` for normalised pixels `[N, 784]`, computed without gradients.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.model.net.forward_t(&xs.to_device(self.device), false))
    }

    /// Classifies a batch of normalised 28x28 digits (the output of `preprocess`).
    pub fn predict(&self, batch: &[[f32; PIXELS]]) -> Vec<Prediction> {
        if batch.is_empty() {
            return Vec::new();
        }
        let flat: &[f32] = batch.as_flattened();
        let xs = Tensor::from_slice(flat).view([batch.len() as i64, PIXELS as i64]);
        let probs = self.logits(&xs).softmax(-1, Kind::Float).to_device(Device::Cpu);
        let probs: Vec<f32> = Vec::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
        probs.chunks_exact(10).map(Prediction::from_probabilities).collect()
    }
}

impl Prediction {
    pub fn from_probabilities(p: &[f32]) -> Self {
        let probabilities: [f32; 10] = p.try_into().expect("ten classes");
        let (digit, confidence) = probabilities
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::MIN), |best, (i, v)| if v > best.1 { (i, v) } else { best });
        Self { digit: digit as u8, confidence, probabilities }
    }
}
