//! Binary entry point: parses the command line and runs augur.
fn main() {}
