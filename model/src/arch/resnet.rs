//! `arch: resnet`: a small residual network for colour photos. A 3x3 stem, then one stage per
//! width, each of `blocks` basic blocks (two 3x3 convolutions with batch norm, and a shortcut
//! that is a strided 1x1 convolution where the shape changes), the first block of every stage
//! after the first halving the size; global average pooling and one dense layer give a logit
//! per class. Any input size works: the pooling removes the spatial dimensions.

use gitops::architecture::ResnetParams;
use gitops::task::Task;
use tch::{Tensor, nn, nn::ModuleT};

/// The layers after the features (`arch::classifier_layers`).
pub const CLASSIFIER: &[&str] = &["fc"];

#[derive(Debug)]
pub struct Resnet {
    stem: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    blocks: Vec<Block>,
    fc: nn::Linear,
    dropout: f64,
    shape: [i64; 3],
}

#[derive(Debug)]
struct Block {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    shortcut: Option<(nn::Conv2D, nn::BatchNorm)>,
}

fn conv(path: nn::Path, from: i64, to: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, padding: kernel / 2, bias: false, ..Default::default() };
    nn::conv2d(path, from, to, kernel, config)
}

impl Block {
    fn new(path: &nn::Path, from: i64, to: i64, stride: i64) -> Self {
        let shortcut = (from != to || stride != 1).then(|| {
            (conv(path / "down", from, to, 1, stride), nn::batch_norm2d(path / "down_bn", to, Default::default()))
        });
        Self {
            conv1: conv(path / "conv1", from, to, 3, stride),
            bn1: nn::batch_norm2d(path / "bn1", to, Default::default()),
            conv2: conv(path / "conv2", to, to, 3, 1),
            bn2: nn::batch_norm2d(path / "bn2", to, Default::default()),
            shortcut,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu().apply(&self.conv2).apply_t(&self.bn2, train);
        let skip = match &self.shortcut {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + skip).relu()
    }
}

impl Resnet {
    /// Creates the layers under `path` (`stem`, `stage<i>_block<j>`, `fc`) for the task's input.
    pub fn new(path: &nn::Path, params: &ResnetParams, task: &Task) -> Self {
        let shape = [task.input.channels, task.input.height, task.input.width].map(i64::from);
        let widths = if params.widths.is_empty() { ResnetParams::default().widths } else { params.widths.clone() };
        let mut blocks = Vec::new();
        let mut from = widths[0];
        for (stage, &width) in widths.iter().enumerate() {
            for block in 0..params.blocks.max(1) {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                blocks.push(Block::new(&(path / format!("stage{stage}_block{block}")), from, width, stride));
                from = width;
            }
        }
        Self {
            stem: conv(path / "stem", shape[0], widths[0], 3, 1),
            stem_bn: nn::batch_norm2d(path / "stem_bn", widths[0], Default::default()),
            blocks,
            fc: nn::linear(path / "fc", from, task.class_count() as i64, Default::default()),
            dropout: params.dropout,
            shape,
        }
    }
}

impl ModuleT for Resnet {
    /// Normalised `[N, C, H, W]` (or `[N, C*H*W]`) values in, `[N, classes]` logits out.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let [c, h, w] = self.shape;
        let mut ys = xs.view([-1, c, h, w]).apply(&self.stem).apply_t(&self.stem_bn, train).relu();
        for block in &self.blocks {
            ys = block.forward_t(&ys, train);
        }
        ys.adaptive_avg_pool2d([1, 1]).flatten(1, -1).dropout(self.dropout, train).apply(&self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops::task::{InputShape, Normalize, Preprocess};
    use tch::{Device, Kind};

    #[test]
    fn any_input_size_gives_one_logit_per_class_and_training_changes_batch_statistics() {
        let task = Task {
            classes: vec!["a".into(), "b".into(), "c".into()],
            input: InputShape { channels: 3, height: 24, width: 40 },
            normalize: Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] },
            preprocess: Preprocess::Fit,
            ..Task::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Resnet::new(&vs.root(), &ResnetParams::default(), &task);
        let xs = Tensor::randn([5, 3 * 24 * 40], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&xs, false).size(), [5, 3]);
        assert_eq!(net.forward_t(&xs, true).size(), [5, 3]);
        // Three stages of one block: the stem, three blocks (two with a shortcut), the head.
        assert!(vs.variables().contains_key("stage2_block0.down.weight"));
        assert!(!vs.variables().contains_key("stage0_block0.down.weight"));
    }
}
