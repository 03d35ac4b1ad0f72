//! `model::alloc::keep_freed_memory_for_serving` in its own process (glibc's thresholds are
//! global): a batch's activations reuse kept heap memory, and a tensor the size of a model's
//! large weights leaves the process when it is freed, as an evicted model's do.

mod alloc_support;

use alloc_support::Passes;
use tch::{Device, Kind, Tensor};

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn activations_stay_mapped_and_large_weights_go_back() {
    model::alloc::keep_freed_memory_for_serving();
    // A batch-8 pass allocates about 2.5 MB of activations (600 pages); mapped afresh, ten
    // passes would take thousands of faults.
    let faults = Passes::warmed(8).faults(10);
    assert!(faults < 300, "{faults} minor page faults in 10 batch-8 passes");

    // The CNN's first dense layer: 9216 x 128 floats, 4.7 MB. Freed, it leaves the process.
    let weights = Tensor::ones([9216, 128], (Kind::Float, Device::Cpu));
    let with = rss_kib();
    drop(weights);
    let freed = with.saturating_sub(rss_kib());
    assert!(freed >= 4_000, "freeing a 4.7 MB tensor gave back {freed} KiB");
}
