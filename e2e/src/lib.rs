//! Black-box tests of the `tern` binary live in `tests/`; this library only finds the binary.

use std::path::PathBuf;

/// The `tern` binary built by `cargo build --bin tern` (which `make test` runs first).
pub fn tern_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TERN_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("debug/tern");
    assert!(
        binary.exists(),
        "{} does not exist: run `cargo build --bin tern` first (`make test` does)",
        binary.display()
    );
    binary
}
