//! The `iacscope` binary: `iacscope scan` and `iacscope serve`; everything lives in the library.
fn main() -> std::process::ExitCode {
    iacscope::cli::main()
}
