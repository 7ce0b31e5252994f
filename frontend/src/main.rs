//! Web app entry point: hands over to [`iacscope_frontend::run`], where everything lives.
fn main() {
    iacscope_frontend::run();
}
