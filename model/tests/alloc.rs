//! `model::alloc` in its own process (glibc's thresholds are global): once
//! `keep_freed_memory` is set, repeated batch-64 passes of the CNN reuse the memory their
//! activations had instead of mapping it afresh each time, until `release_freed_memory`.

use gitops::architecture::Architecture;
use tch::{Device, Kind, Tensor, nn};

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(7).unwrap().parse().unwrap()
}

#[test]
fn batch_passes_reuse_freed_tensor_memory() {
    model::alloc::keep_freed_memory();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::arch::build(&Architecture::default(), &vs.root(), &gitops::task::Task::default());
    let x = Tensor::randn([64, 1, 28, 28], (Kind::Float, Device::Cpu));
    tch::no_grad(|| {
        // The heap grows to the passes' working size over the first few.
        for _ in 0..20 {
            let _ = net.forward_t(&x, false);
        }
        let before = minor_faults();
        for _ in 0..10 {
            let _ = net.forward_t(&x, false);
        }
        let faults = minor_faults() - before;
        // One pass allocates two 9.4 MB conv activations; mapping them afresh would take
        // over 4,600 faults a pass. Reused memory takes almost none.
        assert!(faults < 1_000, "{faults} minor page faults in 10 batch-64 passes");

        // What model-server calls after evicting a model: the kept pages go back, and the
        // next pass maps its activations again.
        model::alloc::release_freed_memory();
        let before = minor_faults();
        let _ = net.forward_t(&x, false);
        let faults = minor_faults() - before;
        assert!(faults > 1_000, "only {faults} faults after release_freed_memory: nothing was given back");
    });
}
