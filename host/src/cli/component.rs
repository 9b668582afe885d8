//! `testio-sync component`: writes the embedded engine component, for other hosts.

use std::path::PathBuf;

use anyhow::Context;

use super::{Exit, output};
use crate::runtime::ENGINE_WASM;

#[derive(clap::Args)]
pub struct Args {
    /// The file to write the component to (replaced if it exists)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    std::fs::write(&args.out, ENGINE_WASM)
        .with_context(|| format!("could not write the engine component to {}", args.out.display()))?;
    output::note(format_args!(
        "Wrote the engine component (world testio:sync/sync-engine@0.2.0, {} bytes) to {}",
        ENGINE_WASM.len(),
        args.out.display()
    ));
    Ok(Exit::Success)
}
