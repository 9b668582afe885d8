//! Builds the engine component from `guest/` for `wasm32-unknown-unknown` (linked by
//! wasm-component-ld, so it imports no `wasi:*`), for `runtime.rs` to embed.
//! A separate target dir keeps this nested cargo off the outer build's lock.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = host.parent().expect("host/ sits in the workspace").to_path_buf();
    // The root manifest holds the `guest` profile (size settings) as well as the workspace.
    for input in ["guest/src", "guest/Cargo.toml", "Cargo.toml", "wit", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let target_dir = root.join("target").join("engine");
    ensure_wasm_target();
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

/// A fresh machine lacks the wasm target; with rustup it is one command away, so the
/// README's first command works without a setup step.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok().filter(|o| o.status.success());
    let installed = sysroot.is_some_and(|o| {
        let root = String::from_utf8_lossy(&o.stdout).trim().to_string();
        PathBuf::from(root).join("lib/rustlib/wasm32-unknown-unknown").is_dir()
    });
    if installed {
        return;
    }
    println!(
        "cargo:warning=installing the wasm32-unknown-unknown target with rustup (needed to build the engine component)"
    );
    let added = Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]).status();
    assert!(
        added.is_ok_and(|s| s.success()),
        "the wasm32-unknown-unknown target is missing and rustup could not add it; run `rustup target add wasm32-unknown-unknown`"
    );
}
