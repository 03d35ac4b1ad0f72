//! Keeps the memory libtorch frees inside the process, so tensors of the next step reuse pages
//! that are already mapped instead of faulting fresh ones in.
//!
//! libtorch allocates CPU tensors with glibc's `posix_memalign`. By default glibc serves every
//! block above its mmap threshold (128 KiB, raised only when a bigger mapped block happens to
//! be freed) with a fresh `mmap`, and gives the top of the heap back to the kernel as soon as
//! more than twice that lies free. A batch-64 pass of the CNN allocates and frees activations
//! of about 10 MB, so every pass mapped and zero-filled them anew: the model benchmark took
//! 3.9 million minor page faults, batch-64 inference ran at 26 ms instead of 15 ms and training
//! 17% slower, and whether glibc's threshold rose in time differed from process to process
//! (the bimodal timings in BENCHMARKS.md). [`keep_freed_memory`] fixes both thresholds: blocks
//! up to 32 MiB come from the heap, and up to 128 MiB of freed heap stays mapped for reuse.
//!
//! model-server swaps models for days: with blocks up to 32 MiB from the heap, each model's
//! 4.7 MB weights came from it too, and resident memory after 100 reloads grew by over 10% in
//! three of four runs. It calls [`keep_freed_memory_for_serving`]: blocks from 4 MiB up (a
//! model's large weight tensors) are mapped apart and go back to the kernel when the model is
//! evicted, smaller ones (a batch's activations) come from the heap, which keeps them. It also
//! calls [`release_freed_memory`] after evicting a model.

/// Blocks up to this size come from the heap (glibc's largest allowed mmap threshold).
const MMAP_THRESHOLD: usize = 32 << 20;
/// The same for a server that swaps models: below the 4.7 MB of the CNN's first dense layer.
const SERVING_MMAP_THRESHOLD: usize = 4 << 20;
/// Freed memory at the top of the heap up to this size is kept for reuse.
const TRIM_THRESHOLD: usize = 128 << 20;

/// Sets glibc's mmap and trim thresholds for tensor-sized blocks; call it at the start of
/// `main` of every binary that trains or runs large batches. Leaves them alone when the user tuned
/// malloc through `GLIBC_TUNABLES` or a `MALLOC_*_` variable; does nothing on other C libraries.
pub fn keep_freed_memory() {
    if !user_tuned() {
        set_thresholds(MMAP_THRESHOLD);
    }
}

/// [`keep_freed_memory`] for a server that loads and evicts models while it runs: blocks of
/// 4 MiB and more are mapped apart, so an evicted model's large tensors leave the process.
pub fn keep_freed_memory_for_serving() {
    if !user_tuned() {
        set_thresholds(SERVING_MMAP_THRESHOLD);
    }
}

fn user_tuned() -> bool {
    std::env::vars_os().any(|(name, value)| {
        let name = name.to_string_lossy();
        (name.starts_with("MALLOC_") && name.ends_with('_'))
            || (name == "GLIBC_TUNABLES" && value.to_string_lossy().contains("glibc.malloc."))
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt is a C function; it has no memory-safety preconditions")]
fn set_thresholds(mmap_threshold: usize) {
    for (param, value, name) in [
        (libc::M_MMAP_THRESHOLD, mmap_threshold, "M_MMAP_THRESHOLD"),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD, "M_TRIM_THRESHOLD"),
    ] {
        // SAFETY: mallopt takes glibc's arena lock itself, reads no pointers, and answers 0
        // for a value it refuses; both values fit a C int.
        if unsafe { libc::mallopt(param, value as libc::c_int) } != 1 {
            tracing::warn!("glibc refused mallopt({name}, {value}); tensor memory will be remapped on every step");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds(_mmap_threshold: usize) {}

/// Gives every free page of the heap back to the kernel (glibc's `malloc_trim`); the next
/// tensors fault their memory in once more.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "malloc_trim is a C function; it has no memory-safety preconditions")]
pub fn release_freed_memory() {
    // SAFETY: malloc_trim takes each arena's lock itself and only unmaps pages of free chunks.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}
