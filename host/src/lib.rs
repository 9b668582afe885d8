//! testio-sync, the native host: the Customer API client, the SQLite store, the sync
//! lock, the wasmtime embedding of the engine component and the CLI.

pub mod api;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod customers;
pub mod db;
pub mod fleet;
pub mod lock;
pub mod mcp;
pub mod model;
pub mod observe;
#[cfg(test)]
mod props;
pub mod runtime;
pub mod scheduler;
pub mod service;
pub mod shutdown;
pub mod since;
pub mod tokens;
