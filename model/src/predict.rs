//! Inference: a verified model on a device, answering batches of preprocessed inputs.

use tch::{Device, Kind, Tensor};

use crate::weights::LoadedModel;
use gitops::task::Task;

/// One answer: the class index, its probability, and every class's probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub index: usize,
    pub confidence: f32,
    pub probabilities: Vec<f32>,
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

    /// The task the model was trained for.
    pub fn task(&self) -> &Task {
        &self.model.sidecar.task
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    pub fn into_model(self) -> LoadedModel {
        self.model
    }

    /// Logits `[N, classes]` for normalised inputs `[N, C*H*W]`, computed without gradients.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.model.net.forward_t(&xs.to_device(self.device), false))
    }

    /// Classifies a batch of normalised inputs (the output of `preprocess`), one after another
    /// in `flat`, each of the task's `C*H*W` values.
    pub fn predict(&self, flat: &[f32]) -> Vec<Prediction> {
        let values = self.task().input_values();
        if flat.is_empty() || values == 0 {
            return Vec::new();
        }
        let xs = Tensor::from_slice(flat).view([(flat.len() / values) as i64, values as i64]);
        let probs = self.logits(&xs).softmax(-1, Kind::Float).to_device(Device::Cpu);
        let classes = probs.size()[1] as usize;
        let probs: Vec<f32> = Vec::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
        probs.chunks_exact(classes).map(Prediction::from_probabilities).collect()
    }
}

impl Prediction {
    pub fn from_probabilities(p: &[f32]) -> Self {
        let (index, confidence) =
            p.iter().copied().enumerate().fold((0, f32::MIN), |best, (i, v)| if v > best.1 { (i, v) } else { best });
        Self { index, confidence, probabilities: p.to_vec() }
    }
}
