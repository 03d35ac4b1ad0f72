//! `model:` in `params.yaml`: which network a repo trains and its parameters, as stored in
//! every sidecar. Plain settings, torch free: `model::arch` builds the network they describe.
//! A new architecture is a variant here and a file in `model/src/arch/`.

use serde::{Deserialize, Deserializer, Serialize};

/// `model:` in `params.yaml`: which network and its parameters. Without `arch` it is the CNN
/// (as every model made before architectures had names).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum Architecture {
    Cnn(CnnParams),
    Resnet(ResnetParams),
    Mlp(MlpParams),
}

/// The multilayer perceptron of tabular tasks: hidden layer widths and dropout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpParams {
    /// Width of each hidden layer, in order.
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer.
    pub dropout: f64,
}

impl Default for MlpParams {
    fn default() -> Self {
        Self { hidden: vec![64, 32], dropout: 0.1 }
    }
}

/// The CNN's widths and dropout rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CnnParams {
    pub conv1_channels: i64,
    pub conv2_channels: i64,
    pub hidden: i64,
    pub dropout_conv: f64,
    pub dropout_fc: f64,
}

impl Default for CnnParams {
    fn default() -> Self {
        Self { conv1_channels: 32, conv2_channels: 64, hidden: 128, dropout_conv: 0.25, dropout_fc: 0.5 }
    }
}

/// Stage widths and blocks per stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResnetParams {
    /// Channels of each stage; the stem has the first stage's width.
    pub widths: Vec<i64>,
    /// Basic blocks per stage.
    pub blocks: usize,
    /// Dropout before the dense layer.
    pub dropout: f64,
}

impl Default for ResnetParams {
    fn default() -> Self {
        Self { widths: vec![16, 32, 64], blocks: 1, dropout: 0.0 }
    }
}

impl Default for Architecture {
    fn default() -> Self {
        Self::Cnn(CnnParams::default())
    }
}

impl Architecture {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cnn(_) => "cnn",
            Self::Resnet(_) => "resnet",
            Self::Mlp(_) => "mlp",
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
            Mlp(MlpParams),
        }
        let mut map = serde_json::Map::deserialize(deserializer)?;
        map.entry("arch").or_insert_with(|| "cnn".into());
        match serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)? {
            Tagged::Cnn(p) => Ok(Self::Cnn(p)),
            Tagged::Resnet(p) => Ok(Self::Resnet(p)),
            Tagged::Mlp(p) => Ok(Self::Mlp(p)),
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
