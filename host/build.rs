//! Builds the engine component from `guest/` for `wasm32-unknown-unknown` (linked by
//! wasm-component-ld, so it imports no `wasi:*`), for `runtime.rs` to embed.
//! A separate target dir keeps this nested cargo off the outer build's lock.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = host.parent().expect("host/ sits in the workspace").to_path_buf();
    for input in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let target_dir = root.join("target").join("engine");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            "testio-sync-engine",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "guest",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("could not run cargo to build the engine component");
    assert!(
        status.success(),
        "building the engine component failed (is the wasm32-unknown-unknown target installed? `rustup target add wasm32-unknown-unknown`)"
    );
    let wasm = target_dir.join("wasm32-unknown-unknown/guest/testio_sync_engine.wasm");
    println!("cargo:rustc-env=TESTIO_SYNC_ENGINE_WASM={}", wasm.display());
}
