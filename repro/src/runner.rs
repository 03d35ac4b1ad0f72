//! Running stage commands through `sh -c` in the stage's wdir, output streamed live.
//! SIGINT/SIGTERM are caught: forwarded to the running command's process group, and the
//! run stops at the next safe point so the lock and the cache stay consistent.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::{Error, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILD_PGID: AtomicI32 = AtomicI32::new(0);

fn install_handler() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else { return };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                let pgid = CHILD_PGID.load(Ordering::SeqCst);
                if pgid > 0 {
                    let signal = if sig == SIGTERM { Signal::SIGTERM } else { Signal::SIGINT };
                    let _ = killpg(Pid::from_raw(pgid), signal);
                }
            }
        });
    });
}

/// True once Ctrl-C or SIGTERM arrived during this run.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs one command line of a stage; errors name the stage and the exit status.
/// `path` lists folders searched before `PATH`.
pub fn run(stage: &str, cmd: &str, wdir: &Path, root: &Path, path: &[std::path::PathBuf]) -> Result<()> {
    install_handler();
    if interrupted() {
        return Err(Error::Interrupted(stage.to_owned()));
    }
    let mut command = Command::new("sh");
    if !path.is_empty() {
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(path.iter().cloned().chain(std::env::split_paths(&inherited)));
        command.env("PATH", joined.unwrap_or(inherited));
    }
    let mut child = command
        .arg("-c")
        .arg(cmd)
        .current_dir(wdir)
        .env("DVC_ROOT", root)
        .env("DVC_STAGE", stage)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(Error::io(wdir))?;
    CHILD_PGID.store(child.id() as i32, Ordering::SeqCst);
    let status = child.wait();
    CHILD_PGID.store(0, Ordering::SeqCst);
    let status = status.map_err(Error::io(wdir))?;
    if interrupted() {
        return Err(Error::Interrupted(stage.to_owned()));
    }
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown status".into(),
        };
        return Err(Error::CommandFailed { stage: stage.to_owned(), cmd: cmd.to_owned(), code });
    }
    Ok(())
}
