//! `--device auto|cpu|cuda`: the choice every command that runs a model offers. Torch free, so
//! the `pipeline` command parses it; `model::device::resolve` turns it into a libtorch device.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}
