//! Types and imports generated from `wit/`. Generated on every target so that the pure
//! modules and their native tests share the contract's types; the export itself is only
//! wired up in `component.rs`, on wasm.

wit_bindgen::generate!({
    world: "sync-engine",
    path: "../wit",
    pub_export_macro: true,
});

pub use exports::testio::sync::{engine, policy};
pub use testio::sync::{clock, customer_api, events, store, sync_lock, types};
