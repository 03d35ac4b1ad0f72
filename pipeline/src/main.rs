//! The `pipeline` command line: a thin layer of argument parsing over the `pipeline` library.

mod cmd;

fn main() -> std::process::ExitCode {
    cmd::main()
}
