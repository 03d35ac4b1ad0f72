//! The networks a model can be, each one file implementing `nn::ModuleT`, built from the
//! var-store path, the task (input channels and size, class count) and its own parameters:
//! `cnn.rs` (PyTorch's MNIST example network) and `resnet.rs` (a small residual network with
//! global average pooling, for colour photos). `model.arch` in `params.yaml` picks one; the
//! choice and its parameters are stored in every sidecar and checked on load. A new
//! architecture is a new file and a variant here.

mod cnn;
mod resnet;

pub use cnn::CnnParams;
pub use resnet::ResnetParams;

use gitops::task::Task;
use serde::{Deserialize, Deserializer, Serialize};
use tch::nn;

/// `model:` in `params.yaml`: which network and its parameters. Without `arch` it is the CNN
/// (as every model made before architectures had names).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum Architecture {
    Cnn(CnnParams),
    Resnet(ResnetParams),
}

/// A network: normalised inputs `[N, C*H*W]` (or `[N, C, H, W]`) in, `[N, classes]` logits out.
pub type Network = Box<dyn nn::ModuleT>;

impl Default for Architecture {
    fn default() -> Self {
        Self::Cnn(CnnParams::default())
    }
}

impl Architecture {
    /// The network's layers under `path`, sized for `task`.
    pub fn build(&self, path: &nn::Path, task: &Task) -> Network {
        match self {
            Self::Cnn(p) => Box::new(cnn::Cnn::new(path, p, task)),
            Self::Resnet(p) => Box::new(resnet::Resnet::new(path, p, task)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Cnn(_) => "cnn",
            Self::Resnet(_) => "resnet",
        }
    }
}

impl<'de> Deserialize<'de> for Architecture {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "arch", rename_all = "lowercase")]
        enum Tagged {
            Cnn(CnnParams),
            Resnet(ResnetParams),
        }
        let mut map = serde_json::Map::deserialize(deserializer)?;
        map.entry("arch").or_insert_with(|| "cnn".into());
        match serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)? {
            Tagged::Cnn(p) => Ok(Self::Cnn(p)),
            Tagged::Resnet(p) => Ok(Self::Resnet(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_without_arch_is_the_cnn_and_unknown_keys_are_refused() {
        let legacy: Architecture = serde_yaml::from_str("conv1_channels: 8\n").unwrap();
        assert_eq!(legacy, Architecture::Cnn(CnnParams { conv1_channels: 8, ..Default::default() }));
        let resnet: Architecture = serde_yaml::from_str("arch: resnet\nblocks: 2\n").unwrap();
        assert!(matches!(resnet, Architecture::Resnet(ResnetParams { blocks: 2, .. })));
        let err = serde_yaml::from_str::<Architecture>("arch: resnet\nconv1_channels: 8\n").unwrap_err();
        assert!(err.to_string().contains("conv1_channels"), "{err}");
        assert!(serde_yaml::from_str::<Architecture>("arch: vit\n").unwrap_err().to_string().contains("vit"));
        let json = serde_json::to_value(Architecture::default()).unwrap();
        assert_eq!(json["arch"], "cnn");
    }
}
