//! Turns `--device auto|cpu|cuda` ([`DeviceChoice`]) into the libtorch device a command runs on.

use gitops::device::DeviceChoice;
use tch::Device;

#[derive(Debug, thiserror::Error)]
#[error("--device cuda was asked for but no CUDA device is visible to libtorch")]
pub struct NoCuda;

/// The device `choice` names, when libtorch can see it.
pub fn resolve(choice: DeviceChoice) -> Result<Device, NoCuda> {
    match choice {
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(NoCuda),
    }
}
