//! Web app entry point.
fn main() {}
