//! What the `model::alloc` tests share. Each runs in a process of its own: glibc's thresholds
//! are global.

use gitops::architecture::Architecture;
use tch::{Device, Kind, Tensor, nn};

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(7).unwrap().parse().unwrap()
}

/// The default CNN (random weights) and a random batch of `batch` MNIST-shaped inputs, after
/// 20 passes have grown the heap to their working size; `net` runs a pass without gradients.
pub struct Passes {
    _vs: nn::VarStore,
    net: model::arch::Network,
    x: Tensor,
}

impl Passes {
    pub fn warmed(batch: i64) -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = model::arch::build(&Architecture::default(), &vs.root(), &gitops::task::Task::default());
        let x = Tensor::randn([batch, 1, 28, 28], (Kind::Float, Device::Cpu));
        let passes = Self { _vs: vs, net, x };
        passes.faults(20);
        passes
    }

    /// Minor page faults taken by `n` more passes.
    pub fn faults(&self, n: usize) -> u64 {
        tch::no_grad(|| {
            let before = minor_faults();
            for _ in 0..n {
                let _ = self.net.forward_t(&self.x, false);
            }
            minor_faults() - before
        })
    }
}
