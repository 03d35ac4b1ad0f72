//! `model::alloc` in its own process (glibc's thresholds are global): once
//! `keep_freed_memory` is set, repeated batch-64 passes of the CNN reuse the memory their
//! activations had instead of mapping it afresh each time, until `release_freed_memory`.

mod alloc_support;

use alloc_support::Passes;

#[test]
fn batch_passes_reuse_freed_tensor_memory() {
    model::alloc::keep_freed_memory();
    let passes = Passes::warmed(64);
    // One pass allocates two 9.4 MB conv activations; mapping them afresh would take over
    // 4,600 faults a pass. Reused memory takes almost none.
    let faults = passes.faults(10);
    assert!(faults < 1_000, "{faults} minor page faults in 10 batch-64 passes");

    // What model-server calls after evicting a model: the kept pages go back, and the next
    // pass maps its activations again.
    model::alloc::release_freed_memory();
    let faults = passes.faults(1);
    assert!(faults > 1_000, "only {faults} faults after release_freed_memory: nothing was given back");
}
