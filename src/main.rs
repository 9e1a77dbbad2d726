//! The `sagascope` binary: everything is in the library.

fn main() -> std::process::ExitCode {
    sagascope::cli::main()
}
