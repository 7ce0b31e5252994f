//! The `iacscope` binary.
fn main() {}
