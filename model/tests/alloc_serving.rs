//! `model::alloc::keep_freed_memory_for_serving` in its own process (glibc's thresholds are
//! global): a batch's activations reuse kept heap memory, and a tensor the size of a model's
//! large weights leaves the process when it is freed, as an evicted model's do.

use gitops::architecture::Architecture;
use tch::{Device, Kind, Tensor, nn};

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(7).unwrap().parse().unwrap()
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn activations_stay_mapped_and_large_weights_go_back() {
    model::alloc::keep_freed_memory_for_serving();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::arch::build(&Architecture::default(), &vs.root(), &gitops::task::Task::default());
    let x = Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    tch::no_grad(|| {
        for _ in 0..20 {
            let _ = net.forward_t(&x, false);
        }
        let before = minor_faults();
        for _ in 0..10 {
            let _ = net.forward_t(&x, false);
        }
        let faults = minor_faults() - before;
        // A batch-8 pass allocates about 2.5 MB of activations (600 pages); mapped afresh,
        // ten passes would take thousands of faults.
        assert!(faults < 300, "{faults} minor page faults in 10 batch-8 passes");
    });

    // The CNN's first dense layer: 9216 x 128 floats, 4.7 MB. Freed, it leaves the process.
    let weights = Tensor::ones([9216, 128], (Kind::Float, Device::Cpu));
    let with = rss_kib();
    drop(weights);
    let freed = with.saturating_sub(rss_kib());
    assert!(freed >= 4_000, "freeing a 4.7 MB tensor gave back {freed} KiB");
}
