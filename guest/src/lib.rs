//! The testio-sync engine: the pure decisions of a sync (which phases run, what is in
//! scope, which pages to fetch next, what to write, how to count), compiled to a
//! WebAssembly component. All I/O goes through the [`host::Host`] port, which the
//! component glue implements with the world's imports and the tests implement in memory.

pub mod bindings;
pub mod bugs;
pub mod discovery;
pub mod engine;
pub mod failures;
pub mod features;
pub mod freshness;
pub mod host;
pub mod ids;
pub mod lock;
pub mod new_tests;
pub mod nuke;
pub mod plan;
pub mod problems;
pub mod salvage;
pub mod tally;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod fake;
