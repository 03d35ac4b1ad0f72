//! Seeded training with Adam in shuffled mini-batches, with a progress bar and a per-epoch log.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

use crate::arch::Network;
use crate::preprocess;
use gitops::params::TrainParams;
use gitops::task::Task;

/// One line of the training log (written as CSV for DVC plots).
#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Normalised inputs `[N, C*H*W]` and labels `[N]` on a device.
#[derive(Debug)]
pub struct Batch {
    pub xs: Tensor,
    pub ys: Tensor,
}

impl Batch {
    /// Normalises inputs (already preprocessed for `task`) into tensors on `device`.
    pub fn new<I: AsRef<[u8]>>(task: &Task, inputs: &[I], labels: &[usize], device: Device) -> Self {
        let values = task.input_values();
        let mut flat = Vec::with_capacity(inputs.len() * values);
        inputs.iter().for_each(|input| flat.extend(preprocess::normalize(task, input.as_ref())));
        let xs = Tensor::from_slice(&flat).view([inputs.len() as i64, values as i64]).to_device(device);
        let ys = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>()).to_device(device);
        Self { xs, ys }
    }

    pub fn len(&self) -> usize {
        self.ys.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A variable store whose initial weights depend only on `seed`.
pub fn seeded_store(device: Device, seed: u64) -> nn::VarStore {
    tch::manual_seed(seed as i64);
    nn::VarStore::new(device)
}

/// Stops training every variable of `vs` outside the top-level `layers` (named as in the
/// weights file: `fc2.weight` is in layer `fc2`); returns how many variables stay trainable.
pub fn train_only(vs: &nn::VarStore, layers: &[&str]) -> usize {
    let mut trainable = 0;
    for (name, mut var) in vs.variables() {
        let keep = layers.contains(&name.split('.').next().unwrap_or_default());
        if !keep {
            let _ = var.requires_grad_(false);
        }
        trainable += usize::from(keep && var.requires_grad());
    }
    trainable
}

/// Trains `net` (whose weights live in `vs`) on `data`; shuffling and dropout draw from the
/// torch generator seeded with `params.seed`.
pub fn train(
    vs: &nn::VarStore,
    net: &Network,
    data: &Batch,
    params: &TrainParams,
) -> Result<Vec<EpochLog>, tch::TchError> {
    tch::manual_seed(params.seed as i64);
    let mut opt = nn::Adam::default().build(vs, params.learning_rate)?;
    let n = data.len() as i64;
    let batch = params.batch_size.max(1) as i64;
    let steps = (n + batch - 1) / batch;
    let bar = ProgressBar::new((steps as usize * params.epochs) as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches, {msg} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut log = Vec::with_capacity(params.epochs);
    for epoch in 1..=params.epochs {
        bar.set_prefix(format!("epoch {epoch}/{}", params.epochs));
        let started = Instant::now();
        let order = Tensor::randperm(n, (Kind::Int64, vs.device()));
        let (mut loss_sum, mut correct) = (0.0f64, 0i64);
        for step in 0..steps {
            let idx = order.narrow(0, step * batch, batch.min(n - step * batch));
            let (xs, ys) = (data.xs.index_select(0, &idx), data.ys.index_select(0, &idx));
            let logits = net.forward_t(&xs, true);
            let loss = logits.cross_entropy_for_logits(&ys);
            opt.backward_step(&loss);
            loss_sum += loss.double_value(&[]) * idx.size()[0] as f64;
            correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64).int64_value(&[]);
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", loss_sum / ((step + 1) * batch).min(n) as f64));
        }
        let seconds = started.elapsed().as_secs_f64();
        let entry = EpochLog {
            epoch,
            loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            seconds,
            images_per_second: n as f64 / seconds,
        };
        tracing::info!(epoch, loss = entry.loss, accuracy = entry.train_accuracy, seconds, "epoch done");
        log.push(entry);
    }
    bar.finish_and_clear();
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops::architecture::Architecture;

    #[test]
    fn training_the_classifier_only_leaves_the_features_as_they_were() {
        let (task, arch) = (Task::default(), Architecture::default());
        let vs = seeded_store(Device::Cpu, 0);
        let net = crate::arch::build(&arch, &vs.root(), &task);
        let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
        assert_eq!(train_only(&vs, crate::arch::classifier_layers(&arch)), 4, "fc1 and fc2, weight and bias");
        let inputs = vec![vec![128u8; 784]; 8];
        let labels: Vec<usize> = (0..8).map(|i| i % 10).collect();
        let data = Batch::new(&task, &inputs, &labels, Device::Cpu);
        let params = TrainParams { seed: 0, epochs: 1, batch_size: 4, learning_rate: 1e-2, augment_copies: 0 };
        train(&vs, &net, &data, &params).unwrap();
        let after = vs.variables();
        for (name, old) in before {
            let changed = !after[&name].equal(&old);
            assert_eq!(changed, name.starts_with("fc"), "{name} changed: {changed}");
        }
    }
}
