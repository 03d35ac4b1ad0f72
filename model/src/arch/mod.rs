//! The networks a model can be, each one file implementing `nn::ModuleT`, built from the
//! var-store path, the task (input channels and size, class count) and its own parameters:
//! `cnn.rs` (PyTorch's MNIST example network) and `resnet.rs` (a small residual network with
//! global average pooling, for colour photos) and `mlp.rs` (a multilayer perceptron for tabular
//! tasks, standardising its inputs by statistics stored in its weights). `model.arch` in `params.yaml`
//! ([`gitops::architecture::Architecture`]) picks one; the choice and its parameters are stored
//! in every sidecar and checked on load. A new architecture is a new file here and a variant
//! there.

mod cnn;
mod mlp;
mod resnet;

pub use mlp::fit_standardization;

use gitops::architecture::Architecture;
use gitops::task::Task;
use tch::nn;

/// A network: normalised inputs `[N, C*H*W]` (or `[N, C, H, W]`, or encoded rows `[N, F]`) in, `[N, classes]` logits out.
pub type Network = Box<dyn nn::ModuleT>;

/// The layers of `arch` that read the features and give the classes (the dense layers after a
/// CNN's convolutions, a residual network's `fc`, an MLP's `out`): what `finetune.tune:
/// classifier` trains while the rest stays as it is.
pub fn classifier_layers(arch: &Architecture) -> &'static [&'static str] {
    match arch {
        Architecture::Cnn(_) => cnn::CLASSIFIER,
        Architecture::Resnet(_) => resnet::CLASSIFIER,
        Architecture::Mlp(_) => mlp::CLASSIFIER,
    }
}

/// The network `arch` describes, its layers under `path`, sized for `task`.
pub fn build(arch: &Architecture, path: &nn::Path, task: &Task) -> Network {
    match arch {
        Architecture::Cnn(p) => Box::new(cnn::Cnn::new(path, p, task)),
        Architecture::Resnet(p) => Box::new(resnet::Resnet::new(path, p, task)),
        Architecture::Mlp(p) => Box::new(mlp::Mlp::new(path, p, task)),
    }
}
