//! `arch: cnn`: two 3x3 convolutions, max-pooling, dropout, two dense layers — the same CNN as
//! PyTorch's MNIST example, its input channels and size and its class count from the task, its
//! widths from the `model:` section of params.yaml.

use gitops::architecture::CnnParams;
use gitops::task::Task;
use tch::{Tensor, nn};

/// The layers after the features (`arch::classifier_layers`).
pub const CLASSIFIER: &[&str] = &["fc1", "fc2"];

#[derive(Debug)]
pub struct Cnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    params: CnnParams,
    /// Channels, height and width of the input.
    shape: [i64; 3],
}

impl Cnn {
    /// Creates the layers under `path` (names `conv1`, `conv2`, `fc1`, `fc2`, as in PyTorch),
    /// reading the task's channels and size and giving one output per class.
    pub fn new(path: &nn::Path, params: &CnnParams, task: &Task) -> Self {
        let shape = [task.input.channels, task.input.height, task.input.width].map(i64::from);
        // Two unpadded 3x3 convolutions take 4 pixels off each side, then 2x2 pooling halves it.
        let flat = params.conv2_channels * ((shape[1] - 4) / 2).max(1) * ((shape[2] - 4) / 2).max(1);
        Self {
            conv1: nn::conv2d(path / "conv1", shape[0], params.conv1_channels, 3, Default::default()),
            conv2: nn::conv2d(path / "conv2", params.conv1_channels, params.conv2_channels, 3, Default::default()),
            fc1: nn::linear(path / "fc1", flat, params.hidden, Default::default()),
            fc2: nn::linear(path / "fc2", params.hidden, task.class_count() as i64, Default::default()),
            params: *params,
            shape,
        }
    }
}

impl nn::ModuleT for Cnn {
    /// Normalised `[N, C, H, W]` (or `[N, C*H*W]`) values in, `[N, classes]` logits out.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let [c, h, w] = self.shape;
        let maps = xs.view([-1, c, h, w]).apply(&self.conv1).relu().apply(&self.conv2);
        // The same values either way. Training keeps libtorch's pooling, whose backward pass is
        // the cheaper one, after the ReLU, where its branches predict well on the zeros.
        let pooled = if maps.requires_grad() { maps.relu().max_pool2d_default(2) } else { max_pool_2x2(&maps).relu() };
        pooled
            .dropout(self.params.dropout_conv, train)
            .flatten(1, -1)
            .apply(&self.fc1)
            .relu()
            .dropout(self.params.dropout_fc, train)
            .apply(&self.fc2)
    }
}

/// 2x2 max pooling with stride 2, the values of `max_pool2d_default(2)`, as two element-wise
/// maxima of strided halves, for passes without gradients: libtorch's pooling kernel also
/// builds an index tensor and is not vectorised for this layout; it took 6.7 ms of a 19 ms
/// batch-64 pass, the maxima take 0.45 ms. (Their backward pass is the slower one, so
/// training keeps libtorch's.) Without gradients the network pools before its ReLU: the same
/// values, as both are monotone, on a quarter of the elements.
fn max_pool_2x2(xs: &Tensor) -> Tensor {
    let (h, w) = (xs.size()[2] / 2 * 2, xs.size()[3] / 2 * 2);
    let rows = xs.slice(2, 0, h, 2).maximum(&xs.slice(2, 1, h, 2));
    rows.slice(3, 0, w, 2).maximum(&rows.slice(3, 1, w, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_by_strided_maxima_matches_libtorch_max_pool() {
        use tch::{Device, Kind};
        tch::manual_seed(1);
        // Even sides as in the network, odd ones where the last row and column are dropped.
        for shape in [[3i64, 5, 24, 24], [2, 3, 7, 9]] {
            let xs = Tensor::randn(shape, (Kind::Float, Device::Cpu));
            let expected = xs.max_pool2d_default(2);
            assert!(max_pool_2x2(&xs).equal(&expected), "values differ for {shape:?}");
            // The network pools before its ReLU: the same values as ReLU then pooling.
            assert!(max_pool_2x2(&xs).relu().equal(&xs.relu().max_pool2d_default(2)), "{shape:?}");
        }
    }
}
