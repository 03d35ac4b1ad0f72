//! Work that may only use idle CPU: [`run_when_idle`] moves the calling thread to Linux's
//! `SCHED_IDLE` class, so it runs only when no normal thread wants the core. The model server's
//! shadow model runs on such a thread: on a busy machine it falls behind (and drops work)
//! instead of slowing the answers.

/// Moves the calling thread (only it) to `SCHED_IDLE`; whether that worked. Elsewhere than
/// Linux it does nothing and says no.
pub fn run_when_idle() -> bool {
    set_idle()
}

#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "sched_setscheduler is a C function; the parameter is a valid, initialised struct")]
fn set_idle() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // pid 0: the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn set_idle() -> bool {
    false
}
