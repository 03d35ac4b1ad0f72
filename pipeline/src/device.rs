//! `--device auto|cpu|cuda`, shared by every command that runs a model.

use tch::Device;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, thiserror::Error)]
#[error("--device cuda was asked for but no CUDA device is visible to libtorch")]
pub struct NoCuda;

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device, NoCuda> {
        match self {
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            Self::Cuda => Err(NoCuda),
        }
    }
}
