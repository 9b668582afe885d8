//! End-to-end tests: the real `testio-sync` binary, as a subprocess, against the
//! built-in simulator on 127.0.0.1 and real SQLite files or a throwaway PostgreSQL.

mod backends;
mod bad_input;
mod bugs;
mod component;
mod customer_locks;
mod customer_syncs;
mod customers;
mod errors;
mod freshness;
mod in_process;
mod lock;
mod mcp;
mod nuke;
mod postgres;
mod resilience;
mod scheduler;
mod settings;
mod support;
mod sync;
