//! Child processes that die with the process that started them, however it ends (a failed
//! assertion, Ctrl-C, `kill -9`): the kernel sends them SIGKILL when their parent exits
//! (`PR_SET_PDEATHSIG`), so no `model-server` outlives the test or demo that spawned it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child that `command` spawns receive SIGKILL when the spawning thread's process
/// exits. Spawn from a thread that lives as long as the child should (the kernel counts the
/// spawning thread as the parent), as tests and the demo do from their main thread.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    let parent = std::process::id();
    #[expect(unsafe_code, reason = "pre_exec runs between fork and exec; prctl and getppid are async-signal-safe")]
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would send the signal.
            if libc::getppid() != parent as libc::pid_t {
                libc::_exit(1);
            }
            Ok(())
        })
    }
}
